// The HTTP API's server: HTTP/1.1 (keep-alive) on billingd's own io_context, on a TCP address
// from [api] listen (with TLS when tls_cert/tls_key are set) or a unix socket. What a request
// means is api_routes' (api_routes.hpp); this file moves bytes and carries out the plan.
//
// Bounds, so that no client can hold charging up: at most max_connections at once (one more is
// answered 503 and closed), a request's header is 16 KiB and its body max_body_bytes at most,
// reading a request and writing its answer each have request_timeout, and a keep-alive
// connection waits idle_timeout for its next request.
//
// Writes: changes are queued and committed together (operations::group_commit, one fsync for
// up to max_batch changes), never across an await. While `charging` says a pass is running and
// changes keep arriving, a group commit that took d waits d * (100 - write_share_percent) /
// write_share_percent before the next, so the engine's own commits get the rest of the loop. A
// committed change that may have created work (a new subscription, a resume, a refund) calls
// `wake_engine`: billingd's own writes do not change PRAGMA data_version, which is how it notices
// other processes'.
//
// Errors: the constructor throws config_error when it cannot listen or load the TLS files.
// Thread safety: the io_context's one thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "daemon/config.hpp"
#include "gateway/client.hpp"
#include "scheduler/clock.hpp"
#include "storage/store.hpp"

namespace boost::asio {
class io_context;
}

namespace billingd::daemon {

class api_server {
  public:
    api_server(boost::asio::io_context& io, storage::store& store, gateway::client& gateway,
               const config& cfg, const scheduler::clock& clock, std::function<void()> wake_engine,
               std::function<bool()> charging);
    ~api_server();
    api_server(const api_server&) = delete;
    api_server& operator=(const api_server&) = delete;

    // "127.0.0.1:8640 (TLS)" or "unix:/run/billingd/api.sock", for the log.
    const std::string& endpoint() const { return endpoint_; }
    // Stops accepting; requests being answered finish, and keep-alive connections close after
    // their current answer.
    void stop();

    struct state;  // shared with the connections

  private:
    std::shared_ptr<state> state_;
    std::string endpoint_;
};

}  // namespace billingd::daemon
