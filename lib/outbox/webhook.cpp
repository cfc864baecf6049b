// The webhook transport: Beast + OpenSSL, only in this file.
#include <openssl/ssl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <stdexcept>
#include <variant>

#include "domain/text.hpp"
#include "gateway/url.hpp"
#include "outbox/signature.hpp"
#include "outbox/transports.hpp"

namespace billingd::outbox {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

auto with_ec(error_code& ec) {
    return asio::redirect_error(asio::use_awaitable, ec);
}

std::string replace_word(std::string text, std::string_view from, std::string_view to) {
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
        text.replace(at, from.size(), to);
    return text;
}

// What a receiver answered, printable and short (it lands in last_error and the log).
std::string excerpt(std::string_view body) {
    std::string out;
    for (char ch : domain::cut_utf8(body, 200)) {
        const auto c = static_cast<unsigned char>(ch);
        out += (c < 0x20 || c == 0x7f) ? ' ' : ch;
    }
    return out;
}

std::string describe(const error_code& ec, std::chrono::milliseconds timeout) {
    if (ec == beast::error::timeout)
        return "timed out after " + std::to_string(timeout.count()) + " ms";
    if (ec == http::error::body_limit) return "answer too large";
    if (ec == http::error::end_of_stream || ec == asio::error::eof)
        return "connection closed before a complete answer";
    return ec.message();
}

class webhook_channel final : public channel {
  public:
    webhook_channel(asio::io_context& io, webhook_options o, gateway::base_url url)
        : executor_(io.get_executor()), options_(std::move(o)), url_(std::move(url)) {
        target_ = url_.path_prefix.empty() ? "/" : url_.path_prefix;
        if (url_.tls) {
            tls_.emplace(ssl::context::tls_client);
            tls_->set_default_verify_paths();
            if (!options_.ca_file.empty()) {
                error_code ec;
                tls_->load_verify_file(options_.ca_file, ec);
                if (ec) throw std::invalid_argument("cannot load ca_file " + options_.ca_file);
            }
            SSL_CTX_set_min_proto_version(tls_->native_handle(), TLS1_2_VERSION);
            tls_->set_verify_mode(ssl::verify_peer);
        }
    }

    std::string_view name() const override { return "webhook"; }

    asio::awaitable<attempt_result> deliver(outgoing m) override {
        http::request<http::string_body> request{http::verb::post, target_, 11};
        request.set(http::field::host, url_.host_header);
        request.set(http::field::user_agent, "billingd-webhooks");
        request.set(http::field::content_type, "application/json");
        request.set("webhook-id", m.id);
        request.set("webhook-timestamp", std::to_string(m.timestamp));
        request.set("webhook-signature",
                    signature_header(options_.keys, m.id, m.timestamp, m.body));
        request.keep_alive(false);
        request.body() = std::move(m.body);
        request.prepare_payload();

        auto endpoints = co_await resolve();
        if (auto* error = std::get_if<std::string>(&endpoints))
            co_return attempt_result{false, *error};
        const auto& found = std::get<tcp::resolver::results_type>(endpoints);

        beast::tcp_stream tcp_stream(executor_);
        error_code ec;
        tcp_stream.expires_after(options_.connect_timeout);
        co_await tcp_stream.async_connect(found, with_ec(ec));
        if (ec)
            co_return attempt_result{false, "connect to " + url_.host_header + ": " +
                                                describe(ec, options_.connect_timeout)};
        if (!tls_) co_return co_await exchange(tcp_stream, request);

        beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp_stream), *tls_);
        if (!gateway::is_ip_literal(url_.host) &&
            !SSL_set_tlsext_host_name(stream.native_handle(), url_.host.c_str()))
            co_return attempt_result{false, "TLS: cannot set SNI for " + url_.host};
        stream.set_verify_mode(ssl::verify_peer);
        stream.set_verify_callback(ssl::host_name_verification(url_.host));
        co_await stream.async_handshake(ssl::stream_base::client, with_ec(ec));
        if (ec) {
            const long verify = SSL_get_verify_result(stream.native_handle());
            co_return attempt_result{
                false, "TLS handshake with " + url_.host_header + ": " +
                           (verify != X509_V_OK ? std::string("certificate verification failed: ") +
                                                      X509_verify_cert_error_string(verify)
                                                : describe(ec, options_.connect_timeout))};
        }
        co_return co_await exchange(stream, request);
    }

  private:
    // Resolution raced against connect_timeout: a getaddrinfo in progress cannot be
    // cancelled, so a slow one is abandoned (it finishes into state nobody reads).
    asio::awaitable<std::variant<tcp::resolver::results_type, std::string>> resolve() {
        struct state_t {
            explicit state_t(const asio::any_io_executor& ex) : wake(ex) {}
            asio::steady_timer wake;
            error_code ec;
            tcp::resolver::results_type endpoints;
            bool finished = false;
        };
        auto state = std::make_shared<state_t>(executor_);
        state->wake.expires_at(asio::steady_timer::time_point::max());
        auto resolver = std::make_shared<tcp::resolver>(executor_);
        resolver->async_resolve(url_.host, url_.port,
                                [state, resolver](error_code ec, tcp::resolver::results_type r) {
                                    state->ec = ec;
                                    state->endpoints = std::move(r);
                                    state->finished = true;
                                    state->wake.cancel();
                                });
        asio::steady_timer guard(executor_);
        guard.expires_after(options_.connect_timeout);
        guard.async_wait([state](error_code ec) {
            if (!ec) state->wake.cancel();
        });
        error_code ignored;
        co_await state->wake.async_wait(with_ec(ignored));
        guard.cancel();
        if (!state->finished) {
            resolver->cancel();
            co_return "resolve " + url_.host + ": timed out after " +
                std::to_string(options_.connect_timeout.count()) + " ms";
        }
        if (state->ec) co_return "resolve " + url_.host + ": " + state->ec.message();
        co_return state->endpoints;
    }

    template <typename Stream>
    asio::awaitable<attempt_result> exchange(Stream& stream,
                                             http::request<http::string_body>& request) {
        auto& lowest = beast::get_lowest_layer(stream);
        lowest.expires_after(options_.timeout);
        error_code ec;
        co_await http::async_write(stream, request, with_ec(ec));
        if (ec) co_return attempt_result{false, "write: " + describe(ec, options_.timeout)};
        beast::flat_buffer buffer;
        http::response_parser<http::string_body> parser;
        parser.header_limit(16 * 1024);
        parser.body_limit(options_.max_response_bytes);
        co_await http::async_read(stream, buffer, parser, with_ec(ec));
        if (ec) co_return attempt_result{false, "read: " + describe(ec, options_.timeout)};
        const auto& response = parser.get();
        const unsigned status = response.result_int();
        lowest.socket().shutdown(tcp::socket::shutdown_both, ec);
        if (status >= 200 && status < 300) co_return attempt_result{true, {}};
        co_return attempt_result{
            false, "HTTP " + std::to_string(status) +
                       (response.body().empty() ? "" : ": " + excerpt(response.body()))};
    }

    asio::any_io_executor executor_;
    webhook_options options_;
    gateway::base_url url_;
    std::string target_;
    std::optional<ssl::context> tls_;
};

}  // namespace

std::optional<std::string> validate_webhook_url(std::string_view url) {
    auto parsed = gateway::parse_base_url(url);
    if (auto* error = std::get_if<std::string>(&parsed))
        return replace_word(*error, "base_url", "webhook_url");
    return std::nullopt;
}

std::unique_ptr<channel> make_webhook_channel(asio::io_context& io, webhook_options o) {
    auto parsed = gateway::parse_base_url(o.url);
    if (auto* error = std::get_if<std::string>(&parsed))
        throw std::invalid_argument(replace_word(*error, "base_url", "webhook_url"));
    if (o.keys.empty()) throw std::invalid_argument("webhook: no signing secret");
    return std::make_unique<webhook_channel>(io, std::move(o),
                                             std::move(std::get<gateway::base_url>(parsed)));
}

}  // namespace billingd::outbox
