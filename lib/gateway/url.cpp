#include "gateway/url.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "gateway/http_client.hpp"

namespace billingd::gateway {
namespace {

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

}  // namespace

bool is_ip_literal(std::string_view host) {
    const std::string h(host);
    unsigned char buffer[16];
    return inet_pton(AF_INET, h.c_str(), buffer) == 1 ||
           inet_pton(AF_INET6, h.c_str(), buffer) == 1;
}

bool is_loopback_host(std::string_view host) {
    const std::string h = lower(host);
    if (h == "localhost") return true;
    unsigned char v4[4];
    if (inet_pton(AF_INET, h.c_str(), v4) == 1) return v4[0] == 127;
    unsigned char v6[16];
    if (inet_pton(AF_INET6, h.c_str(), v6) == 1) {
        static constexpr unsigned char loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                                       0, 0, 0, 0, 0, 0, 0, 1};
        return std::memcmp(v6, loopback, sizeof loopback) == 0;
    }
    return false;
}

std::variant<base_url, std::string> parse_base_url(std::string_view text) {
    base_url url;
    std::string_view rest;
    const std::string scheme_end = "://";
    const auto colon = text.find(scheme_end);
    if (colon == std::string_view::npos) return std::string("base_url must start with https://");
    const std::string scheme = lower(text.substr(0, colon));
    if (scheme == "https") {
        url.tls = true;
    } else if (scheme == "http") {
        url.tls = false;
    } else {
        return std::string("base_url must start with https://");
    }
    rest = text.substr(colon + scheme_end.size());
    if (rest.find_first_of("?#") != std::string_view::npos)
        return std::string("base_url must not have a query or fragment");

    const auto slash = rest.find('/');
    const std::string_view authority = rest.substr(0, slash);
    std::string_view path =
        slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    // RFC 3986 path characters only: the prefix goes into every request line, where a CR, LF,
    // space or control character would split or smuggle a request.
    for (std::size_t i = 0; i < path.size(); ++i) {
        const auto ch = static_cast<unsigned char>(path[i]);
        const bool pchar = std::isalnum(ch) || std::string_view{"-._~!$&'()*+,;=:@/"}.find(
                                                   static_cast<char>(ch)) != std::string_view::npos;
        const bool escape = ch == '%' && i + 2 < path.size() &&
                            std::isxdigit(static_cast<unsigned char>(path[i + 1])) &&
                            std::isxdigit(static_cast<unsigned char>(path[i + 2]));
        if (!pchar && !escape)
            return std::string("base_url path may only hold RFC 3986 path characters");
    }
    url.path_prefix = std::string(path);
    if (authority.find('@') != std::string_view::npos)
        return std::string("base_url must not contain user info");

    std::string_view port;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) return std::string("base_url has an unclosed [");
        url.host = std::string(authority.substr(1, close - 1));
        const auto after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') return std::string("base_url has junk after ]");
            port = after.substr(1);
        }
        unsigned char v6[16];
        if (inet_pton(AF_INET6, url.host.c_str(), v6) != 1)
            return std::string("base_url has an invalid IPv6 address");
    } else {
        const auto c = authority.rfind(':');
        url.host = std::string(authority.substr(0, c));
        if (c != std::string_view::npos) port = authority.substr(c + 1);
        if (url.host.find(':') != std::string::npos)
            return std::string("base_url: IPv6 addresses need brackets");
    }
    if (url.host.empty()) return std::string("base_url has no host");
    for (unsigned char ch : url.host) {
        if (!(std::isalnum(ch) || ch == '.' || ch == '-' || ch == '_' || ch == ':'))
            return std::string("base_url host has invalid characters");
    }
    if (port.empty()) {
        if (authority.back() == ':') return std::string("base_url has an empty port");
        url.port = url.tls ? "443" : "80";
    } else {
        if (port.size() > 5 || !std::all_of(port.begin(), port.end(),
                                            [](unsigned char ch) { return std::isdigit(ch); }))
            return std::string("base_url has an invalid port");
        const int number = std::stoi(std::string(port));
        if (number < 1 || number > 65535) return std::string("base_url has an invalid port");
        url.port = std::to_string(number);
    }
    if (!url.tls && !is_loopback_host(url.host))
        return std::string(
            "base_url must use https:// (http:// is allowed only for loopback addresses)");

    const bool v6 = url.host.find(':') != std::string::npos;
    url.host_header = v6 ? "[" + url.host + "]" : url.host;
    if (url.port != (url.tls ? "443" : "80")) url.host_header += ":" + url.port;
    return url;
}

std::optional<std::string> validate_base_url(std::string_view text) {
    auto parsed = parse_base_url(text);
    if (auto* error = std::get_if<std::string>(&parsed)) return *error;
    return std::nullopt;
}

}  // namespace billingd::gateway
