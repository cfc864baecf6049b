#include "domain/json_object.hpp"

#include "domain/text.hpp"

namespace billingd::domain {

void append_json_string(std::string& out, std::string_view text) {
    static constexpr char hex[] = "0123456789abcdef";
    const bool utf8 = is_valid_utf8(text);
    out += '"';
    for (const char ch : text) {
        const auto byte = static_cast<unsigned char>(ch);
        if (ch == '"' || ch == '\\') {
            out += '\\';
            out += ch;
        } else if (byte < 0x20 || byte == 0x7f) {
            out += "\\u00";
            out += hex[byte >> 4];
            out += hex[byte & 0xf];
        } else if (byte >= 0x80 && !utf8) {
            out += "\\u00";
            out += hex[byte >> 4];
            out += hex[byte & 0xf];
        } else {
            out += ch;
        }
    }
    out += '"';
}

void json_object::key(std::string_view name) {
    text_ += text_.empty() ? '{' : ',';
    append_json_string(text_, name);
    text_ += ':';
}

json_object& json_object::add(std::string_view name, std::int64_t value) {
    key(name);
    text_ += std::to_string(value);
    return *this;
}

json_object& json_object::add(std::string_view name, std::string_view text) {
    key(name);
    append_json_string(text_, text);
    return *this;
}

json_object& json_object::add(std::string_view name, const std::optional<std::int64_t>& value) {
    return value ? add(name, *value) : add_null(name);
}

json_object& json_object::add(std::string_view name, const std::optional<std::string>& text) {
    return text ? add(name, std::string_view{*text}) : add_null(name);
}

json_object& json_object::add_null(std::string_view name) {
    key(name);
    text_ += "null";
    return *this;
}

}  // namespace billingd::domain
