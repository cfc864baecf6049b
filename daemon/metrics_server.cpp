// The one Beast translation unit of the metrics endpoint (see metrics_server.hpp).
#include "daemon/metrics_server.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "daemon/listen_address.hpp"
#include "metrics/exposition.hpp"

namespace billingd::daemon {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct metrics_server::state {
    render_function render;
    limits bounds;
    std::size_t active = 0;
    std::function<void()> close_acceptor;
};

namespace {

using response = http::response<http::string_body>;

response answer(metrics_server::state& st, const http::request<http::string_body>& req) {
    response res;
    res.version(11);
    res.keep_alive(false);
    res.set(http::field::server, "billingd");
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    if (req.target() != "/metrics") {
        res.result(http::status::not_found);
        res.body() = "billingd serves GET /metrics only\n";
    } else if (req.method() != http::verb::get) {
        res.result(http::status::method_not_allowed);
        res.set(http::field::allow, "GET");
        res.body() = "GET /metrics only\n";
    } else {
        try {
            res.body() = st.render();
            res.result(http::status::ok);
            res.set(http::field::content_type, metrics::content_type);
        } catch (const std::exception& e) {
            res.result(http::status::internal_server_error);
            res.body() = fmt::format("metrics unavailable: {}\n", e.what());
        }
    }
    res.prepare_payload();
    return res;
}

template <typename Protocol>
asio::awaitable<void> serve_one(beast::basic_stream<Protocol> stream,
                                std::shared_ptr<metrics_server::state> st) {
    struct slot {
        metrics_server::state& s;
        ~slot() { --s.active; }
    } taken{*st};
    beast::flat_buffer buffer(8192);
    http::request_parser<http::string_body> parser;
    parser.header_limit(8192);
    parser.body_limit(1024);
    boost::system::error_code ec;
    stream.expires_after(st->bounds.deadline);
    co_await http::async_read(stream, buffer, parser,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    response res = answer(*st, parser.get());
    stream.expires_after(st->bounds.deadline);
    co_await http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
    beast::error_code ignored;
    stream.socket().shutdown(asio::socket_base::shutdown_send, ignored);
}

template <typename Protocol>
asio::awaitable<void> accept_loop(std::shared_ptr<typename Protocol::acceptor> acceptor,
                                  std::shared_ptr<metrics_server::state> st) {
    for (;;) {
        boost::system::error_code ec;
        typename Protocol::socket socket =
            co_await acceptor->async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
        if (ec) continue;  // e.g. too many open files: try the next one
        if (st->active >= st->bounds.max_connections) {
            socket.close(ec);  // over the bound: refuse rather than queue
            continue;
        }
        ++st->active;
        beast::basic_stream<Protocol> stream(std::move(socket));
        asio::co_spawn(acceptor->get_executor(), serve_one<Protocol>(std::move(stream), st),
                       asio::detached);
    }
}

template <typename Protocol>
void listen(asio::io_context& io, const typename Protocol::endpoint& at,
            std::shared_ptr<metrics_server::state> st, const std::string& name) {
    auto acceptor = std::make_shared<typename Protocol::acceptor>(io);
    boost::system::error_code ec;
    acceptor->open(at.protocol(), ec);
    if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor->bind(at, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
        throw config_error(
            fmt::format("[metrics] listen {}: cannot listen: {}", name, ec.message()));
    st->close_acceptor = [acceptor] {
        boost::system::error_code ignored;
        acceptor->close(ignored);
    };
    asio::co_spawn(io, accept_loop<Protocol>(acceptor, st), asio::detached);
}

}  // namespace

metrics_server::metrics_server(asio::io_context& io, const metrics_config& where,
                               render_function render, limits l)
    : state_(std::make_shared<state>()) {
    state_->render = std::move(render);
    state_->bounds = l;
    if (!where.unix_path.empty()) {
        endpoint_ = "unix:" + where.unix_path;
        remove_stale_socket(where.unix_path);
        listen<asio::local::stream_protocol>(
            io, asio::local::stream_protocol::endpoint(where.unix_path), state_, endpoint_);
    } else {
        const auto address = asio::ip::make_address(where.address);
        endpoint_ = endpoint_text(where.address, where.port);
        listen<asio::ip::tcp>(io, asio::ip::tcp::endpoint(address, where.port), state_, endpoint_);
    }
}

metrics_server::~metrics_server() {
    stop();
}

void metrics_server::stop() {
    if (state_->close_acceptor) {
        state_->close_acceptor();
        state_->close_acceptor = nullptr;
    }
}

}  // namespace billingd::daemon
