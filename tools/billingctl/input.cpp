#include "input.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <system_error>

#include "context.hpp"
#include "domain/text.hpp"

namespace billingd::ctl {
namespace {

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

// Length of the UTF-8 sequence starting at text[i] when it is valid, else 0.
std::size_t sequence_length(std::string_view text, std::size_t i) {
    const auto c = static_cast<unsigned char>(text[i]);
    const std::size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
    if (i + n > text.size() || !domain::is_valid_utf8(text.substr(i, n))) return 0;
    return n;
}

// C0 controls and DEL, and the C1 controls U+0080..U+009F (0xC2 0x80..0x9F in UTF-8).
bool is_control(std::string_view character) {
    const auto c = static_cast<unsigned char>(character[0]);
    if (c < 0x20 || c == 0x7F) return true;
    return character.size() == 2 && c == 0xC2 && static_cast<unsigned char>(character[1]) < 0xA0;
}

// ASCII space, no-break space (U+00A0) and ideographic space (U+3000).
bool starts_with_space(std::string_view s) {
    return s.starts_with(" ") || s.starts_with("\xC2\xA0") || s.starts_with("\xE3\x80\x80");
}
bool ends_with_space(std::string_view s) {
    return s.ends_with(" ") || s.ends_with("\xC2\xA0") || s.ends_with("\xE3\x80\x80");
}

integer_reading malformed(std::string error) {
    return {std::nullopt, true, std::move(error)};
}

}  // namespace

integer_reading read_integer(std::string_view text, std::int64_t min, std::int64_t max) {
    const std::string typed = shown(text);
    const bool negative = text.starts_with('-');
    const std::string_view digits = negative ? text.substr(1) : text;
    if (text.starts_with('+'))
        return malformed(fmt::format("{} has a '+' sign; type the number without it", typed));
    if (digits.size() > 1 && digits[0] == '0' &&
        std::string_view{"xXoObB"}.find(digits[1]) != std::string_view::npos)
        return malformed(fmt::format(
            "{} is not a decimal number: numbers are read in base 10 only (no 0x, 0o or 0b "
            "prefixes)",
            typed));
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), is_digit))
        return malformed(fmt::format(
            "{} is not a whole decimal number (digits 0-9 only, optionally led by '-'; no "
            "spaces, separators, fractions or exponents)",
            typed));
    if (digits.size() > 1 && digits[0] == '0') {
        const auto first = digits.find_first_not_of('0');
        const std::string_view meant = first == std::string_view::npos ? "0" : digits.substr(first);
        return malformed(fmt::format(
            "{} has a leading zero: numbers are read in base 10 only, and a leading zero is "
            "refused rather than guessed at (in an amount or an id it is more likely a typo); "
            "type {}{} if that is the number you mean",
            typed, negative && meant != "0" ? "-" : "", meant));
    }
    std::int64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 10);
    // Beyond int64 too: refused with the number as typed, never clamped.
    if (ec != std::errc{} || end != text.data() + text.size() || value < min || value > max)
        return {std::nullopt, false,
                fmt::format("must be between {} and {}, got {}", min, max, text)};
    return {value, false, {}};
}

CLI::Option* add_integer(CLI::App* app, const std::string& name, std::int64_t& target,
                         std::int64_t min, std::int64_t max, const std::string& description) {
    auto* option = app->add_option_function<std::string>(
        name,
        [&target, name, min, max](const std::string& text) {
            auto r = read_integer(text, min, max);
            if (r.malformed) throw CLI::ValidationError(name, r.error);
            if (!r.value) throw failure(exit_code::data, fmt::format("{}: {}", name, r.error));
            target = *r.value;
        },
        description);
    return option->type_name("INT");
}

void check_text(std::string_view option, std::string_view value, std::size_t min, std::size_t max,
                bool trimmed) {
    for (std::size_t i = 0; i < value.size();) {
        const auto n = sequence_length(value, i);
        if (n == 0)
            throw failure(exit_code::data, fmt::format("{}: {} is not valid UTF-8 (byte {} of it)",
                                                       option, shown(value), i + 1));
        if (is_control(value.substr(i, n)))
            throw failure(exit_code::data,
                          fmt::format("{}: {} holds a control character (CR, LF, TAB, ESC and "
                                      "the like are not allowed)",
                                      option, shown(value)));
        i += n;
    }
    if (trimmed && (starts_with_space(value) || ends_with_space(value)))
        throw failure(exit_code::data, fmt::format("{}: {} has white space at its start or end",
                                                   option, shown(value)));
    const auto n = domain::utf8_length(value);
    if (n < min || n > max)
        throw failure(exit_code::data,
                      fmt::format("{}: must be {} to {} characters, got {}", option, min, max, n));
}

std::string shown(std::string_view value) {
    std::string out{"'"};
    for (std::size_t i = 0; i < value.size();) {
        const auto n = sequence_length(value, i);
        if (n == 0 || is_control(value.substr(i, n))) {
            const std::size_t bytes = n == 0 ? 1 : n;
            for (std::size_t k = 0; k < bytes; ++k)
                out += fmt::format("\\x{:02X}", static_cast<unsigned char>(value[i + k]));
            i += bytes;
            continue;
        }
        out.append(value.substr(i, n));
        i += n;
    }
    return out + "'";
}

}  // namespace billingd::ctl
