// The one transport file: Beast + OpenSSL. The rules it implements are in http_client.hpp.
#include "gateway/http_client.hpp"

#include <openssl/ssl.h>
#include <poll.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <functional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "gateway/limiter.hpp"
#include "gateway/token_cache.hpp"
#include "gateway/url.hpp"
#include "gateway/wire.hpp"

namespace billingd::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;
using boost::system::error_code;

auto with_ec(error_code& ec) {
    return asio::redirect_error(asio::use_awaitable, ec);
}

std::chrono::milliseconds since(steady::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start);
}

constexpr std::uint32_t max_header_bytes = 16 * 1024;

// One keep-alive connection, plain or TLS.
struct connection {
    connection(const asio::any_io_executor& executor, ssl::context* tls_context) {
        if (tls_context) {
            tls.emplace(executor, *tls_context);
        } else {
            plain.emplace(executor);
        }
    }
    beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }

    std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
    std::optional<beast::tcp_stream> plain;
    beast::flat_buffer buffer;
    steady::time_point idle_since{};
};

// Whether an idle keep-alive connection may carry the next request: a readable socket means
// the peer closed it (EOF, RST, TLS close_notify) or sent bytes nobody asked for.
bool still_open(connection& c) {
    if (c.buffer.size() != 0) return false;
    if (c.tls && SSL_pending(c.tls->native_handle()) > 0) return false;
    pollfd p{};
    p.fd = c.lowest().socket().native_handle();
    p.events = POLLIN;
    return ::poll(&p, 1, 0) == 0;
}

struct request_spec {
    http::verb method = http::verb::get;
    std::string target;
    std::string body;
    std::string bearer;
    std::chrono::milliseconds read_timeout{0};
    bool idempotent = true;  // may be resent on a fresh connection after a stale one failed
    std::function<void()> after_written;  // the after_*_written test hooks
};

struct connect_result {
    std::unique_ptr<connection> conn;
    std::string error;
    bool tls_verify_failed = false;
};

// An answer that still needs classifying, or the token failure that kept it from being sent
// (or from being resent after a 401).
struct authorized_answer {
    wire::http_answer answer;
    std::optional<exchange> token_failure;
};

void replace_all(std::string& text, const std::string& secret) {
    if (secret.empty()) return;
    static const std::string mask = "[redacted]";
    for (auto at = text.find(secret); at != std::string::npos;
         at = text.find(secret, at + mask.size()))
        text.replace(at, secret.size(), mask);
}

class http_client final : public client {
  public:
    http_client(asio::io_context& io, http_client_options options, base_url url)
        : executor_(io.get_executor()),
          options_(std::move(options)),
          url_(std::move(url)),
          limiter_(executor_, options_.max_in_flight, options_.max_requests_per_second),
          tokens_(
              executor_, [this] { return fetch_token(); }, options_.token_refresh_margin) {
        if (url_.tls) {
            tls_context_.emplace(ssl::context::tls_client);
            tls_context_->set_default_verify_paths();
            if (!options_.ca_file.empty()) {
                error_code ec;
                tls_context_->load_verify_file(options_.ca_file, ec);
                if (ec) throw std::invalid_argument("cannot load ca_file " + options_.ca_file);
            }
            SSL_CTX_set_min_proto_version(tls_context_->native_handle(), TLS1_2_VERSION);
            tls_context_->set_verify_mode(ssl::verify_peer);
        }
    }

    asio::awaitable<charge_result> charge(charge_request request) override {
        request_spec spec;
        spec.method = http::verb::post;
        spec.target = url_.path_prefix + "/subscribe/payments/again";
        spec.body = wire::charge_body(request);
        spec.read_timeout = options_.charge_timeout;
        spec.idempotent = false;
        if (options_.after_charge_written)
            spec.after_written = [this, uid = request.merchant_uid] {
                options_.after_charge_written(uid);
            };
        auto got = co_await authorized(spec);

        charge_result result;
        if (got.token_failure) {
            result.journal = token_blocked("charge", wire::charge_summary(request), got);
        } else {
            result = wire::classify_charge(request, got.answer);
        }
        scrub(result);
        co_return result;
    }

    asio::awaitable<lookup_result> find_all(std::string merchant_uid) override {
        const std::string path = "/payments/findAll/" + wire::encode_path_segment(merchant_uid);
        std::vector<payment> payments;
        exchange last;
        std::int64_t page = 1;
        for (std::size_t round = 1;; ++round) {
            request_spec spec;
            spec.target = url_.path_prefix + path + "?page=" + std::to_string(page) +
                          "&limit=" + std::to_string(options_.find_all_page_size);
            spec.read_timeout = options_.lookup_timeout;
            const std::string summary = "GET " + path + " page=" + std::to_string(page);
            auto got = co_await authorized(spec);

            lookup_result result;
            if (got.token_failure) {
                result.journal = token_blocked("lookup", summary, got);
                if (result.journal.result != outcome::config_error)
                    result.journal.result = outcome::unknown;
                result.verdict = result.journal.result;
                scrub(result);
                co_return result;
            }
            auto classified = wire::classify_find_all_page(summary, got.answer);
            if (classified.journal.result != outcome::found) {
                result.journal = std::move(classified.journal);
                // A later page that vanished is not "no record": the first page had some.
                if (page > 1 && result.journal.result == outcome::not_found)
                    result.journal.result = outcome::unknown;
                result.verdict = result.journal.result;
                scrub(result);
                co_return result;
            }
            for (auto& p : classified.page->list) payments.push_back(std::move(p));
            last = std::move(classified.journal);
            const std::int64_t next = classified.page->next;
            if (next <= page) break;
            if (round >= options_.find_all_max_pages) {
                result.journal = std::move(last);
                result.journal.result = outcome::unknown;
                result.journal.message = "more than " +
                                         std::to_string(options_.find_all_max_pages) +
                                         " pages of payments";
                result.verdict = outcome::unknown;
                result.payments = std::move(payments);
                scrub(result);
                co_return result;
            }
            page = next;
        }
        last.request_summary = "GET " + path + " pages=" + std::to_string(page);
        auto result = wire::reduce_lookup(std::move(last), std::move(payments));
        scrub(result);
        co_return result;
    }

    asio::awaitable<customer_result> get_customer(std::string customer_uid) override {
        const std::string path = "/subscribe/customers/" + wire::encode_path_segment(customer_uid);
        request_spec spec;
        spec.target = url_.path_prefix + path;
        spec.read_timeout = options_.lookup_timeout;
        auto got = co_await authorized(spec);

        customer_result result;
        if (got.token_failure) {
            result.journal = token_blocked("customer", "GET " + path, got);
            if (result.journal.result != outcome::config_error)
                result.journal.result = outcome::unknown;
        } else {
            result = wire::classify_customer("GET " + path, got.answer);
        }
        scrub(result);
        co_return result;
    }

    asio::awaitable<cancel_result> cancel(cancel_request request) override {
        request_spec spec;
        spec.method = http::verb::post;
        spec.target = url_.path_prefix + "/payments/cancel";
        spec.body = wire::cancel_body(request);
        spec.read_timeout = options_.charge_timeout;
        spec.idempotent = false;
        if (options_.after_cancel_written)
            spec.after_written = [this, uid = request.imp_uid] {
                options_.after_cancel_written(uid);
            };
        auto got = co_await authorized(spec);

        cancel_result result;
        if (got.token_failure) {
            result.journal = token_blocked("cancel", wire::cancel_summary(request), got);
            result.journal.imp_uid = request.imp_uid;
        } else {
            result = wire::classify_cancel(request, got.answer);
        }
        scrub(result);
        co_return result;
    }

    asio::awaitable<payment_result> get_payment(std::string imp_uid) override {
        const std::string path = "/payments/" + wire::encode_path_segment(imp_uid);
        request_spec spec;
        spec.target = url_.path_prefix + path;
        spec.read_timeout = options_.lookup_timeout;
        auto got = co_await authorized(spec);

        payment_result result;
        if (got.token_failure) {
            result.journal = token_blocked("payment", "GET " + path, got);
            result.journal.imp_uid = imp_uid;
        } else {
            result = wire::classify_payment(imp_uid, "GET " + path, got.answer);
        }
        scrub(result);
        co_return result;
    }

    asio::awaitable<payment_page_result> cancelled_payments(std::int64_t from, std::int64_t to,
                                                            std::int64_t page) override {
        const std::string path = "/payments/status/cancelled";
        const std::string window = "from=" + std::to_string(from) + "&to=" + std::to_string(to) +
                                   "&page=" + std::to_string(page);
        request_spec spec;
        spec.target = url_.path_prefix + path + "?" + window +
                      "&limit=" + std::to_string(options_.cancelled_page_size);
        spec.read_timeout = options_.lookup_timeout;
        const std::string summary = "GET " + path + " from=" + std::to_string(from) +
                                    " to=" + std::to_string(to) + " page=" + std::to_string(page);
        auto got = co_await authorized(spec);

        payment_page_result result;
        if (got.token_failure) {
            result.journal = token_blocked("cancelled_list", summary, got);
        } else {
            result = wire::classify_cancelled_page(page, summary, got.answer);
        }
        scrub(result);
        co_return result;
    }

  private:
    // Sends with the cached token; on 401 refreshes it once and sends once more.
    asio::awaitable<authorized_answer> authorized(request_spec spec) {
        authorized_answer out;
        auto lease = co_await tokens_.get(0);
        if (lease.failure) {
            out.token_failure = std::move(lease.failure);
            co_return out;
        }
        spec.bearer = lease.token;
        out.answer = co_await perform(spec);
        if (out.answer.http_status != 401) co_return out;

        // The request was refused unprocessed; a second 401 is classified by the caller.
        auto renewed = co_await tokens_.get(lease.generation);
        if (renewed.failure) {
            out.token_failure = std::move(renewed.failure);
            co_return out;
        }
        spec.bearer = renewed.token;
        out.answer = co_await perform(spec);
        co_return out;
    }

    // The journal of a request that no token could be had for. Before any send that is
    // "not written"; after a 401 the request was written but refused unprocessed.
    static exchange token_blocked(std::string kind, std::string summary,
                                  const authorized_answer& got) {
        exchange x;
        x.kind = std::move(kind);
        x.request_summary = std::move(summary);
        x.request_written = got.answer.request_written;
        x.http_status = got.answer.http_status;
        x.latency = got.answer.latency;
        x.result = got.token_failure->result == outcome::config_error ? outcome::config_error
                                                                      : outcome::transient;
        x.message = (got.answer.http_status == 401 ? "HTTP 401, then getToken failed: "
                                                   : "not sent, getToken failed: ") +
                    got.token_failure->message;
        x.code = got.token_failure->code;
        x.raw = got.token_failure->raw;
        return x;
    }

    asio::awaitable<wire::token_result> fetch_token() {
        request_spec spec;
        spec.method = http::verb::post;
        spec.target = url_.path_prefix + "/users/getToken";
        spec.body = wire::token_body(options_.imp_key, options_.imp_secret);
        spec.read_timeout = options_.lookup_timeout;
        auto answer = co_await perform(spec);
        auto result = wire::classify_token(answer);
        scrub(result.journal);
        co_return result;
    }

    // Nothing that leaves the gateway holds the key, the secret or a token: a proxy or a PG
    // that echoes the request head could put them in any field of an answer (fail_reason
    // reaches charges, events, logs and billingctl output).
    std::vector<std::string> secrets() const {
        std::vector<std::string> all = tokens_.recent_tokens();
        all.push_back(options_.imp_secret);
        all.push_back(options_.imp_key);
        return all;
    }
    void scrub(exchange& x) const {
        for (const auto& secret : secrets())
            for (auto* field : {&x.request_summary, &x.message, &x.raw, &x.imp_uid})
                replace_all(*field, secret);
    }
    void scrub(payment& p) const {
        for (const auto& secret : secrets()) {
            for (auto* field : {&p.imp_uid, &p.merchant_uid, &p.customer_uid, &p.status,
                                &p.currency, &p.fail_reason, &p.pg_provider, &p.pg_tid,
                                &p.pay_method, &p.receipt_url, &p.name})
                replace_all(*field, secret);
            for (auto& c : p.cancel_history)
                for (auto* field : {&c.pg_tid, &c.reason, &c.cancellation_id, &c.receipt_url})
                    replace_all(*field, secret);
        }
    }
    void scrub(charge_result& r) const {
        scrub(r.journal);
        if (r.answer) scrub(*r.answer);
    }
    void scrub(lookup_result& r) const {
        scrub(r.journal);
        if (r.settled) scrub(*r.settled);
        for (auto& p : r.payments) scrub(p);
    }
    void scrub(cancel_result& r) const {
        scrub(r.journal);
        if (r.answer) scrub(*r.answer);
    }
    void scrub(payment_result& r) const {
        scrub(r.journal);
        if (r.found) scrub(*r.found);
    }
    void scrub(payment_page_result& r) const {
        scrub(r.journal);
        for (auto& p : r.list) scrub(p);
    }
    void scrub(customer_result& r) const {
        scrub(r.journal);
        for (const auto& secret : secrets())
            for (auto* field : {&r.card_name, &r.card_number, &r.pg_provider})
                replace_all(*field, secret);
    }

    std::unique_ptr<connection> take_idle() {
        const auto now = steady::now();
        while (!idle_.empty()) {
            auto conn = std::move(idle_.back());
            idle_.pop_back();
            if (now - conn->idle_since < options_.idle_timeout && still_open(*conn)) return conn;
        }
        return nullptr;
    }

    std::string describe(const error_code& ec, std::chrono::milliseconds timeout) const {
        if (ec == beast::error::timeout)
            return "timed out after " + std::to_string(timeout.count()) + " ms";
        if (ec == http::error::body_limit)
            return "answer larger than " + std::to_string(options_.max_response_bytes) + " bytes";
        if (ec == http::error::header_limit) return "answer headers too large";
        if (ec == http::error::end_of_stream || ec == asio::error::eof)
            return "connection closed before a complete answer";
        return ec.message();
    }

    asio::awaitable<connect_result> connect() {
        connect_result out;
        error_code ec;
        // A getaddrinfo already running cannot be cancelled, so the lookup is raced against
        // connect_timeout instead: if the timer wins we stop waiting (nothing was written:
        // transient) and the lookup finishes in the background into state we no longer read.
        struct resolve_state {
            explicit resolve_state(const asio::any_io_executor& ex) : wake(ex) {}
            asio::steady_timer wake;
            error_code ec;
            tcp::resolver::results_type endpoints;
            bool finished = false;
        };
        auto state = std::make_shared<resolve_state>(executor_);
        state->wake.expires_at(asio::steady_timer::time_point::max());
        auto resolver = std::make_shared<tcp::resolver>(executor_);
        resolver->async_resolve(
            url_.host, url_.port,
            [state, resolver](error_code resolve_ec, tcp::resolver::results_type results) {
                state->ec = resolve_ec;
                state->endpoints = std::move(results);
                state->finished = true;
                state->wake.cancel();
            });
        asio::steady_timer guard(executor_);
        guard.expires_after(options_.connect_timeout);
        guard.async_wait([state](error_code wait_error) {
            if (!wait_error) state->wake.cancel();
        });
        error_code ignored;
        co_await state->wake.async_wait(with_ec(ignored));
        guard.cancel();
        if (!state->finished) {
            resolver->cancel();
            out.error = "resolve " + url_.host + ": timed out after " +
                        std::to_string(options_.connect_timeout.count()) + " ms";
            co_return out;
        }
        if (state->ec) {
            out.error = "resolve " + url_.host + ": " + state->ec.message();
            co_return out;
        }
        auto endpoints = state->endpoints;

        auto conn =
            std::make_unique<connection>(executor_, tls_context_ ? &*tls_context_ : nullptr);
        conn->lowest().expires_after(options_.connect_timeout);
        // Address by address, opening each socket first: a process out of descriptors then
        // says so (EMFILE) instead of a canceled connect.
        ec = asio::error::host_not_found;
        for (const auto& entry : endpoints) {
            auto& socket = conn->lowest().socket();
            error_code ignored_close;
            if (socket.is_open()) socket.close(ignored_close);
            socket.open(entry.endpoint().protocol(), ec);
            if (ec) break;  // no descriptor: no other address fares better
            co_await conn->lowest().async_connect(entry.endpoint(), with_ec(ec));
            if (!ec || ec == asio::error::operation_aborted || ec == beast::error::timeout) break;
        }
        if (ec.category() == boost::system::system_category() &&
            (ec.value() == EMFILE || ec.value() == ENFILE)) {
            out.error = "connect to " + url_.host_header + ": " + ec.message() +
                        " (the open-files limit is reached: raise LimitNOFILE= or lower "
                        "max_in_flight)";
            co_return out;
        }
        if (ec) {
            out.error =
                "connect to " + url_.host_header + ": " + describe(ec, options_.connect_timeout);
            co_return out;
        }
        if (conn->tls) {
            if (!is_ip_literal(url_.host) &&
                !SSL_set_tlsext_host_name(conn->tls->native_handle(), url_.host.c_str())) {
                out.error = "TLS: cannot set SNI for " + url_.host;
                co_return out;
            }
            conn->tls->set_verify_mode(ssl::verify_peer);
            conn->tls->set_verify_callback(ssl::host_name_verification(url_.host));
            co_await conn->tls->async_handshake(ssl::stream_base::client, with_ec(ec));
            if (ec) {
                const long verify = SSL_get_verify_result(conn->tls->native_handle());
                out.tls_verify_failed = verify != X509_V_OK;
                out.error =
                    "TLS handshake with " + url_.host_header + ": " +
                    (out.tls_verify_failed ? std::string{"certificate verification failed: "} +
                                                 X509_verify_cert_error_string(verify)
                                           : describe(ec, options_.connect_timeout));
                co_return out;
            }
        }
        out.conn = std::move(conn);
        co_return out;
    }

    // One HTTP exchange (two when a reused connection turns out stale and the request is
    // idempotent). See http_client.hpp for the written/not-written rule implemented here.
    asio::awaitable<wire::http_answer> perform(request_spec spec) {
        auto slot = co_await limiter_.acquire();

        http::request<http::string_body> request{spec.method, spec.target, 11};
        request.set(http::field::host, url_.host_header);
        request.set(http::field::user_agent, "billingd");
        request.set(http::field::accept, "application/json");
        if (!spec.bearer.empty()) request.set(http::field::authorization, "Bearer " + spec.bearer);
        if (spec.method == http::verb::post)
            request.set(http::field::content_type, "application/json; charset=utf-8");
        request.body() = spec.body;
        request.keep_alive(true);
        request.prepare_payload();

        const auto started = steady::now();
        wire::http_answer answer;
        for (int round = 0;; ++round) {
            // A retry after a stale connection always gets a fresh one.
            auto conn = round == 0 ? take_idle() : nullptr;
            const bool reused = conn != nullptr;
            if (!conn) {
                auto fresh = co_await connect();
                if (!fresh.conn) {
                    answer.request_written = false;
                    answer.transport_error = std::move(fresh.error);
                    answer.tls_verify_failed = fresh.tls_verify_failed;
                    break;
                }
                conn = std::move(fresh.conn);
            }

            error_code ec;
            conn->lowest().expires_after(options_.connect_timeout);
            if (conn->tls) {
                co_await http::async_write(*conn->tls, request, with_ec(ec));
            } else {
                co_await http::async_write(*conn->plain, request, with_ec(ec));
            }
            if (ec) {
                if (!reused) {
                    answer.request_written = false;
                    answer.transport_error = "write: " + describe(ec, options_.connect_timeout);
                    break;
                }
                if (spec.idempotent && round == 0) continue;  // stale idle connection
                answer.request_written = true;
                answer.transport_error =
                    "write on a reused connection: " + describe(ec, options_.connect_timeout);
                break;
            }
            answer.request_written = true;
            if (spec.after_written) spec.after_written();

            http::response_parser<http::string_body> parser;
            parser.header_limit(max_header_bytes);
            parser.body_limit(options_.max_response_bytes);
            conn->lowest().expires_after(spec.read_timeout);
            if (conn->tls) {
                co_await http::async_read(*conn->tls, conn->buffer, parser, with_ec(ec));
            } else {
                co_await http::async_read(*conn->plain, conn->buffer, parser, with_ec(ec));
            }
            if (ec) {
                const bool nothing_arrived = !parser.got_some() && conn->buffer.size() == 0;
                if (reused && nothing_arrived && spec.idempotent && round == 0 &&
                    ec != beast::error::timeout)
                    continue;  // stale idle connection: a GET can simply go again
                answer.transport_error = describe(ec, spec.read_timeout);
                break;
            }
            auto& response = parser.get();
            answer.http_status = static_cast<int>(response.result_int());
            answer.body = std::move(response.body());
            if (response.keep_alive() && idle_.size() < options_.max_in_flight) {
                conn->lowest().expires_never();
                conn->idle_since = steady::now();
                idle_.push_back(std::move(conn));
            }
            break;
        }
        answer.latency = since(started);
        co_return answer;
    }

    asio::any_io_executor executor_;
    http_client_options options_;
    base_url url_;
    std::optional<ssl::context> tls_context_;
    request_limiter limiter_;
    token_cache tokens_;
    std::vector<std::unique_ptr<connection>> idle_;
};

}  // namespace

std::unique_ptr<client> make_http_client(asio::io_context& io, http_client_options options) {
    auto parsed = parse_base_url(options.base_url);
    if (auto* error = std::get_if<std::string>(&parsed)) throw std::invalid_argument(*error);
    return std::make_unique<http_client>(io, std::move(options),
                                         std::move(std::get<base_url>(parsed)));
}

}  // namespace billingd::gateway
