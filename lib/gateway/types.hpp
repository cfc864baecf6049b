// PortOne V1 value types and answer classes: what billingd asks and what it learns.
//
// These types carry no JSON and no I/O; the wire mapping lives in wire.hpp and the
// transport in http_client.cpp. Every exchange with PortOne produces an `exchange` record
// that the scheduler journals verbatim in the `attempts` table.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace billingd::gateway {

// What an answer means for the money. See DESIGN.md "Classifying PortOne answers".
enum class outcome {
    paid,                 // code 0, status "paid"
    declined,             // code 0, status "failed": the card was refused, nothing moved
    unknown,              // the money may have moved: reconcile before anything is resent
    transient,            // provably not processed (never written, 429): safe to resend later
    invalid_billing_key,  // customer_uid not registered: park, never retry
    // PortOne received the charge and answered without a payment: an enveloped code != 0
    // (PG communication failure, "merchant_uid already used", ...) or HTTP 400. Reconcile
    // first (it may be "already paid"); if the lookup shows no new record, it was refused.
    refused,
    config_error,  // credentials, account or endpoint setup is wrong: stop charging
    not_found,     // lookups only: PortOne has no such record (HTTP 404)
    found,         // lookups only: records returned
};
std::string_view to_string(outcome o);

// One entry of a payment's cancel_history: a refund, made by billingd or in PortOne's console.
struct cancellation {
    std::string pg_tid;
    std::int64_t amount = 0;
    std::int64_t cancelled_at = 0;  // UNIX s
    std::string reason;
    std::string cancellation_id;
    std::string receipt_url;
};

// A payment object as PortOne reports it (fields billingd uses).
struct payment {
    std::string imp_uid;
    std::string merchant_uid;
    std::string customer_uid;
    std::string status;  // ready | paid | failed | cancelled
    std::int64_t amount = 0;
    std::int64_t cancel_amount = 0;
    std::string currency;
    std::int64_t started_at = 0;
    std::int64_t paid_at = 0;
    std::int64_t failed_at = 0;
    std::int64_t cancelled_at = 0;
    std::string fail_reason;
    std::string pg_provider;
    std::string pg_tid;
    std::string pay_method;
    std::string receipt_url;
    std::string name;
    std::vector<cancellation> cancel_history;  // oldest first, as PortOne lists it
};

struct charge_request {
    std::string customer_uid;  // <= 80 chars
    std::string merchant_uid;  // <= 40 chars of [A-Za-z0-9_-]
    std::int64_t amount = 0;   // > 0, minor units of `currency` (KRW has none)
    std::string currency = "KRW";
    std::string name;  // order name, 1..40 chars
    std::string buyer_name;
    std::string buyer_email;
    std::string buyer_tel;
    std::string custom_data;
};

// The journal record of one HTTP exchange (one row of `attempts`). Never holds secrets.
struct exchange {
    // "charge" | "lookup" | "customer" | "token" | "cancel" | "payment" | "cancelled_list"
    std::string kind;
    std::string
        request_summary;  // e.g. "POST /subscribe/payments/again merchant_uid=... amount=..."
    bool request_written = false;      // false: failed before the request left (connect/TLS/...)
    int http_status = 0;               // 0 when no HTTP answer was read
    std::optional<std::int64_t> code;  // PortOne envelope code, when a JSON envelope was read
    std::string message;               // envelope message or transport error text
    outcome result = outcome::unknown;
    std::string imp_uid;
    std::chrono::milliseconds latency{0};
    std::string raw;  // raw answer body, truncated to max_journaled_body bytes
};

inline constexpr std::size_t max_journaled_body = 4096;

// `journal.result` is the class. A `paid` result always carries `answer`; the caller must
// still compare answer->amount and answer->customer_uid with what it asked
// (see paid_anomaly() in wire.hpp) and park the charge on a mismatch.
//
// `invalid_billing_key` is recognised from an answer whose meaning PortOne only spells out in
// its message text ("등록되지 않은 구매자입니다.", code 1 or -1, no payment). Because message text
// alone must never decide, such a result comes with `needs_customer_check` set: the caller
// confirms with get_customer() (outcome not_found) before parking, and treats the charge as
// `unknown` (reconcile) if the customer turns out to exist.
struct charge_result {
    exchange journal;
    std::optional<payment> answer;  // the payment object, when one was returned
    bool needs_customer_check = false;
};

// Result of findAll for one merchant_uid (all pages), already reduced by the reconciliation
// recipe of PORTONE_V1.md:
//   any paid -> paid (the paid record in `settled`); else any ready -> unknown;
//   else only failed/cancelled -> declined (latest failure in `settled`); 404 -> not_found.
// Transport problems and unexpected answers -> unknown (look again later).
struct lookup_result {
    exchange journal;
    outcome verdict = outcome::unknown;  // paid | declined | unknown | not_found | config_error
    std::optional<payment> settled;
    std::vector<payment> payments;
};

// POST /payments/cancel for one paid payment. `amount` is always sent (a full refund names the
// whole remaining amount); `checksum` is the amount still cancellable before this cancel, so
// PortOne refuses it when another cancel went through first (or this one already did).
struct cancel_request {
    std::string imp_uid;
    std::int64_t amount = 0;    // > 0
    std::int64_t checksum = 0;  // >= amount
    std::string reason;         // 1..200 characters
};

// journal.kind is "cancel". journal.result:
//   found      the cancel was applied: `answer` is the payment after it (cancel_amount,
//              cancel_history include it)
//   refused    PortOne answered without applying it: an envelope with code != 0, whatever the
//              HTTP status below 500 (checksum mismatch, already cancelled, amount too large)
//   not_found  PortOne does not know the imp_uid (404)
//   transient  provably not processed (never written, 429)
//   unknown    timeout/reset after the request was written, 5xx, or an answer that cannot be
//              read: read the payment (get_payment) before anything is sent again
//   config_error credentials or endpoint setup
struct cancel_result {
    exchange journal;
    std::optional<payment> answer;
};

// GET /payments/{imp_uid}. journal.kind "payment"; journal.result found (with `found`),
// not_found (404), transient, unknown (look again later) or config_error.
struct payment_result {
    exchange journal;
    std::optional<payment> found;
};

// One page of GET /payments/status/cancelled?from=&to=&page=&limit=. journal.kind
// "cancelled_list"; journal.result found (list may be empty), transient, unknown or
// config_error. `next` is the next page number, 0 on the last page.
struct payment_page_result {
    exchange journal;
    std::vector<payment> list;
    std::int64_t total = 0;
    std::int64_t next = 0;
};

struct customer_result {
    exchange journal;
    bool exists = false;  // false with outcome not_found when PortOne does not know the key
    std::string card_name;
    std::string card_number;  // masked by PortOne
    std::string pg_provider;
};

}  // namespace billingd::gateway
