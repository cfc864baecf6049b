// An independent reading of a PortOne answer body for the gateway targets: what a careful
// person would conclude from the JSON, to compare the classifiers in wire.hpp against.
// It uses the same JSON library as wire.cpp, so the two agree on what the bytes are.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "gateway/types.hpp"
#include "gateway/wire.hpp"

namespace billingd::fuzz {

using json = nlohmann::json;

// `text` with every byte that is not part of a well-formed UTF-8 sequence replaced by '?'.
// Such bytes can only stand inside JSON strings of an answer that parses at all, so the
// structure is kept; wire.cpp keeps them as escaped text (an EUC-KR message from a PG).
inline std::string replace_invalid_utf8(std::string_view text) {
    std::string out;
    std::size_t i = 0;
    while (i < text.size()) {
        std::size_t length = 1;
        const auto c = static_cast<unsigned char>(text[i]);
        if ((c & 0xE0) == 0xC0) length = 2;
        if ((c & 0xF0) == 0xE0) length = 3;
        if ((c & 0xF8) == 0xF0) length = 4;
        if (i + length <= text.size() && valid_utf8(text.substr(i, length))) {
            out.append(text.substr(i, length));
            i += length;
        } else {
            out += '?';
            ++i;
        }
    }
    return out;
}

struct oracle {
    std::optional<json> body;  // nullopt: not JSON
    bool lossy = false;        // the body was not UTF-8: strings are not compared
    // The envelope as a person reads it: a JSON object whose "code" is an integer.
    bool envelope = false;
    bool code_fits = false;  // the code is an integer within int64
    std::int64_t code = 0;
    bool response_object = false;
    bool response_null = true;

    explicit oracle(std::string_view text) {
        lossy = !valid_utf8(text);
        json j = lossy ? json::parse(replace_invalid_utf8(text), nullptr, false)
                       : json::parse(text, nullptr, /*allow_exceptions=*/false);
        if (j.is_discarded()) return;
        body = std::move(j);
        if (!body->is_object()) return;
        auto c = body->find("code");
        if (c == body->end() || !c->is_number_integer()) return;
        envelope = true;
        if (c->is_number_unsigned()) {
            const auto u = c->get<std::uint64_t>();
            code_fits = u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
            code = static_cast<std::int64_t>(u);
        } else {
            code_fits = true;
            code = c->get<std::int64_t>();
        }
        auto r = body->find("response");
        response_object = r != body->end() && r->is_object();
        response_null = r == body->end() || r->is_null();
    }

    bool code_zero() const { return envelope && code_fits && code == 0; }
    const json& response() const { return body->at("response"); }
};

inline std::string string_of(const json& object, const char* key) {
    auto it = object.find(key);
    if (it == object.end() || !it->is_string()) return {};
    return it->get<std::string>();
}

// Whether `got` is exactly the number the answer holds under `key` (absent or null: 0).
inline bool same_number(const json& object, const char* key, std::int64_t got) {
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) return got == 0;
    if (it->is_number_unsigned()) {
        const auto u = it->get<std::uint64_t>();
        return got >= 0 && static_cast<std::uint64_t>(got) == u;
    }
    if (it->is_number_integer()) return it->get<std::int64_t>() == got;
    if (it->is_number_float()) return it->get<double>() == static_cast<double>(got);
    return false;
}

// A payment's cancel_history holds exactly the answer's entries (absent or null: none).
inline void check_cancel_history_matches(const gateway::payment& p, const json& object,
                                         bool lossy) {
    const auto it = object.find("cancel_history");
    if (it == object.end() || it->is_null()) {
        FUZZ_CHECK(p.cancel_history.empty(), "cancel_history invented");
        return;
    }
    FUZZ_CHECK(it->is_array() && it->size() == p.cancel_history.size(),
               "cancel_history entries lost or invented");
    for (std::size_t i = 0; i < p.cancel_history.size(); ++i) {
        const json& entry = (*it)[i];
        const auto& c = p.cancel_history[i];
        FUZZ_CHECK(entry.is_object(), "a cancel_history entry from something not an object");
        FUZZ_CHECK(same_number(entry, "amount", c.amount), "cancel_history amount differs");
        FUZZ_CHECK(same_number(entry, "cancelled_at", c.cancelled_at),
                   "cancel_history cancelled_at differs");
        if (lossy) continue;
        FUZZ_CHECK(c.pg_tid == string_of(entry, "pg_tid") &&
                       c.reason == string_of(entry, "reason") &&
                       c.cancellation_id == string_of(entry, "cancellation_id") &&
                       c.receipt_url == string_of(entry, "receipt_url"),
                   "a cancel_history string differs from the answer");
    }
}

// A payment handed to the caller says exactly what the JSON object says (its strings only
// when the body was UTF-8), cancel_history included.
inline void check_payment_matches(const gateway::payment& p, const json& object, bool lossy) {
    FUZZ_CHECK(object.is_object(), "a payment came from something that is not an object");
    if (!lossy) {
        FUZZ_CHECK(p.imp_uid == string_of(object, "imp_uid"), "imp_uid differs from the answer");
        FUZZ_CHECK(p.merchant_uid == string_of(object, "merchant_uid"),
                   "merchant_uid differs from the answer");
        FUZZ_CHECK(p.customer_uid == string_of(object, "customer_uid"),
                   "customer_uid differs from the answer");
        FUZZ_CHECK(p.status == string_of(object, "status"), "status differs from the answer");
        FUZZ_CHECK(p.currency == string_of(object, "currency"), "currency differs from the answer");
    }
    FUZZ_CHECK((p.status == "paid") == (string_of(object, "status") == "paid"),
               "paid status differs from the answer");
    FUZZ_CHECK(same_number(object, "amount", p.amount),
               "payment.amount is not the amount the answer holds (wrapped or rounded)");
    FUZZ_CHECK(same_number(object, "cancel_amount", p.cancel_amount),
               "payment.cancel_amount is not the number the answer holds");
    FUZZ_CHECK(same_number(object, "started_at", p.started_at), "started_at differs");
    FUZZ_CHECK(same_number(object, "paid_at", p.paid_at), "paid_at differs");
    FUZZ_CHECK(same_number(object, "failed_at", p.failed_at), "failed_at differs");
    FUZZ_CHECK(same_number(object, "cancelled_at", p.cancelled_at), "cancelled_at differs");
    check_cancel_history_matches(p, object, lossy);
}

// The journal's raw body: at most max_journaled_body bytes, a prefix of the body, the whole
// body when it fits, and valid UTF-8 whenever the body was.
inline void check_raw(const std::string& raw, std::string_view body) {
    FUZZ_CHECK(raw.size() <= gateway::max_journaled_body, "journal raw body over the bound");
    FUZZ_CHECK(body.substr(0, raw.size()) == raw, "journal raw body is not a prefix of the body");
    if (body.size() <= gateway::max_journaled_body)
        FUZZ_CHECK(raw == body, "a body within the bound was not journaled whole");
    if (valid_utf8(body)) FUZZ_CHECK(valid_utf8(raw), "the cut split a UTF-8 sequence");
}

// The journal's envelope code is the answer's, not a wrapped one.
inline void check_code(const gateway::exchange& x, const oracle& o) {
    if (x.code) {
        FUZZ_CHECK(o.envelope, "a code was journaled from an answer without an envelope");
        FUZZ_CHECK(o.code_fits && *x.code == o.code,
                   "the journaled code is not the answer's code (wrapped past int64)");
    }
}

// Whether the transport reports a refused TLS certificate (http_answer::tls_verify_failed,
// where this version of wire.hpp has it).
template <class Answer>
bool tls_refused(const Answer& a) {
    if constexpr (requires { a.tls_verify_failed; })
        return a.tls_verify_failed;
    else
        return false;
}
template <class Answer>
void set_tls_refused(Answer& a, bool refused) {
    if constexpr (requires { a.tls_verify_failed; }) a.tls_verify_failed = refused;
}

// The header line every gateway target starts with: "<http_status> <written> <broken> <tls>".
// broken != 0 gives the answer a transport error (as the transport reports a timeout); tls
// != 0 says that error was a refused certificate.
inline gateway::wire::http_answer read_answer(std::string_view header, std::string_view body) {
    words w(header);
    gateway::wire::http_answer a;
    a.http_status = static_cast<int>(w.number());
    a.request_written = w.number() != 0;
    if (w.number() != 0) a.transport_error = "timed out reading the answer";
    if (w.number() != 0 && !a.transport_error.empty()) {
        a.transport_error = "certificate verify failed";
        set_tls_refused(a, true);
    }
    a.body = std::string(body);
    return a;
}

inline bool transport_failed(const gateway::wire::http_answer& a) {
    return !a.transport_error.empty() || a.http_status == 0;
}

}  // namespace billingd::fuzz
