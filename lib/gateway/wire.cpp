#include "gateway/wire.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <utility>

#include "domain/json_object.hpp"
#include "domain/text.hpp"
#include "gateway/wire_detail.hpp"

namespace billingd::gateway {

std::string_view to_string(outcome o) {
    switch (o) {
        case outcome::paid:
            return "paid";
        case outcome::declined:
            return "declined";
        case outcome::unknown:
            return "unknown";
        case outcome::transient:
            return "transient";
        case outcome::invalid_billing_key:
            return "invalid_billing_key";
        case outcome::refused:
            return "refused";
        case outcome::config_error:
            return "config_error";
        case outcome::not_found:
            return "not_found";
        case outcome::found:
            return "found";
    }
    return "unknown";
}

}  // namespace billingd::gateway

namespace billingd::gateway::wire {

using namespace detail;

namespace {

// PortOne passes PG messages through; these two are the only texts billingd looks for, and
// each is combined with the code and the shape of the answer (see classify_charge).
constexpr std::string_view unregistered_customer_text = "등록되지 않은 구매자";
constexpr std::string_view module_not_configured_text =
    "비인증결제모듈 사용정보를 찾을 수 없습니다";

bool contains(std::string_view text, std::string_view needle) {
    return text.find(needle) != std::string_view::npos;
}

// Outcome of a charge answer that is not a clean HTTP 200 envelope.
outcome charge_status_class(int status) {
    if (status == 429) return outcome::transient;     // rate limited: not processed
    if (status == 400) return outcome::refused;       // PortOne read it and said no: reconcile
    if (status == 401) return outcome::config_error;  // after the token layer's one retry
    // No charge endpoint there: base_url points elsewhere (a path, a proxy, a redirect).
    if (status == 404 || (status >= 300 && status < 400)) return outcome::config_error;
    return outcome::unknown;  // 5xx, 403, ...: reconcile
}

}  // namespace

std::string charge_body(const charge_request& request) {
    // Written field by field (in the order the JSON library sorts them): the request body is
    // built once per charge, and a JSON tree for nine fields cost more than the HTTP exchange.
    domain::json_object body;
    const auto optional = [&](std::string_view key, const std::string& value) {
        if (!value.empty()) body.add(key, value);
    };
    body.add("amount", request.amount);
    optional("buyer_email", request.buyer_email);
    optional("buyer_name", request.buyer_name);
    optional("buyer_tel", request.buyer_tel);
    optional("currency", request.currency);
    optional("custom_data", request.custom_data);
    body.add("customer_uid", request.customer_uid)
        .add("merchant_uid", request.merchant_uid)
        .add("name", request.name);
    return body.str();
}

std::string token_body(std::string_view imp_key, std::string_view imp_secret) {
    json body = json::object();
    body["imp_key"] = imp_key;
    body["imp_secret"] = imp_secret;
    return dump(body);
}

std::string charge_summary(const charge_request& request) {
    return "POST /subscribe/payments/again merchant_uid=" + request.merchant_uid +
           " customer_uid=" + request.customer_uid + " amount=" + std::to_string(request.amount) +
           " currency=" + request.currency;
}

std::string encode_path_segment(std::string_view segment) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(segment.size());
    for (unsigned char c : segment) {
        const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                                (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
                                c == '~';
        if (unreserved) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 0x0F];
        }
    }
    return out;
}

std::optional<envelope> parse_envelope(std::string_view body) {
    auto j = parse_json(body);
    if (!j) return std::nullopt;
    return envelope_from(*j);
}

bool is_b64token(std::string_view token) {
    // b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    std::size_t i = 0;
    while (i < token.size()) {
        const auto c = static_cast<unsigned char>(token[i]);
        if (!(std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' ||
              c == '/'))
            break;
        ++i;
    }
    if (i == 0) return false;
    while (i < token.size() && token[i] == '=') ++i;
    return i == token.size();
}

std::optional<token_answer> parse_token(std::string_view body) {
    auto j = parse_json(body);
    if (!j) return std::nullopt;
    auto env = envelope_from(*j);
    if (!env || env->code != 0 || !env->response_object) return std::nullopt;
    const json& response = (*j)["response"];
    token_answer t;
    t.access_token = string_field(response, "access_token");
    auto now = integer_field(response, "now");
    auto expired_at = integer_field(response, "expired_at");
    if (t.access_token.empty() || !now || !expired_at || *expired_at <= *now || *now <= 0)
        return std::nullopt;
    t.now = *now;
    t.expired_at = *expired_at;
    return t;
}

std::optional<payment> parse_payment(std::string_view json_object) {
    auto j = parse_json(json_object);
    if (!j) return std::nullopt;
    return payment_from(*j);
}

std::string bounded_raw(std::string_view body) {
    return std::string(domain::cut_utf8(body, max_journaled_body));
}

charge_result classify_charge(const charge_request& request, const http_answer& answer) {
    charge_result r;
    r.journal = base_exchange("charge", charge_summary(request), answer);
    exchange& x = r.journal;

    if (!answer.transport_error.empty() || answer.http_status == 0) {
        // Nothing written: provably not processed. Written without a complete answer: the PG
        // may be charging the card right now. A refused certificate will be refused again.
        x.result = answer.tls_verify_failed ? outcome::config_error
                   : answer.request_written ? outcome::unknown
                                            : outcome::transient;
        x.message = transport_message(answer);
        return r;
    }

    auto j = parse_payment_envelope(answer.body);
    std::optional<envelope> env;
    if (j) env = envelope_from(*j);
    if (env) {
        x.code = env->code;
        x.message = env->message;
    }

    if (answer.http_status != 200) {
        x.result = charge_status_class(answer.http_status);
        x.message = http_message(answer.http_status, env);
        return r;
    }
    if (!env) {
        x.result = outcome::unknown;
        x.message = j ? "HTTP 200 without a PortOne envelope" : "HTTP 200 with a non-JSON body";
        return r;
    }

    if (env->code != 0) {
        const bool no_payment = env->response_null;
        if ((env->code == 1 || env->code == -1) && no_payment &&
            contains(env->message, unregistered_customer_text)) {
            x.result = outcome::invalid_billing_key;
            r.needs_customer_check = true;
        } else if (no_payment && contains(env->message, module_not_configured_text)) {
            x.result = outcome::config_error;
        } else {
            // PG communication failure, merchant_uid already used, ...: PortOne got it, and
            // the money may have moved earlier under this merchant_uid. Reconcile.
            x.result = outcome::refused;
        }
        return r;
    }

    std::optional<payment> p;
    if (env->response_object) p = payment_from((*j)["response"]);
    if (!p) {
        x.result = outcome::unknown;
        x.message = "code 0 without a readable payment";
        // Say what was received (an amount out of range, a fraction), not a converted value.
        if (env->response_object)
            if (auto amount = (*j)["response"].find("amount");
                amount != (*j)["response"].end() && !amount->is_null())
                x.message += " (amount " + dump(*amount).substr(0, 64) + ")";
        return r;
    }
    x.imp_uid = p->imp_uid;
    if (p->status == "paid") {
        x.result = outcome::paid;
    } else if (p->status == "failed") {
        x.result = outcome::declined;
        if (!p->fail_reason.empty()) x.message = p->fail_reason;
    } else {
        x.result = outcome::unknown;  // ready, cancelled, or a status we do not know
        if (x.message.empty()) x.message = "payment status \"" + p->status + "\"";
    }
    r.answer = std::move(p);
    return r;
}

std::optional<std::string> paid_anomaly(const charge_request& request, const payment& paid) {
    if (paid.amount != request.amount)
        return "amount " + std::to_string(paid.amount) + " != asked " +
               std::to_string(request.amount);
    if (paid.customer_uid != request.customer_uid)
        return "customer_uid \"" + paid.customer_uid + "\" != asked \"" + request.customer_uid +
               "\"";
    if (paid.merchant_uid != request.merchant_uid)
        return "merchant_uid \"" + paid.merchant_uid + "\" != asked \"" + request.merchant_uid +
               "\"";
    // An empty currency is not proof either: every field as sent.
    if (paid.currency != request.currency)
        return "currency \"" + paid.currency + "\" != asked \"" + request.currency + "\"";
    return std::nullopt;
}

namespace {

// What lookups (findAll pages, customers) share: transport failures stay unknown, PortOne's
// own 404 envelope means "no record" (a bare 404 from a wrong base_url or a proxy must not
// let the scheduler resend), 401 is a configuration error. `settled` says whether that
// decided the exchange; otherwise the caller reads `body` and `env`.
struct lookup_answer {
    std::optional<json> body;
    std::optional<envelope> env;
    bool settled = false;
};

lookup_answer read_lookup_answer(const http_answer& answer, exchange& x) {
    lookup_answer a;
    x.result = outcome::unknown;
    if (!answer.transport_error.empty() || answer.http_status == 0) {
        x.message = transport_message(answer);
        if (answer.tls_verify_failed) x.result = outcome::config_error;
        a.settled = true;
        return a;
    }
    a.body = parse_json(answer.body);
    if (a.body) a.env = envelope_from(*a.body);
    if (a.env) {
        x.code = a.env->code;
        x.message = a.env->message;
    }
    if (answer.http_status == 404) {
        if (a.env) {
            x.result = outcome::not_found;
        } else {
            x.message = "HTTP 404 without a PortOne envelope";
        }
        a.settled = true;
    } else if (answer.http_status == 401) {
        x.result = outcome::config_error;
        x.message = http_message(401, a.env);
        a.settled = true;
    }
    return a;
}

}  // namespace

find_all_page classify_find_all_page(std::string summary, const http_answer& answer) {
    find_all_page r;
    r.journal = base_exchange("lookup", std::move(summary), answer);
    exchange& x = r.journal;
    auto [j, env, settled] = read_lookup_answer(answer, x);
    if (settled) return r;
    if (answer.http_status != 200 || !env || env->code != 0 || !env->response_object) {
        if (answer.http_status != 200) {
            x.message = http_message(answer.http_status, env);
        } else if (!env) {
            x.message = "HTTP 200 without a PortOne envelope";
        } else if (x.message.empty()) {
            x.message = "code " + std::to_string(env->code) + " without a payment list";
        }
        return r;
    }

    const json& response = (*j)["response"];
    auto list = response.find("list");
    auto total = integer_field(response, "total");
    auto previous = integer_field(response, "previous");
    auto next = integer_field(response, "next");
    if (list == response.end() || !list->is_array() || !total || !previous || !next) {
        x.message = "malformed payment list";
        return r;
    }
    payment_list page;
    page.total = *total;
    page.previous = *previous;
    page.next = *next;
    for (const auto& item : *list) {
        auto p = payment_from(item);
        if (!p) {
            x.message = "malformed payment in list";
            return r;
        }
        page.list.push_back(std::move(*p));
    }
    x.result = outcome::found;
    r.page = std::move(page);
    return r;
}

lookup_result reduce_lookup(exchange journal, std::vector<payment> payments) {
    lookup_result r;
    r.journal = std::move(journal);
    r.payments = std::move(payments);

    const payment* paid = nullptr;
    const payment* latest_failure = nullptr;
    bool pending = false;
    for (const auto& p : r.payments) {
        if (p.status == "paid") {
            if (!paid) paid = &p;
        } else if (p.status == "failed" || p.status == "cancelled") {
            auto when = [](const payment& q) {
                return std::pair{std::max(q.failed_at, q.cancelled_at), q.started_at};
            };
            if (!latest_failure || when(p) > when(*latest_failure)) latest_failure = &p;
        } else {
            pending = true;  // ready, or a status we do not know: the money may still move
        }
    }

    if (paid) {
        r.verdict = outcome::paid;
        r.settled = *paid;
    } else if (pending) {
        r.verdict = outcome::unknown;
    } else if (latest_failure) {
        r.verdict = outcome::declined;
        r.settled = *latest_failure;
    } else {
        r.verdict = outcome::not_found;
    }
    r.journal.result = r.verdict;
    if (r.settled) {
        r.journal.imp_uid = r.settled->imp_uid;
        if (r.verdict == outcome::declined && !r.settled->fail_reason.empty())
            r.journal.message = r.settled->fail_reason;
    }
    return r;
}

customer_result classify_customer(std::string summary, const http_answer& answer) {
    customer_result r;
    r.journal = base_exchange("customer", std::move(summary), answer);
    exchange& x = r.journal;
    auto [j, env, settled] = read_lookup_answer(answer, x);
    if (settled) return r;
    if (answer.http_status != 200 || !env) {
        if (answer.http_status != 200) {
            x.message = http_message(answer.http_status, env);
        } else {
            x.message = "HTTP 200 without a PortOne envelope";
        }
        return r;
    }
    if (env->code != 0) {
        x.result = outcome::not_found;  // older accounts answer an unknown key this way
        return r;
    }
    if (!env->response_object) {
        if (x.message.empty()) x.message = "code 0 without customer data";
        return r;
    }
    const json& response = (*j)["response"];
    r.exists = true;
    r.card_name = string_field(response, "card_name");
    r.card_number = string_field(response, "card_number");
    r.pg_provider = string_field(response, "pg_provider");
    x.result = outcome::found;
    return r;
}

token_result classify_token(const http_answer& answer) {
    token_result r;
    r.journal = base_exchange("token", "POST /users/getToken", answer);
    exchange& x = r.journal;
    x.result = outcome::transient;

    if (!answer.transport_error.empty() || answer.http_status == 0) {
        x.message = transport_message(answer);
        if (answer.tls_verify_failed) x.result = outcome::config_error;
        return r;
    }
    auto env = parse_envelope(answer.body);
    if (env) {
        x.code = env->code;
        x.message = env->message;
    }
    const int status = answer.http_status;
    if (status == 400 || status == 401 || status == 403) {
        x.result = outcome::config_error;
        x.message = http_message(status, env) + " (check imp_key/imp_secret)";
        return r;
    }
    if (status != 200) {
        x.message = http_message(status, env);
        return r;
    }
    // A 200 answer may hold an access token even when it is unusable: never journal it.
    x.raw.clear();
    r.token = parse_token(answer.body);
    if (!r.token) {
        if (x.message.empty()) x.message = "getToken answer without a usable token";
        return r;
    }
    if (!is_b64token(r.token->access_token)) {
        // It goes into an Authorization header: anything outside RFC 6750's b64token (a CR/LF
        // above all) could inject a header or smuggle a request. Never retried as transient.
        r.token.reset();
        x.result = outcome::config_error;
        x.message = "getToken returned an access token with characters outside RFC 6750";
        return r;
    }
    x.message.clear();
    x.result = outcome::found;
    return r;
}

}  // namespace billingd::gateway::wire
