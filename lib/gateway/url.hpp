// Internal to lib/gateway: the PortOne base URL, parsed and checked.
//
// Accepted: `https://host[:port][/path]`, and `http://` only when host is a loopback address
// (127.0.0.0/8, ::1, localhost): the simulator. No user info, query or fragment.
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace billingd::gateway {

struct base_url {
    bool tls = true;
    std::string host;         // without brackets for IPv6 literals
    std::string port;         // "443" / "80" when not given
    std::string path_prefix;  // "" or "/something" without a trailing slash
    std::string host_header;  // Host: value (port only when not the default)
};

// The parsed URL, or an error text saying what is wrong.
std::variant<base_url, std::string> parse_base_url(std::string_view text);

bool is_loopback_host(std::string_view host);
bool is_ip_literal(std::string_view host);

}  // namespace billingd::gateway
