// The PortOne V1 client over HTTP/1.1 (Beast + OpenSSL, all inside http_client.cpp).
//
// HTTPS verifies the peer against the system CA store (plus `ca_file`) and the host name
// (SNI is sent for names); plain http:// is accepted only for loopback (the simulator).
// Connections are kept alive and reused. At most `max_in_flight` requests are outstanding
// (callers wait) and, when `max_requests_per_second` > 0, requests start at least
// 1/max_requests_per_second apart. The access token is fetched once, shared, refreshed
// `token_refresh_margin` before it expires, and refreshed once when a request is answered
// 401 (that request was not processed and is sent again once).
//
// "Was the request written?" — the rule behind transient vs unknown:
//   * not written (transient): resolving, connecting or the TLS handshake of a FRESH
//     connection failed, or writing the request on a fresh connection failed before all of
//     its bytes were handed to the socket. The server cannot have a complete request.
//   * written (unknown for a charge): everything else, i.e. once every byte was handed to the
//     socket, and ANY failure on a reused keep-alive connection from the moment we start
//     writing to it (a stale connection cannot be told apart from a server that read the
//     request and then died). Read timeouts, resets, truncated or oversized answers are
//     written failures.
//   Idle connections are checked before reuse (closed by the peer or holding stray bytes:
//   dropped) and are not reused after `idle_timeout`, so a charge rarely meets a stale one.
//   GET lookups and getToken, which move no money, are retried once on a fresh connection
//   when a reused one fails before any byte of the answer arrived; charges and cancels never
//   are.
//
// Timeouts: `connect_timeout` covers resolve + connect + TLS handshake and the write;
// `charge_timeout` (charges and cancels, which move money) / `lookup_timeout` (every GET and
// getToken) cover reading the whole answer. Answers above `max_response_bytes` are cut off:
// unknown. Host name resolution uses the system resolver. A lookup that takes longer than
// connect_timeout is abandoned (transient: nothing was written); the lookup itself cannot be
// interrupted and finishes in the background, and Asio's single resolver thread makes later
// lookups queue behind it, each again bounded by connect_timeout.
//
// Secrets: the key, the secret and access tokens are never put into an `exchange`; any text
// the server echoes back is scrubbed. The library never logs.
//
// Errors: make_http_client throws std::invalid_argument for a bad base_url (the text of
// validate_base_url) and for an unreadable ca_file. The calls never throw for anything the
// network or PortOne can do (see client.hpp). The client must outlive every call made on it;
// it is used from the io_context's one thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/client.hpp"

namespace boost::asio {
class io_context;
}

namespace billingd::gateway {

struct http_client_options {
    std::string base_url = "https://api.iamport.kr";
    std::string imp_key;
    std::string imp_secret;
    std::chrono::milliseconds connect_timeout{std::chrono::seconds{10}};
    std::chrono::milliseconds charge_timeout{std::chrono::seconds{60}};
    std::chrono::milliseconds lookup_timeout{std::chrono::seconds{15}};
    std::size_t max_response_bytes = 1024 * 1024;
    std::size_t max_in_flight = 16;
    double max_requests_per_second = 0;  // 0: no pacing
    std::string ca_file;                 // extra trusted CA (PEM), e.g. the simulator's, for tests
    // Test hook: called after the charge request's bytes were fully written, before the answer
    // is read (crash-point tests throw or stop the process here).
    std::function<void(std::string_view merchant_uid)> after_charge_written;
    // The same for a cancel (POST /payments/cancel), with its imp_uid.
    std::function<void(std::string_view imp_uid)> after_cancel_written;

    // Additions beyond the scheduler's contract; the defaults suit PortOne.
    std::chrono::milliseconds idle_timeout{std::chrono::seconds{20}};  // keep-alive reuse window
    std::chrono::seconds token_refresh_margin{60};
    std::size_t find_all_page_size = 100;   // PortOne allows up to 1000
    std::size_t find_all_max_pages = 20;    // more pages than this: unknown
    std::size_t cancelled_page_size = 100;  // `limit` of GET /payments/status/cancelled
};

// nullopt when `base_url` is acceptable, else what is wrong with it (for a config error).
std::optional<std::string> validate_base_url(std::string_view base_url);

std::unique_ptr<client> make_http_client(boost::asio::io_context& io, http_client_options options);

}  // namespace billingd::gateway
