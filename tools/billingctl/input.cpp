#include "input.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <system_error>

#include "context.hpp"

namespace billingd::ctl {
namespace {

bool is_digit(char c) {
    return c >= '0' && c <= '9';
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

}  // namespace billingd::ctl
