// Refunds on the wire: POST /payments/cancel, GET /payments/{imp_uid} and
// GET /payments/status/cancelled (see wire.hpp for the classification of each).
#include <cassert>
#include <utility>

#include "domain/json_object.hpp"
#include "gateway/wire.hpp"
#include "gateway/wire_detail.hpp"

namespace billingd::gateway::wire {

using namespace detail;

namespace {

// No complete answer: nothing written is transient, a refused certificate a configuration
// error, anything after the request left unknown.
outcome transport_class(const http_answer& answer) {
    if (answer.tls_verify_failed) return outcome::config_error;
    return answer.request_written ? outcome::unknown : outcome::transient;
}

bool transport_failed(const http_answer& answer) {
    return !answer.transport_error.empty() || answer.http_status == 0;
}

// No complete answer: classifies `x` and returns true. Otherwise returns false.
bool classified_transport(const http_answer& answer, exchange& x) {
    if (!transport_failed(answer)) return false;
    x.result = transport_class(answer);
    x.message = transport_message(answer);
    return true;
}

// The body of a complete answer and PortOne's envelope in it, if it has one; the envelope's
// code and message go into the journal record, and the class starts as unknown.
struct enveloped {
    std::optional<json> body;
    std::optional<envelope> env;
};
enveloped read_envelope(const http_answer& answer, exchange& x, bool payment_body) {
    enveloped e;
    e.body = payment_body ? parse_payment_envelope(answer.body) : parse_json(answer.body);
    if (e.body) e.env = envelope_from(*e.body);
    if (e.env) {
        x.code = e.env->code;
        x.message = e.env->message;
    }
    x.result = outcome::unknown;
    return e;
}

// Whether the payment after a cancel shows it: at most `checksum - amount` is left to cancel.
// A payment whose numbers are out of range shows nothing.
bool shows_cancel(const cancel_request& request, const payment& p) {
    if (p.amount < 0 || p.cancel_amount < 0 || p.cancel_amount > p.amount) return false;
    return p.amount - p.cancel_amount <= request.checksum - request.amount;
}

}  // namespace

std::string cancel_body(const cancel_request& request) {
    domain::json_object body;
    body.add("amount", request.amount)
        .add("checksum", request.checksum)
        .add("imp_uid", request.imp_uid);
    if (!request.reason.empty()) body.add("reason", request.reason);
    return body.str();
}

std::string cancel_summary(const cancel_request& request) {
    return "POST /payments/cancel imp_uid=" + request.imp_uid +
           " amount=" + std::to_string(request.amount) +
           " checksum=" + std::to_string(request.checksum);
}

cancel_result classify_cancel(const cancel_request& request, const http_answer& answer) {
    assert(request.amount > 0 && request.checksum >= request.amount);
    cancel_result r;
    r.journal = base_exchange("cancel", cancel_summary(request), answer);
    exchange& x = r.journal;
    x.imp_uid = request.imp_uid;

    // Written without a complete answer: the PG may be refunding right now (unknown).
    if (classified_transport(answer, x)) return r;
    const int status = answer.http_status;
    auto [j, env] = read_envelope(answer, x, true);
    if (status == 401 || (status >= 300 && status < 400) || (status == 404 && !env)) {
        // After the token layer's one retry; or no cancel endpoint there (base_url points at a
        // path, a proxy, a redirect). Neither processed the cancel.
        x.result = outcome::config_error;
        x.message =
            status == 404 ? "HTTP 404 without a PortOne envelope" : http_message(status, env);
        return r;
    }
    if (status == 429) {
        x.result = outcome::transient;
        x.message = http_message(status, env);
        return r;
    }
    if (status >= 500) {
        x.message = http_message(status, env);
        return r;
    }
    if (status == 404) {
        x.result = outcome::not_found;
        return r;
    }
    if (!env) {
        x.message = j ? "HTTP " + std::to_string(status) + " without a PortOne envelope"
                      : "HTTP " + std::to_string(status) + " with a non-JSON body";
        return r;
    }
    if (env->code != 0) {
        // Checksum mismatch, already cancelled, amount too large: PortOne read it and said no,
        // as HTTP 200 or 4xx (which of them is not documented).
        x.result = outcome::refused;
        if (x.message.empty()) x.message = http_message(status, env);
        return r;
    }
    if (status != 200) {
        x.message = http_message(status, env) + " with code 0";
        return r;
    }

    std::optional<payment> p;
    if (env->response_object) p = payment_from((*j)["response"]);
    if (!p) {
        x.message = "code 0 without a readable payment";
        return r;
    }
    r.answer = std::move(p);
    const payment& after = *r.answer;
    if (after.imp_uid != request.imp_uid) {
        x.message = "the answer is about imp_uid \"" + after.imp_uid + "\"";
    } else if (after.status != "paid" && after.status != "cancelled") {
        x.message = "payment status \"" + after.status + "\" after a cancel";
    } else if (!shows_cancel(request, after)) {
        // Code 0, yet the cancel is not in the payment: read it again before deciding.
        x.message = "code 0, but cancel_amount " + std::to_string(after.cancel_amount) + " of " +
                    std::to_string(after.amount) + " does not include this cancel";
    } else {
        x.result = outcome::found;
        x.message.clear();
    }
    return r;
}

payment_result classify_payment(const std::string& imp_uid, std::string summary,
                                const http_answer& answer) {
    payment_result r;
    r.journal = base_exchange("payment", std::move(summary), answer);
    exchange& x = r.journal;
    x.imp_uid = imp_uid;
    if (classified_transport(answer, x)) return r;
    const int status = answer.http_status;
    auto [j, env] = read_envelope(answer, x, true);
    if (status == 401) {
        x.result = outcome::config_error;
        x.message = http_message(status, env);
        return r;
    }
    if (status == 429) {
        x.result = outcome::transient;
        x.message = http_message(status, env);
        return r;
    }
    if (status == 404) {
        // A bare 404 (a wrong base_url, a proxy) is not PortOne saying "no such payment".
        if (env)
            x.result = outcome::not_found;
        else
            x.message = "HTTP 404 without a PortOne envelope";
        return r;
    }
    if (status != 200 || !env) {
        x.message = status != 200 ? http_message(status, env)
                    : j           ? "HTTP 200 without a PortOne envelope"
                                  : "HTTP 200 with a non-JSON body";
        return r;
    }
    std::optional<payment> p;
    if (env->code == 0 && env->response_object) p = payment_from((*j)["response"]);
    if (!p) {
        if (x.message.empty())
            x.message = "code " + std::to_string(env->code) + " without a readable payment";
        return r;
    }
    if (p->imp_uid != imp_uid) {
        x.message = "the answer is about imp_uid \"" + p->imp_uid + "\"";
        return r;
    }
    x.result = outcome::found;
    r.found = std::move(p);
    return r;
}

payment_page_result classify_cancelled_page(std::int64_t page, std::string summary,
                                            const http_answer& answer) {
    payment_page_result r;
    r.journal = base_exchange("cancelled_list", std::move(summary), answer);
    exchange& x = r.journal;
    if (classified_transport(answer, x)) return r;
    const int status = answer.http_status;
    auto [j, env] = read_envelope(answer, x, false);
    if (status == 401 || (status == 400 && env)) {
        x.result = outcome::config_error;
        x.message = http_message(status, env);
        return r;
    }
    if (status == 429) {
        x.result = outcome::transient;
        x.message = http_message(status, env);
        return r;
    }
    if (status != 200 || !env || env->code != 0 || !env->response_object) {
        if (status != 200)
            x.message = http_message(status, env);
        else if (!env)
            x.message = j ? "HTTP 200 without a PortOne envelope" : "HTTP 200 with a non-JSON body";
        else if (x.message.empty())
            x.message = "code " + std::to_string(env->code) + " without a payment list";
        return r;
    }

    const json& response = (*j)["response"];
    auto list = response.find("list");
    auto total = integer_field(response, "total");
    auto next = integer_field(response, "next");
    if (list == response.end() || !list->is_array() || !total || !next) {
        x.message = "malformed payment list";
        return r;
    }
    if (*next != 0 && *next <= page) {
        // Following it would never end.
        x.message = "next page " + std::to_string(*next) + " after page " + std::to_string(page);
        return r;
    }
    std::vector<payment> payments;
    for (const auto& item : *list) {
        auto p = payment_from(item);
        if (!p) {
            x.message = "malformed payment in list";
            return r;
        }
        payments.push_back(std::move(*p));
    }
    x.result = outcome::found;
    r.list = std::move(payments);
    r.total = *total;
    r.next = *next;
    return r;
}

}  // namespace billingd::gateway::wire
