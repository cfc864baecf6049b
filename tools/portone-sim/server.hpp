// The simulator's HTTP/1.1 transport (Boost.Beast, one thread, C++20 coroutines).
//
// Only server.cpp includes Asio/Beast/OpenSSL. `run_server` binds 127.0.0.1:port, prints
// `listening on 127.0.0.1:PORT` as the first stdout line, serves until SIGTERM/SIGINT and
// then returns 0. It throws std::exception when it cannot start (port in use, bad TLS files).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "simulator.hpp"

namespace portone_sim {

struct server_options {
    std::uint16_t port = 0;
    std::string tls_cert;  // PEM files; both empty: plain HTTP
    std::string tls_key;
    std::chrono::seconds hang{300};
    std::chrono::seconds idle_timeout{60};  // keep-alive connections idle this long are closed
    std::size_t max_body_bytes = std::size_t{1} << 20;
    bool verbose = false;  // one stderr line per request
};

int run_server(const server_options& options, simulator& sim);

}  // namespace portone_sim
