// What billingd's HTTP listeners (metrics_server, api_server) do alike before they listen:
// naming the endpoint for logs and STATUS, and replacing a unix socket a previous run left.
#pragma once

#include <string>

namespace billingd::daemon {

// "127.0.0.1:9108", "[::1]:9108".
std::string endpoint_text(const std::string& address, unsigned short port);

// A unix socket left at `path` by a previous run is removed; any other file there is not
// touched (binding then fails with a clear error).
void remove_stale_socket(const std::string& path);

}  // namespace billingd::daemon
