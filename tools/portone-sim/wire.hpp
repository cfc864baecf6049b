// Small HTTP/JSON helpers of the simulator: targets, query strings, envelopes.
// Pure functions, no I/O.
#pragma once

#include <cstddef>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace portone_sim {

// Percent-decodes a path segment or query component (`+` is a space only in queries).
std::string url_decode(std::string_view s, bool plus_is_space);

// Splits "/a/b%20c?x=1" into decoded path segments {"a", "b c"} and the raw query "x=1".
struct target_parts {
    std::vector<std::string> segments;
    std::map<std::string, std::string> query;
};
target_parts split_target(std::string_view target);

// Parses `a=1&b=2` (application/x-www-form-urlencoded).
std::map<std::string, std::string> parse_form(std::string_view s);

// Number of Unicode code points in UTF-8 text.
std::size_t utf8_length(std::string_view s);

// The V1 envelope `{"code","message","response"}` as compact JSON text.
std::string envelope(int code, const nlohmann::json& message, const nlohmann::json& response);

}  // namespace portone_sim
