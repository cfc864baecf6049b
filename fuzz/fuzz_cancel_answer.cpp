// Refund answers: classify_cancel, classify_payment and classify_cancelled_page on the same
// answer, as http_client.cpp's cancel, get_payment and cancelled_payments do.
//
// Input: "<http_status> <request_written> <transport_error> <tls_refused>\n" (see
// gateway_oracle.hpp), then "<amount> <checksum> <page>\n" (the cancel asked for and the page
// read; normalised to amount > 0, checksum >= amount, page 1..5), then the body.
// Invariants: a cancel is `found` only from HTTP 200 + code 0 + a payment of the imp_uid asked
// about, paid or cancelled, that shows the cancel (what is left <= checksum - amount), and then
// the payment says exactly what the answer says, cancel_history included; `refused` only from
// an envelope with code != 0 below HTTP 500; `transient` only when nothing was written or
// HTTP 429; a payment lookup is found only for that imp_uid, not_found only from a 404 with
// PortOne's envelope; a page is found only from 200 + code 0, holds exactly the answer's
// payments, and its `next` is 0 or past the page; journals are bounded; nothing throws.
#include <algorithm>
#include <exception>

#include "gateway_oracle.hpp"

namespace gw = billingd::gateway;
namespace wire = billingd::gateway::wire;
using billingd::fuzz::oracle;
using gw::outcome;

namespace {

constexpr const char* asked_imp_uid = "imp_406540408880";
constexpr std::int64_t max_amount = 1'000'000'000'000'000;

// The class of an answer the transport could not complete, for every refund call.
outcome broken_class(const wire::http_answer& answer) {
    if (billingd::fuzz::tls_refused(answer)) return outcome::config_error;
    return answer.request_written ? outcome::unknown : outcome::transient;
}

void check_common(const gw::exchange& x, const wire::http_answer& answer, const oracle& o,
                  const char* kind) {
    FUZZ_CHECK(x.kind == kind, "journal kind");
    FUZZ_CHECK(x.request_written == answer.request_written, "journal request_written");
    FUZZ_CHECK(x.http_status == answer.http_status, "journal http_status");
    billingd::fuzz::check_raw(x.raw, answer.body);
    billingd::fuzz::check_code(x, o);
    const bool broken = billingd::fuzz::transport_failed(answer);
    if (broken) FUZZ_CHECK(x.result == broken_class(answer), "no complete answer misclassified");
    if (x.result == outcome::transient)
        FUZZ_CHECK((broken && !answer.request_written) || (!broken && answer.http_status == 429),
                   "transient although the request was written and not answered 429");
    FUZZ_CHECK(x.result != outcome::paid && x.result != outcome::declined &&
                   x.result != outcome::invalid_billing_key,
               "a refund call classified as a charge outcome");
}

void check_cancel(const gw::cancel_request& request, const wire::http_answer& answer,
                  const oracle& o) {
    gw::cancel_result r;
    try {
        r = wire::classify_cancel(request, answer);
    } catch (const std::exception& e) {
        FUZZ_CHECK(false, e.what());
    }
    const gw::exchange& x = r.journal;
    check_common(x, answer, o, "cancel");
    const bool broken = billingd::fuzz::transport_failed(answer);
    FUZZ_CHECK(x.imp_uid == request.imp_uid, "journal imp_uid is not the one asked about");
    if (r.answer) {
        FUZZ_CHECK(!broken && answer.http_status == 200 && o.code_zero() && o.response_object,
                   "a payment from something other than 200 + code 0 + an object");
        billingd::fuzz::check_payment_matches(*r.answer, o.response(), o.lossy);
    }
    switch (x.result) {
        case outcome::found: {
            FUZZ_CHECK(r.answer.has_value(), "found without the payment");
            const auto& p = *r.answer;
            FUZZ_CHECK(p.imp_uid == request.imp_uid, "found for another payment");
            FUZZ_CHECK(p.status == "paid" || p.status == "cancelled",
                       "found with a payment neither paid nor cancelled");
            FUZZ_CHECK(p.cancel_amount >= 0 && p.cancel_amount <= p.amount,
                       "found with a cancel_amount out of range");
            FUZZ_CHECK(p.amount - p.cancel_amount <= request.checksum - request.amount,
                       "found although the payment does not show the cancel");
            break;
        }
        case outcome::refused:
            FUZZ_CHECK(
                !broken && answer.http_status < 500 && o.envelope && !(o.code_fits && o.code == 0),
                "refused without an envelope code != 0 below HTTP 500");
            break;
        case outcome::not_found:
            FUZZ_CHECK(!broken && answer.http_status == 404 && o.envelope,
                       "not_found from something other than a 404 with PortOne's envelope");
            break;
        case outcome::config_error:
            FUZZ_CHECK(broken ? billingd::fuzz::tls_refused(answer)
                              : answer.http_status == 401 || answer.http_status == 404 ||
                                    (answer.http_status >= 300 && answer.http_status < 400),
                       "config_error from something but 401, 3xx, a bare 404 or a certificate");
            break;
        case outcome::unknown:
        case outcome::transient:
            break;
        default:
            FUZZ_CHECK(false, "classify_cancel gave a class it never gives");
    }
    // 5xx never says "not applied".
    if (!broken && answer.http_status >= 500)
        FUZZ_CHECK(x.result == outcome::unknown, "a 5xx cancel answer not unknown");
}

void check_payment(const wire::http_answer& answer, const oracle& o) {
    gw::payment_result r;
    try {
        r = wire::classify_payment(asked_imp_uid, "GET /payments/imp_406540408880", answer);
    } catch (const std::exception& e) {
        FUZZ_CHECK(false, e.what());
    }
    const gw::exchange& x = r.journal;
    check_common(x, answer, o, "payment");
    const bool broken = billingd::fuzz::transport_failed(answer);
    FUZZ_CHECK((x.result == outcome::found) == r.found.has_value(), "found iff a payment");
    if (r.found) {
        FUZZ_CHECK(!broken && answer.http_status == 200 && o.code_zero() && o.response_object,
                   "a payment from something other than 200 + code 0 + an object");
        FUZZ_CHECK(r.found->imp_uid == asked_imp_uid, "found another payment");
        billingd::fuzz::check_payment_matches(*r.found, o.response(), o.lossy);
    }
    if (x.result == outcome::not_found)
        FUZZ_CHECK(!broken && answer.http_status == 404 && o.envelope,
                   "not_found from something other than a 404 with PortOne's envelope");
    if (x.result == outcome::config_error)
        FUZZ_CHECK(broken ? billingd::fuzz::tls_refused(answer) : answer.http_status == 401,
                   "config_error from something but 401 or a refused certificate");
    FUZZ_CHECK(x.result != outcome::refused, "a lookup refused");
}

void check_page(std::int64_t page, const wire::http_answer& answer, const oracle& o) {
    gw::payment_page_result r;
    try {
        r = wire::classify_cancelled_page(page, "GET /payments/status/cancelled", answer);
    } catch (const std::exception& e) {
        FUZZ_CHECK(false, e.what());
    }
    const gw::exchange& x = r.journal;
    check_common(x, answer, o, "cancelled_list");
    const bool broken = billingd::fuzz::transport_failed(answer);
    if (x.result != outcome::found) {
        FUZZ_CHECK(r.list.empty() && r.next == 0 && r.total == 0, "a page without found");
    } else {
        FUZZ_CHECK(!broken && answer.http_status == 200 && o.code_zero() && o.response_object,
                   "a page from something other than 200 + code 0 + an object");
        const auto list = o.response().find("list");
        FUZZ_CHECK(list != o.response().end() && list->is_array() && list->size() == r.list.size(),
                   "the page does not hold exactly the answer's payments");
        for (std::size_t i = 0; i < r.list.size(); ++i)
            billingd::fuzz::check_payment_matches(r.list[i], (*list)[i], o.lossy);
        FUZZ_CHECK(billingd::fuzz::same_number(o.response(), "next", r.next) &&
                       billingd::fuzz::same_number(o.response(), "total", r.total),
                   "next or total is not the answer's");
        FUZZ_CHECK(r.next == 0 || r.next > page, "a next page that would never end");
    }
    if (x.result == outcome::config_error)
        FUZZ_CHECK(broken ? billingd::fuzz::tls_refused(answer)
                          : answer.http_status == 401 || (answer.http_status == 400 && o.envelope),
                   "config_error from something but 401, a refused 400 or a certificate");
    FUZZ_CHECK(x.result != outcome::refused && x.result != outcome::not_found,
               "a page refused or not found");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    billingd::fuzz::text_input in(data, size);
    const auto header = in.line();
    billingd::fuzz::words asked(in.line());
    const wire::http_answer answer = billingd::fuzz::read_answer(header, in.rest());

    gw::cancel_request request;
    request.imp_uid = asked_imp_uid;
    request.reason = "고객 요청";
    const auto magnitude = [](std::int64_t v) {
        return v < 0 ? -(v + 1) % max_amount : v % max_amount;
    };
    request.amount = magnitude(asked.number());
    if (request.amount == 0) request.amount = 3000;
    request.checksum = std::max(request.amount, magnitude(asked.number()));
    const std::int64_t page = 1 + magnitude(asked.number()) % 5;

    const oracle o(answer.body);
    check_cancel(request, answer, o);
    check_payment(answer, o);
    check_page(page, answer, o);
    return 0;
}
