#include "operations/input.hpp"

#include <fmt/format.h>

#include <array>
#include <utility>

#include "domain/text.hpp"
#include "operations/operation.hpp"

namespace billingd::operations {
namespace {

// JSON member -> billingctl option, where they differ beyond the "--" and '-' for '_'.
constexpr std::array<std::pair<std::string_view, std::string_view>, 4> renamed{{
    {"order_name", "--name"},
    {"interval_unit", "--every"},
    {"interval_count", "--count"},
    {"anchor_date", "--anchor"},
}};

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

}  // namespace

std::string label(naming style, std::string_view field) {
    // A customer_uid that is the command's argument (customer verify) rather than an option.
    if (field == "customer_uid_argument")
        return style == naming::options ? "CUSTOMER_UID" : "customer_uid";
    if (style == naming::json) return std::string{field};
    for (const auto& [json, option] : renamed)
        if (json == field) return std::string{option};
    std::string out = "--";
    for (char c : field) out += c == '_' ? '-' : c;
    return out;
}

namespace {

[[noreturn]] void refuse_labelled(std::string_view name, std::string type,
                                  const std::string& message) {
    throw error(error_kind::invalid, std::move(type), fmt::format("{}: {}", name, message),
                std::string{name});
}

}  // namespace

void refuse_field(naming style, std::string_view field, std::string type,
                  const std::string& message) {
    refuse_labelled(label(style, field), std::move(type), message);
}

void check_text(naming style, std::string_view field, std::string_view value, std::size_t min,
                std::size_t max, bool trimmed) {
    check_labelled_text(label(style, field), value, min, max, trimmed);
}

void check_labelled_text(std::string_view name, std::string_view value, std::size_t min,
                         std::size_t max, bool trimmed) {
    for (std::size_t i = 0; i < value.size();) {
        const auto n = sequence_length(value, i);
        if (n == 0)
            refuse_labelled(
                name, "invalid-text",
                fmt::format("{} is not valid UTF-8 (byte {} of it)", shown(value), i + 1));
        if (is_control(value.substr(i, n)))
            refuse_labelled(name, "invalid-text",
                            fmt::format("{} holds a control character (CR, LF, TAB, ESC and the "
                                        "like are not allowed)",
                                        shown(value)));
        i += n;
    }
    if (trimmed && (starts_with_space(value) || ends_with_space(value)))
        refuse_labelled(name, "invalid-text",
                        fmt::format("{} has white space at its start or end", shown(value)));
    const auto n = domain::utf8_length(value);
    if (n < min || n > max)
        refuse_labelled(name, "invalid-text",
                        fmt::format("must be {} to {} characters, got {}", min, max, n));
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

}  // namespace billingd::operations
