// PortOne V1 wire format as pure functions: request bodies, answer parsing and the
// classification of every answer into an `outcome` (DESIGN.md "Classifying PortOne answers",
// PORTONE_V1.md outcome table).
//
// The transport (http_client.cpp) reports what it observed as an `http_answer`; the functions
// here decide what that means for the money. Nothing here does I/O, reads a clock or throws
// for any input PortOne or the network can produce: malformed answers classify as `unknown`
// (or `transient` for getToken, which moves no money). JSON stays inside wire*.cpp (charges
// and lookups in wire.cpp, refunds in wire_refunds.cpp, what they share in wire_detail.cpp).
//
// Thread safety: all functions are pure.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/types.hpp"

namespace billingd::gateway::wire {

// What the transport observed for one HTTP request.
struct http_answer {
    // false only when the request provably never reached the server (see http_client.hpp
    // for the exact rule); everything after that point is `true`.
    bool request_written = false;
    int http_status = 0;          // 0 when no complete answer was read
    std::string body;             // the complete body (empty when none was read)
    std::string transport_error;  // empty when a complete answer was read
    // The server's certificate (or its name) was refused: a wrong CA, a MITM. Nothing was
    // written; no retry will change it, so it is a configuration error, not a transient one.
    bool tls_verify_failed = false;
    std::chrono::milliseconds latency{0};
};

// --- requests ---------------------------------------------------------------------------

// JSON body of POST /subscribe/payments/again; optional fields only when non-empty.
std::string charge_body(const charge_request& request);
// JSON body of POST /users/getToken. The result holds the secret: never journal it.
std::string token_body(std::string_view imp_key, std::string_view imp_secret);
// "POST /subscribe/payments/again merchant_uid=... customer_uid=... amount=... currency=..."
std::string charge_summary(const charge_request& request);
// JSON body of POST /payments/cancel: imp_uid, amount, checksum and (when non-empty) reason,
// the parameters portone-v1-spec.json declares, as the declared types (string, number).
std::string cancel_body(const cancel_request& request);
// "POST /payments/cancel imp_uid=... amount=... checksum=..."
std::string cancel_summary(const cancel_request& request);
// Percent-encodes one path segment (everything but unreserved characters, RFC 3986).
std::string encode_path_segment(std::string_view segment);

// --- answers ----------------------------------------------------------------------------

struct token_answer {
    std::string access_token;
    std::int64_t now = 0;         // PortOne's clock, UNIX seconds
    std::int64_t expired_at = 0;  // PortOne's clock, UNIX seconds
    std::chrono::seconds lifetime() const { return std::chrono::seconds{expired_at - now}; }
};

// The V1 envelope {"code":int,"message":string|null,"response":object|null}.
struct envelope {
    std::int64_t code = 0;
    std::string message;        // "" when null
    bool response_null = true;  // response absent or null
    bool response_object = false;
};

// nullopt unless `body` is a JSON object with an integer `code`.
std::optional<envelope> parse_envelope(std::string_view body);
// nullopt unless the envelope has code 0 and a non-empty access_token with expired_at > now.
std::optional<token_answer> parse_token(std::string_view body);
// RFC 6750 b64token: what may follow "Bearer " in a header.
bool is_b64token(std::string_view token);
// `json_object` is one payment object as JSON text; nullopt if it is not an object.
std::optional<payment> parse_payment(std::string_view json_object);

struct payment_list {
    std::int64_t total = 0;
    std::int64_t previous = 0;
    std::int64_t next = 0;  // next page number, 0 when this is the last page
    std::vector<payment> list;
};

// --- classification ---------------------------------------------------------------------

// Copies `body` into exchange::raw, cut to max_journaled_body bytes on a UTF-8 boundary.
std::string bounded_raw(std::string_view body);

// POST /subscribe/payments/again. `answer` is the final answer after the token layer's single
// retry, so a 401 here is a configuration error.
charge_result classify_charge(const charge_request& request, const http_answer& answer);

// A paid answer that does not match what was asked (amount, customer_uid, merchant_uid,
// currency) is an anomaly to park. Returns a description of the first mismatch, or nullopt.
std::optional<std::string> paid_anomaly(const charge_request& request, const payment& paid);

// One page of GET /payments/findAll/{merchant_uid}. `journal.result` is `found` (with
// `page`), `not_found` (404 with a PortOne envelope, or an empty list), `config_error` (401
// after the token layer's retry) or `unknown` (everything else).
struct find_all_page {
    exchange journal;
    std::optional<payment_list> page;
};
find_all_page classify_find_all_page(std::string summary, const http_answer& answer);

// The reconciliation recipe over every payment of one merchant_uid:
// any paid -> paid (that record settles it); else any ready (or unrecognised status) ->
// unknown; else only failed/cancelled -> declined (the latest by failed_at/cancelled_at
// settles it); no payments -> not_found.
lookup_result reduce_lookup(exchange journal, std::vector<payment> payments);

// GET /subscribe/customers/{customer_uid}: 200+code 0 -> exists (outcome found);
// 404, or 200 with code != 0 (older accounts) -> not_found; 401 -> config_error;
// anything else -> unknown (exists == false does NOT mean "not found" then).
customer_result classify_customer(std::string summary, const http_answer& answer);

// POST /payments/cancel, after the token layer's one retry (see cancel_result in types.hpp):
//   no complete answer: transient if not written, unknown if written (config_error for a
//     refused certificate);
//   401, 3xx, 404 without PortOne's envelope (base_url points elsewhere): config_error;
//   429: transient; 5xx: unknown; 404 with PortOne's envelope: not_found;
//   any other status below 500 with an envelope code != 0: refused;
//   HTTP 200 + code 0 + a payment of this imp_uid, status paid or cancelled, that shows the
//     cancel (amount - cancel_amount <= checksum - amount, i.e. at least `amount` more was
//     cancelled than the checksum says was before): found, with `answer`;
//   anything else (no envelope, code 0 with another status or an unreadable payment, a
//     payment that does not show the cancel or is another one): unknown, with `answer` when a
//     payment was read.
// Requires request.amount > 0 and request.checksum >= request.amount.
cancel_result classify_cancel(const cancel_request& request, const http_answer& answer);

// GET /payments/{imp_uid}: HTTP 200 + code 0 + a payment with that imp_uid: found (`found`
// set); 404 with PortOne's envelope: not_found; 401: config_error (a refused certificate
// too); not written or 429: transient; anything else: unknown.
payment_result classify_payment(const std::string& imp_uid, std::string summary,
                                const http_answer& answer);

// Page `page` of GET /payments/status/cancelled: HTTP 200 + code 0 + {total, previous, next,
// list} of readable payments, `next` 0 or past `page`: found; 401, and 400 (a window over 90
// days or a page past the end: billingd asked wrongly, no retry helps): config_error (a
// refused certificate too); not written or 429: transient; anything else: unknown.
payment_page_result classify_cancelled_page(std::int64_t page, std::string summary,
                                            const http_answer& answer);

// POST /users/getToken. `token` is set on success (`journal.result == found`); otherwise
// `journal.result` is config_error (HTTP 400/401/403: wrong credentials) or transient
// (anything else: getToken moves no money, so no answer is simply "try later").
// The journal never contains the body of a successful answer (it holds the token).
struct token_result {
    exchange journal;
    std::optional<token_answer> token;
};
token_result classify_token(const http_answer& answer);

}  // namespace billingd::gateway::wire
