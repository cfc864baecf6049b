// Beast/Asio/OpenSSL transport of portone-sim: the only file that includes them.
#include "server.hpp"

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <csignal>
#include <iostream>
#include <optional>

namespace portone_sim {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using asio::use_awaitable;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

constexpr std::chrono::seconds write_timeout{60};
constexpr std::chrono::seconds handshake_timeout{30};

std::int64_t unix_now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

http_request to_sim_request(const http::request<http::string_body>& req) {
    http_request r;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.body = req.body();
    r.content_type = std::string(req[http::field::content_type]);
    r.authorization = std::string(req[http::field::authorization]);
    r.imp_token_header = std::string(req["X-ImpTokenHeader"]);
    return r;
}

http::response<http::string_body> to_beast(http_response r, unsigned version, bool keep_alive) {
    http::response<http::string_body> res{static_cast<http::status>(r.status), version};
    res.set(http::field::server, "portone-sim");
    res.set(http::field::content_type, r.content_type);
    for (auto& [name, value] : r.headers) res.set(name, value);
    res.keep_alive(keep_alive);
    res.body() = std::move(r.body);
    res.prepare_payload();
    return res;
}

// Closes with RST instead of FIN: the client sees "connection reset by peer".
template <class Stream>
void reset_connection(Stream& stream) {
    auto& socket = beast::get_lowest_layer(stream).socket();
    beast::error_code ec;
    socket.set_option(asio::socket_base::linger(true, 0), ec);
    socket.close(ec);
}

template <class Stream>
asio::awaitable<void> drain_until_closed(Stream& stream) {
    std::array<char, 4096> buf{};
    beast::error_code ec;
    while (!ec)
        co_await stream.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
}

// Holds the connection without answering until the client leaves or `limit` passes (the
// stream's own deadline closes the socket, which ends the read).
template <class Stream>
asio::awaitable<void> hang(Stream& stream, std::chrono::seconds limit) {
    beast::get_lowest_layer(stream).expires_after(limit);
    co_await drain_until_closed(stream);
    reset_connection(stream);
}

template <class Stream>
asio::awaitable<void> close_gracefully(Stream& stream) {
    beast::error_code ec;
    if constexpr (std::is_same_v<Stream, tls_stream>) {
        beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
        co_await stream.async_shutdown(asio::redirect_error(use_awaitable, ec));
    }
    beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_send, ec);
}

// Serves requests on one connection until it closes. Never throws.
template <class Stream>
asio::awaitable<void> serve(Stream& stream, simulator& sim, const server_options& opt) {
    beast::flat_buffer buffer;
    asio::steady_timer delay(stream.get_executor());
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(opt.max_body_bytes);
        parser.header_limit(16 * 1024);
        beast::get_lowest_layer(stream).expires_after(opt.idle_timeout);
        beast::error_code ec;
        co_await http::async_read(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));

        completion done;
        bool keep_alive = false;
        unsigned version = 11;
        if (ec == http::error::body_limit) {
            done.response = json_response(
                413, "{\"code\":-1,\"message\":\"Payload Too Large\",\"response\":null}");
        } else if (ec) {
            co_return;  // closed, idle timeout or unparsable request
        } else {
            const auto& req = parser.get();
            keep_alive = req.keep_alive();
            version = req.version();
            const auto started = std::chrono::steady_clock::now();
            std::optional<plan> planned;
            try {
                planned = sim.handle(to_sim_request(req), unix_now_ms());
            } catch (const std::exception& e) {
                std::cerr << "portone-sim: internal error: " << e.what() << '\n';
                done.response = json_response(
                    500, "{\"code\":-1,\"message\":\"internal error\",\"response\":null}");
            }
            if (planned) {
                if (planned->delay.count() > 0) {
                    beast::get_lowest_layer(stream).expires_never();
                    delay.expires_after(planned->delay);
                    co_await delay.async_wait(asio::redirect_error(use_awaitable, ec));
                }
                const auto tracked = planned->tracked;
                try {
                    done = sim.complete(std::move(*planned), unix_now_ms());
                } catch (const std::exception& e) {
                    if (tracked) sim.release(*tracked);  // complete() releases only on return
                    std::cerr << "portone-sim: internal error: " << e.what() << '\n';
                    done.response = json_response(
                        500, "{\"code\":-1,\"message\":\"internal error\",\"response\":null}");
                }
            }
            if (opt.verbose) {
                const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - started);
                std::cerr << "portone-sim: " << req.method_string() << ' ' << req.target() << ' '
                          << (done.action == transport_action::respond
                                  ? std::to_string(done.response.status)
                              : done.action == transport_action::reset ? "reset"
                                                                       : "hang")
                          << ' ' << ms.count() << "ms\n";
            }
        }

        if (done.action == transport_action::reset) {
            reset_connection(stream);
            co_return;
        }
        if (done.action == transport_action::hang) {
            co_await hang(stream, opt.hang);
            // A hung request stays in progress until the client leaves or --hang-seconds passes.
            if (done.held) sim.release(*done.held);
            co_return;
        }
        auto res = to_beast(std::move(done.response), version, keep_alive);
        beast::get_lowest_layer(stream).expires_after(write_timeout);
        co_await http::async_write(stream, res, asio::redirect_error(use_awaitable, ec));
        if (ec) co_return;
        if (!keep_alive) {
            co_await close_gracefully(stream);
            co_return;
        }
    }
}

asio::awaitable<void> serve_plain(tcp::socket socket, simulator& sim, const server_options& opt) {
    beast::tcp_stream stream(std::move(socket));
    co_await serve(stream, sim, opt);
}

asio::awaitable<void> serve_tls(tcp::socket socket, ssl::context& ctx, simulator& sim,
                                const server_options& opt) {
    tls_stream stream(std::move(socket), ctx);
    beast::get_lowest_layer(stream).expires_after(handshake_timeout);
    beast::error_code ec;
    co_await stream.async_handshake(ssl::stream_base::server,
                                    asio::redirect_error(use_awaitable, ec));
    if (ec) co_return;
    co_await serve(stream, sim, opt);
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, ssl::context* tls, simulator& sim,
                                  const server_options& opt) {
    const auto executor = co_await asio::this_coro::executor;
    asio::steady_timer pause(executor);
    for (;;) {
        beast::error_code ec;
        tcp::socket socket =
            co_await acceptor.async_accept(asio::redirect_error(use_awaitable, ec));
        if (!acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
        if (ec) {  // e.g. out of file descriptors: do not spin
            pause.expires_after(std::chrono::milliseconds(50));
            co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
            continue;
        }
        socket.set_option(tcp::no_delay(true), ec);
        if (tls != nullptr)
            asio::co_spawn(executor, serve_tls(std::move(socket), *tls, sim, opt), asio::detached);
        else
            asio::co_spawn(executor, serve_plain(std::move(socket), sim, opt), asio::detached);
    }
}

}  // namespace

int run_server(const server_options& options, simulator& sim) {
    std::optional<ssl::context> tls;
    if (!options.tls_cert.empty() || !options.tls_key.empty()) {
        tls.emplace(ssl::context::tls_server);
        tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                         ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                         ssl::context::no_tlsv1_1);
        tls->use_certificate_chain_file(options.tls_cert);
        tls->use_private_key_file(options.tls_key, ssl::context::pem);
    }

    asio::io_context ioc(1);
    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), options.port));
    signals.async_wait([&](const beast::error_code& ec, int) {
        if (ec) return;
        beast::error_code ignored;
        acceptor.close(ignored);
        ioc.stop();
    });
    std::cout << "listening on 127.0.0.1:" << acceptor.local_endpoint().port() << std::endl;

    asio::co_spawn(ioc, accept_loop(acceptor, tls ? &*tls : nullptr, sim, options), asio::detached);
    ioc.run();
    return 0;
}

}  // namespace portone_sim
