// The one Beast translation unit of the HTTP API (see api_server.hpp).
#include "daemon/api_server.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <deque>
#include <optional>

#include "daemon/api_routes.hpp"
#include "daemon/listen_address.hpp"
#include "operations/operation.hpp"

namespace billingd::daemon {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using steady = std::chrono::steady_clock;

namespace {

constexpr std::size_t header_limit = 16 * 1024;
constexpr auto handshake_timeout = std::chrono::seconds{10};
// Idempotency keys are pruned after every this many group commits.
constexpr unsigned prune_every = 64;

// A change waiting for the next group commit; `done` is cancelled when `result` is set.
struct pending_change {
    api_change change;
    api_response result;
    asio::steady_timer* done = nullptr;
};

}  // namespace

struct api_server::state {
    state(asio::io_context& io, storage::store& s, gateway::client& g, const config& c,
          const scheduler::clock& k, std::function<void()> w, std::function<bool()> busy)
        : io(io),
          store(s),
          gateway(g),
          cfg(c),
          routes(s, c, k),
          wake(std::move(w)),
          charging(std::move(busy)),
          flush_timer(io) {}

    asio::io_context& io;
    storage::store& store;
    gateway::client& gateway;
    const config& cfg;
    api_routes routes;
    std::function<void()> wake;
    std::function<bool()> charging;  // a pass is running: API writes leave it its share
    std::optional<ssl::context> tls;
    std::size_t active = 0;
    bool stopping = false;
    std::function<void()> close_acceptor;

    // The writer.
    std::deque<pending_change*> queue;
    bool flush_scheduled = false;
    steady::time_point next_flush_at{};
    asio::steady_timer flush_timer;
    unsigned flushes = 0;
    // For the log line at stop (and bench/api_*.py): how many changes in how many group
    // commits, and the longest one: how long the engine may have waited for the API.
    std::uint64_t changes = 0;
    steady::duration longest{};

    void schedule_flush(const std::shared_ptr<state>& self);
    void flush(const std::shared_ptr<state>& self);
    bool commit_group(const std::vector<pending_change*>& batch);
};

void api_server::state::schedule_flush(const std::shared_ptr<state>& self) {
    if (flush_scheduled) return;
    flush_scheduled = true;
    if (steady::now() >= next_flush_at) {
        // After the handlers that are ready now: requests read in this turn join the group.
        asio::post(io, [self] { self->flush(self); });
        return;
    }
    flush_timer.expires_at(next_flush_at);
    flush_timer.async_wait([self](const boost::system::error_code&) { self->flush(self); });
}

// Runs the batch in one group commit; returns whether a committed change asks to wake the
// engine.
bool api_server::state::commit_group(const std::vector<pending_change*>& batch) {
    bool wake_engine = false;
    const auto run = [&](pending_change* p) {
        try {
            p->result = p->change.run();
            if (p->result.status < 300 && p->change.wakes_engine) wake_engine = true;
        } catch (const operations::error& e) {
            p->result = api_routes::problem(e);
        } catch (const storage::constraint_error& e) {
            p->result =
                api_routes::problem(409, "database-refused",
                                    std::string{"the database refused the change: "} + e.what());
        }
    };
    try {
        operations::group_commit group(store);
        for (auto* p : batch) run(p);
        if (++flushes % prune_every == 0) routes.forget_old_keys();
        group.commit();
        return wake_engine;
    } catch (const std::exception& e) {
        // Nothing of the group was kept: every request in it is told so.
        spdlog::error("api group commit failed changes={} error={}", batch.size(), e.what());
        for (auto* p : batch)
            p->result = api_routes::problem(503, "database-unavailable",
                                            "billingd could not write the change; nothing "
                                            "was changed, try again");
        return false;
    }
}

void api_server::state::flush(const std::shared_ptr<state>& self) {
    flush_scheduled = false;
    std::vector<pending_change*> batch;
    while (!queue.empty() && batch.size() < cfg.api.max_batch) {
        batch.push_back(queue.front());
        queue.pop_front();
    }
    if (batch.empty()) return;
    const auto started = steady::now();
    const bool wake_engine = commit_group(batch);
    const auto took = steady::now() - started;
    changes += batch.size();
    longest = std::max(longest, took);
    const int share = cfg.api.write_share_percent;
    const bool yield = charging && charging();
    next_flush_at = steady::now() + (yield ? took * (100 - share) / share : steady::duration{});
    for (auto* p : batch) p->done->cancel();
    if (wake_engine && wake) wake();
    if (!queue.empty()) schedule_flush(self);
}

namespace {

using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

api_request to_api(const request& req) {
    api_request r;
    r.method = std::string{req.method_string()};
    r.target = std::string{req.target()};
    r.authorization = std::string{req[http::field::authorization]};
    if (auto it = req.find("Idempotency-Key"); it != req.end())
        r.idempotency_key = std::string{it->value()};
    r.content_type = std::string{req[http::field::content_type]};
    r.body = req.body();
    return r;
}

response to_http(api_response a, unsigned version, bool keep_alive) {
    response res{static_cast<http::status>(a.status), version};
    res.set(http::field::server, "billingd");
    res.set(http::field::content_type, a.content_type);
    res.set(http::field::cache_control, "no-store");
    for (auto& [name, value] : a.headers) res.set(name, value);
    res.body() = std::move(a.body);
    res.keep_alive(keep_alive);
    res.prepare_payload();
    return res;
}

asio::awaitable<api_response> submit(std::shared_ptr<api_server::state> st, api_change change) {
    asio::steady_timer done(st->io, asio::steady_timer::time_point::max());
    pending_change p{std::move(change), {}, &done};
    st->queue.push_back(&p);
    st->schedule_flush(st);
    boost::system::error_code ec;
    co_await done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    co_return std::move(p.result);
}

asio::awaitable<api_response> carry_out(std::shared_ptr<api_server::state> st, api_request req) {
    api_plan plan;
    try {
        plan = st->routes.route(req);
    } catch (const std::exception& e) {  // storage::error of a read
        spdlog::error("api read failed error={}", e.what());
        co_return api_routes::problem(503, "database-unavailable",
                                      "billingd could not read the database; try again");
    }
    if (auto* a = std::get_if<api_response>(&plan)) co_return std::move(*a);
    if (auto* c = std::get_if<api_change>(&plan)) co_return co_await submit(st, std::move(*c));
    const std::string uid = std::get<api_portone_call>(plan).customer_uid;
    const auto found = co_await st->gateway.get_customer(uid);
    co_return st->routes.customer_answer(uid, found);
}

std::string too_large(std::size_t max_body_bytes) {
    return fmt::format("the request body is larger than {} bytes", max_body_bytes);
}

template <typename Stream>
void set_deadline(Stream& stream, std::chrono::milliseconds d) {
    beast::get_lowest_layer(stream).expires_after(d);
}

// Answers a request the parser refused (too large); the connection ends after it.
template <typename Stream>
asio::awaitable<void> write_refusal(Stream& stream, std::chrono::milliseconds deadline,
                                    response res) {
    boost::system::error_code ec;
    set_deadline(stream, deadline);
    co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
}

response refusal(int status, const std::string& type, const std::string& detail) {
    return to_http(api_routes::problem(status, type, detail), 11, false);
}

template <typename Stream>
asio::awaitable<void> serve_requests(Stream& stream, std::shared_ptr<api_server::state> st) {
    const auto& limits = st->cfg.api;
    beast::flat_buffer buffer;
    for (bool first = true; !st->stopping; first = false) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(header_limit);
        parser.body_limit(limits.max_body_bytes);
        boost::system::error_code ec;
        // A keep-alive connection may wait idle_timeout for its next request; then the request
        // itself must arrive within request_timeout.
        set_deadline(stream, first ? limits.request_timeout : limits.idle_timeout);
        co_await http::async_read_header(stream, buffer, parser,
                                         asio::redirect_error(asio::use_awaitable, ec));
        // (Coroutine arguments are named first: GCC 12 mishandles temporaries in co_await.)
        if (ec == http::error::header_limit) {
            auto res =
                refusal(431, "header-too-large", "the request's header is larger than 16 KiB");
            co_await write_refusal(stream, limits.request_timeout, std::move(res));
            co_return;
        }
        if (ec == http::error::body_limit) {  // Content-Length says so before the body comes
            auto res = refusal(413, "body-too-large", too_large(limits.max_body_bytes));
            co_await write_refusal(stream, limits.request_timeout, std::move(res));
            co_return;
        }
        if (ec) co_return;  // closed, timed out, or not HTTP
        if (parser.get()[http::field::expect] == "100-continue") {
            http::response<http::empty_body> go_on{http::status::continue_, 11};
            set_deadline(stream, limits.request_timeout);
            co_await http::async_write(stream, go_on,
                                       asio::redirect_error(asio::use_awaitable, ec));
            if (ec) co_return;
        }
        set_deadline(stream, limits.request_timeout);
        co_await http::async_read(stream, buffer, parser,
                                  asio::redirect_error(asio::use_awaitable, ec));
        if (ec == http::error::body_limit) {
            auto res = refusal(413, "body-too-large", too_large(limits.max_body_bytes));
            co_await write_refusal(stream, limits.request_timeout, std::move(res));
            co_return;
        }
        if (ec) co_return;
        const auto& req = parser.get();
        const auto started = steady::now();
        auto request = to_api(req);
        auto answer = co_await carry_out(st, std::move(request));
        const int status = answer.status;
        const bool keep_alive = req.keep_alive() && !st->stopping;
        auto res = to_http(std::move(answer), req.version(), keep_alive);
        spdlog::debug(
            "api method={} path={} status={} ms={}", std::string{req.method_string()},
            std::string{req.target().substr(0, req.target().find('?'))}, status,
            std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - started).count());
        set_deadline(stream, limits.request_timeout);
        co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
        if (ec || !keep_alive) co_return;
    }
}

struct connection_slot {
    std::shared_ptr<api_server::state> st;
    ~connection_slot() { --st->active; }
};

// Closes gracefully: after our FIN, what the client still sends (the rest of a body refused
// as too large) is read and dropped for a moment, so that closing does not reset the
// connection and destroy the answer before the client has read it.
template <typename Protocol>
asio::awaitable<void> linger(beast::basic_stream<Protocol>& stream) {
    boost::system::error_code ec;
    stream.socket().shutdown(asio::socket_base::shutdown_send, ec);
    if (ec) co_return;
    constexpr std::size_t at_most = 1 << 20;
    std::array<char, 16 * 1024> sink;
    std::size_t dropped = 0;
    stream.expires_after(std::chrono::seconds{1});
    while (dropped < at_most) {
        const auto n = co_await stream.async_read_some(
            asio::buffer(sink), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;
        dropped += n;
    }
}

template <typename Protocol>
asio::awaitable<void> serve_plain(typename Protocol::socket socket,
                                  std::shared_ptr<api_server::state> st) {
    connection_slot slot{st};
    beast::basic_stream<Protocol> stream(std::move(socket));
    co_await serve_requests(stream, st);
    co_await linger(stream);
}

asio::awaitable<void> serve_tls(asio::ip::tcp::socket socket,
                                std::shared_ptr<api_server::state> st) {
    connection_slot slot{st};
    beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), *st->tls);
    boost::system::error_code ec;
    beast::get_lowest_layer(stream).expires_after(handshake_timeout);
    co_await stream.async_handshake(ssl::stream_base::server,
                                    asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    co_await serve_requests(stream, st);
    beast::get_lowest_layer(stream).expires_after(handshake_timeout);
    co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
}

// Over the bound: a short 503 instead of a silent reset, then close.
template <typename Protocol>
asio::awaitable<void> turn_away(typename Protocol::socket socket, bool tls) {
    if (tls) co_return;  // no handshake for it: closing is the answer
    beast::basic_stream<Protocol> stream(std::move(socket));
    stream.expires_after(std::chrono::seconds{1});
    auto res = to_http(api_routes::problem(503, "too-many-connections",
                                           "billingd is serving as many API connections as "
                                           "[api] max_connections allows; try again"),
                       11, false);
    boost::system::error_code ec;
    co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
    co_await linger(stream);
}

template <typename Protocol>
asio::awaitable<void> accept_loop(std::shared_ptr<typename Protocol::acceptor> acceptor,
                                  std::shared_ptr<api_server::state> st) {
    for (;;) {
        boost::system::error_code ec;
        typename Protocol::socket socket =
            co_await acceptor->async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
        if (ec) continue;  // e.g. too many open files: try the next one
        const auto executor = acceptor->get_executor();
        if (st->active >= st->cfg.api.max_connections) {
            asio::co_spawn(executor, turn_away<Protocol>(std::move(socket), st->tls.has_value()),
                           asio::detached);
            continue;
        }
        ++st->active;
        if constexpr (std::is_same_v<Protocol, asio::ip::tcp>) {
            if (st->tls) {
                asio::co_spawn(executor, serve_tls(std::move(socket), st), asio::detached);
                continue;
            }
        }
        asio::co_spawn(executor, serve_plain<Protocol>(std::move(socket), st), asio::detached);
    }
}

template <typename Protocol>
void listen(asio::io_context& io, const typename Protocol::endpoint& at,
            std::shared_ptr<api_server::state> st, const std::string& name) {
    auto acceptor = std::make_shared<typename Protocol::acceptor>(io);
    boost::system::error_code ec;
    acceptor->open(at.protocol(), ec);
    if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor->bind(at, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
        throw config_error(fmt::format("[api] listen {}: cannot listen: {}", name, ec.message()));
    st->close_acceptor = [acceptor] {
        boost::system::error_code ignored;
        acceptor->close(ignored);
    };
    asio::co_spawn(io, accept_loop<Protocol>(acceptor, st), asio::detached);
}

}  // namespace

api_server::api_server(asio::io_context& io, storage::store& store, gateway::client& gateway,
                       const config& cfg, const scheduler::clock& clock,
                       std::function<void()> wake_engine, std::function<bool()> charging)
    : state_(std::make_shared<state>(io, store, gateway, cfg, clock, std::move(wake_engine),
                                     std::move(charging))) {
    const auto& a = cfg.api;
    if (!a.tls_cert.empty()) {
        try {
            state_->tls.emplace(ssl::context::tls_server);
            state_->tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                                     ssl::context::no_tlsv1_1);
            state_->tls->use_certificate_chain_file(a.tls_cert);
            state_->tls->use_private_key_file(a.tls_key, ssl::context::pem);
        } catch (const boost::system::system_error& e) {
            throw config_error(fmt::format("[api] tls_cert {} / tls_key {}: {}", a.tls_cert,
                                           a.tls_key, e.code().message()));
        }
    }
    if (!a.unix_path.empty()) {
        endpoint_ = "unix:" + a.unix_path;
        remove_stale_socket(a.unix_path);
        listen<asio::local::stream_protocol>(
            io, asio::local::stream_protocol::endpoint(a.unix_path), state_, endpoint_);
    } else {
        const auto address = asio::ip::make_address(a.address);
        endpoint_ = endpoint_text(a.address, a.port);
        listen<asio::ip::tcp>(io, asio::ip::tcp::endpoint(address, a.port), state_, endpoint_);
        if (state_->tls) endpoint_ += " (TLS)";
    }
}

api_server::~api_server() {
    stop();
}

void api_server::stop() {
    state_->stopping = true;
    if (state_->close_acceptor) {
        state_->close_acceptor();
        state_->close_acceptor = nullptr;
        spdlog::info(
            "api writes groups={} changes={} longest_group_ms={}", state_->flushes, state_->changes,
            std::chrono::duration_cast<std::chrono::milliseconds>(state_->longest).count());
    }
}

}  // namespace billingd::daemon
