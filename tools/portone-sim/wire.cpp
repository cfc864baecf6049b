#include "wire.hpp"

#include <nlohmann/json.hpp>

namespace portone_sim {
namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

std::string url_decode(std::string_view s, bool plus_is_space) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
            hex_value(s[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
            i += 2;
        } else if (plus_is_space && s[i] == '+') {
            out.push_back(' ');
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

std::map<std::string, std::string> parse_form(std::string_view s) {
    std::map<std::string, std::string> out;
    while (!s.empty()) {
        const auto amp = s.find('&');
        const auto pair = s.substr(0, amp);
        const auto eq = pair.find('=');
        if (!pair.empty()) {
            out[url_decode(pair.substr(0, eq), true)] = eq == std::string_view::npos
                                                            ? std::string()
                                                            : url_decode(pair.substr(eq + 1), true);
        }
        if (amp == std::string_view::npos) break;
        s.remove_prefix(amp + 1);
    }
    return out;
}

target_parts split_target(std::string_view target) {
    target_parts parts;
    const auto q = target.find('?');
    if (q != std::string_view::npos) parts.query = parse_form(target.substr(q + 1));
    auto path = target.substr(0, q);
    while (!path.empty()) {
        const auto slash = path.find('/');
        if (slash != 0) parts.segments.push_back(url_decode(path.substr(0, slash), false));
        if (slash == std::string_view::npos) break;
        path.remove_prefix(slash + 1);
    }
    return parts;
}

std::size_t utf8_length(std::string_view s) {
    std::size_t n = 0;
    for (char c : s)
        if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
    return n;
}

std::string envelope(int code, const nlohmann::json& message, const nlohmann::json& response) {
    nlohmann::json body = {{"code", code}, {"message", message}, {"response", response}};
    return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace portone_sim
