// A flat JSON object written field by field: the `data` payload of an event. Cheaper than a
// JSON library's tree on the charge path (one string, no nodes) and always valid JSON: text
// is escaped per RFC 8259, bytes that are not UTF-8 are written as their Latin-1 code points.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace billingd::domain {

class json_object {
  public:
    json_object& add(std::string_view key, std::int64_t value);
    json_object& add(std::string_view key, std::string_view text);
    json_object& add(std::string_view key, const char* text) {
        return add(key, std::string_view{text});
    }
    json_object& add(std::string_view key, const std::string& text) {
        return add(key, std::string_view{text});
    }
    // An empty optional is written as null.
    json_object& add(std::string_view key, const std::optional<std::int64_t>& value);
    json_object& add(std::string_view key, const std::optional<std::string>& text);
    json_object& add_null(std::string_view key);

    std::string str() const { return text_.empty() ? "{}" : text_ + "}"; }

  private:
    void key(std::string_view name);
    std::string text_;
};

// `text` as a JSON string literal, quotes included.
void append_json_string(std::string& out, std::string_view text);

}  // namespace billingd::domain
