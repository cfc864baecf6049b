// The Prometheus endpoint: GET /metrics over HTTP/1.1 on the daemon's own io_context, on a
// TCP address from [metrics] listen (loopback unless allow_non_loopback) or a unix socket.
//
// It never holds charging up for long: at most max_connections at once (more are closed at
// once), every connection has a deadline for reading the request and writing the answer, the
// request is bounded (8 KiB of headers, no body), and one connection is answered and closed.
// The body comes from `render`, called on the io_context thread; it must be quick (index
// reads only, see metrics/database_gauges.hpp). An exception from it answers 500.
//
// Errors: the constructor throws config_error when it cannot listen (address in use, no
// permission), naming the address. Thread safety: the io_context's one thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "daemon/config.hpp"

namespace boost::asio {
class io_context;
}

namespace billingd::daemon {

class metrics_server {
  public:
    using render_function = std::function<std::string()>;
    struct limits {
        std::size_t max_connections = 8;
        std::chrono::milliseconds deadline{5000};  // per read and per write
    };

    metrics_server(boost::asio::io_context& io, const metrics_config& where, render_function render,
                   limits l);
    metrics_server(boost::asio::io_context& io, const metrics_config& where, render_function render)
        : metrics_server(io, where, std::move(render), limits{}) {}
    ~metrics_server();
    metrics_server(const metrics_server&) = delete;
    metrics_server& operator=(const metrics_server&) = delete;

    // "127.0.0.1:9464" or "unix:/run/billingd/metrics.sock", for the log.
    const std::string& endpoint() const { return endpoint_; }
    // Stops accepting; connections being answered finish within their deadline.
    void stop();

    struct state;  // shared with the connections being answered

  private:
    std::shared_ptr<state> state_;
    std::string endpoint_;
};

}  // namespace billingd::daemon
