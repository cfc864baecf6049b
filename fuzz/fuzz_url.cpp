// The PortOne base URL (parse_base_url / validate_base_url) and path segment encoding.
//
// Input: any bytes, used whole as a base_url candidate and as a path segment.
// Invariants: an accepted base_url is https, or http on a loopback host (localhost,
// 127.0.0.0/8, ::1); nothing that reaches the request line or the Host header carries a
// control character, a space or a byte outside ASCII, and the path prefix holds only RFC 3986
// path characters; the parsed parts put back together parse to the same URL;
// encode_path_segment emits only unreserved characters and %XX, and decodes back to its input.
#include <arpa/inet.h>

#include <cctype>
#include <string>
#include <variant>

#include "fuzz_support.hpp"
#include "gateway/http_client.hpp"
#include "gateway/url.hpp"
#include "gateway/wire.hpp"

namespace gw = billingd::gateway;

namespace {

std::string lower(std::string_view text) {
    std::string out(text);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

bool starts_with_scheme(std::string_view text, std::string_view scheme) {
    return lower(text.substr(0, scheme.size())) == scheme;
}

// Loopback as the operating system sees it, decided here without url.cpp's help.
bool loopback(const std::string& host) {
    if (lower(host) == "localhost") return true;
    in_addr v4{};
    if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
    in6_addr v6{};
    if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
    return false;
}

bool unreserved(unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
bool hex_digit(unsigned char c) {
    return std::isdigit(c) || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}
int hex_value(char c) {
    return std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : std::toupper(c) - 'A' + 10;
}

// RFC 3986 path-abempty: *( "/" segment ), segment = *pchar,
// pchar = unreserved / pct-encoded / sub-delims / ":" / "@".
bool rfc3986_path(std::string_view path) {
    for (std::size_t i = 0; i < path.size(); ++i) {
        const auto c = static_cast<unsigned char>(path[i]);
        if (unreserved(c) || c == '/' || c == ':' || c == '@') continue;
        if (std::string_view("!$&'()*+,;=").find(static_cast<char>(c)) != std::string_view::npos)
            continue;
        if (c == '%' && i + 2 < path.size() && hex_digit(path[i + 1]) && hex_digit(path[i + 2])) {
            i += 2;
            continue;
        }
        return false;
    }
    return true;
}

bool printable_ascii(std::string_view text) {
    for (unsigned char c : text)
        if (c <= 0x20 || c >= 0x7F) return false;
    return true;
}

void check_base_url(std::string_view text) {
    const auto parsed = gw::parse_base_url(text);
    const auto problem = gw::validate_base_url(text);
    const auto* url = std::get_if<gw::base_url>(&parsed);
    FUZZ_CHECK(problem.has_value() == (url == nullptr),
               "validate_base_url and parse_base_url disagree");
    if (!url) {
        FUZZ_CHECK(!std::get<std::string>(parsed).empty(), "a refusal without a reason");
        return;
    }
    if (url->tls) {
        FUZZ_CHECK(starts_with_scheme(text, "https://"), "tls for a URL that is not https://");
    } else {
        FUZZ_CHECK(starts_with_scheme(text, "http://"), "plain for a URL that is not http://");
        FUZZ_CHECK(loopback(url->host), "http:// accepted for a host that is not loopback");
    }
    FUZZ_CHECK(!url->host.empty(), "an empty host");
    FUZZ_CHECK(printable_ascii(url->host) && printable_ascii(url->port) &&
                   printable_ascii(url->host_header),
               "a control character, space or non-ASCII byte in the host or port");
    FUZZ_CHECK(printable_ascii(url->path_prefix),
               "a control character, space or non-ASCII byte in the path (request splitting)");
    FUZZ_CHECK(rfc3986_path(url->path_prefix), "a path character RFC 3986 does not allow");
    FUZZ_CHECK(url->path_prefix.empty() ||
                   (url->path_prefix.front() == '/' && url->path_prefix.back() != '/'),
               "the path prefix is neither empty nor /something without a trailing slash");
    FUZZ_CHECK(!url->port.empty() && url->port.size() <= 5 && url->port.front() != '0',
               "a port that is not 1..65535 in plain decimal");
    const int port = std::stoi(url->port);
    FUZZ_CHECK(port >= 1 && port <= 65535, "a port outside 1..65535");
    FUZZ_CHECK(url->host_header.starts_with(url->host) ||
                   url->host_header.starts_with("[" + url->host + "]"),
               "the Host header does not name the host");

    // Put back together, the parts mean the same URL.
    const std::string again =
        std::string(url->tls ? "https://" : "http://") + url->host_header + url->path_prefix;
    const auto reparsed = gw::parse_base_url(again);
    const auto* url2 = std::get_if<gw::base_url>(&reparsed);
    FUZZ_CHECK(url2 != nullptr, "the parsed URL put back together is refused");
    FUZZ_CHECK(url2->tls == url->tls && url2->host == url->host && url2->port == url->port &&
                   url2->path_prefix == url->path_prefix && url2->host_header == url->host_header,
               "the parsed URL put back together parses differently");
}

void check_segment(std::string_view segment) {
    const std::string encoded = gw::wire::encode_path_segment(segment);
    std::string decoded;
    for (std::size_t i = 0; i < encoded.size(); ++i) {
        const auto c = static_cast<unsigned char>(encoded[i]);
        if (unreserved(c)) {
            decoded += static_cast<char>(c);
            continue;
        }
        FUZZ_CHECK(c == '%' && i + 2 < encoded.size() && hex_digit(encoded[i + 1]) &&
                       hex_digit(encoded[i + 2]),
                   "an encoded segment holds a character that is neither unreserved nor %XX");
        decoded += static_cast<char>(hex_value(encoded[i + 1]) * 16 + hex_value(encoded[i + 2]));
        i += 2;
    }
    FUZZ_CHECK(decoded == segment, "an encoded segment does not decode to its input");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    check_base_url(text);
    check_segment(text);
    (void)gw::is_loopback_host(text);
    (void)gw::is_ip_literal(text);
    return 0;
}
