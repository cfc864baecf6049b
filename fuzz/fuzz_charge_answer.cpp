// classify_charge on any answer: the money decision must follow from what PortOne said.
//
// Input: "<http_status> <request_written> <transport_error> <tls_refused>\n<body>" (see
// gateway_oracle.hpp). Invariants: transient only when nothing was written or HTTP 429; a
// refused certificate is a configuration error, never transient; paid only from HTTP 200 +
// envelope code 0 + a payment whose status is "paid", and then the payment comes with it and
// says exactly what the answer says; the journal's raw body is bounded; nothing throws.
#include <exception>

#include "gateway_oracle.hpp"

namespace gw = billingd::gateway;
namespace wire = billingd::gateway::wire;
using billingd::fuzz::oracle;
using gw::outcome;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    billingd::fuzz::text_input in(data, size);
    const auto header = in.line();
    const wire::http_answer answer = billingd::fuzz::read_answer(header, in.rest());

    gw::charge_request request;
    request.customer_uid = "cust_1";
    request.merchant_uid = "sub1-p3";
    request.amount = 9900;
    request.name = "Monthly plan";

    gw::charge_result r;
    try {
        r = wire::classify_charge(request, answer);
    } catch (const std::exception& e) {
        FUZZ_CHECK(false, e.what());
    } catch (...) {
        FUZZ_CHECK(false, "classify_charge threw");
    }
    const gw::exchange& x = r.journal;
    const oracle o(answer.body);
    const bool broken = billingd::fuzz::transport_failed(answer);

    FUZZ_CHECK(x.kind == "charge", "journal kind");
    FUZZ_CHECK(x.request_written == answer.request_written, "journal request_written");
    FUZZ_CHECK(x.http_status == answer.http_status, "journal http_status");
    billingd::fuzz::check_raw(x.raw, answer.body);
    billingd::fuzz::check_code(x, o);
    FUZZ_CHECK(x.result != outcome::found && x.result != outcome::not_found,
               "a charge answer classified as a lookup result");

    if (broken) {
        const auto expected = billingd::fuzz::tls_refused(answer) ? outcome::config_error
                              : answer.request_written            ? outcome::unknown
                                                                  : outcome::transient;
        FUZZ_CHECK(x.result == expected,
                   "no complete answer: a refused certificate is config_error, else transient "
                   "iff not written, else unknown");
        FUZZ_CHECK(!r.answer, "a payment from no answer");
    }
    if (x.result == outcome::transient) {
        FUZZ_CHECK((broken && !answer.request_written) || (!broken && answer.http_status == 429),
                   "transient although the request was written and not answered 429");
    }

    if (r.answer) {
        FUZZ_CHECK(!broken && answer.http_status == 200, "a payment from a non-200 answer");
        FUZZ_CHECK(o.code_zero() && o.response_object, "a payment without code 0 and an object");
        billingd::fuzz::check_payment_matches(*r.answer, o.response(), o.lossy);
        FUZZ_CHECK(x.imp_uid == r.answer->imp_uid, "journal imp_uid is not the payment's");
    }
    if (x.result == outcome::paid) {
        FUZZ_CHECK(!broken && answer.http_status == 200, "paid from a non-200 answer");
        FUZZ_CHECK(o.code_zero(), "paid without envelope code 0");
        FUZZ_CHECK(o.response_object && billingd::fuzz::string_of(o.response(), "status") == "paid",
                   "paid without a payment whose status is \"paid\"");
        FUZZ_CHECK(r.answer && r.answer->status == "paid", "a paid result without its payment");
        // What the caller then checks before it believes the money: paid_anomaly() must
        // flag every mismatch with what was asked.
        const auto anomaly = wire::paid_anomaly(request, *r.answer);
        if (!anomaly) {
            FUZZ_CHECK(r.answer->amount == request.amount, "paid_anomaly missed the amount");
            FUZZ_CHECK(r.answer->customer_uid == request.customer_uid,
                       "paid_anomaly missed the customer_uid");
            FUZZ_CHECK(r.answer->merchant_uid == request.merchant_uid,
                       "paid_anomaly missed the merchant_uid");
        }
    }
    if (x.result == outcome::declined)
        FUZZ_CHECK(r.answer && r.answer->status == "failed", "declined without a failed payment");
    if (x.result == outcome::invalid_billing_key) {
        FUZZ_CHECK(r.needs_customer_check, "invalid_billing_key without a customer check");
        FUZZ_CHECK(!broken && answer.http_status == 200 && o.code_fits &&
                       (o.code == 1 || o.code == -1) && o.response_null && !r.answer,
                   "invalid_billing_key from something other than 200 + code 1/-1 + null");
    }
    if (r.needs_customer_check)
        FUZZ_CHECK(x.result == outcome::invalid_billing_key, "a customer check for another result");
    // A clean paid answer is never thrown away as anything but paid or (non-integral numbers)
    // unknown.
    if (!broken && answer.http_status == 200 && o.code_zero() && o.response_object &&
        billingd::fuzz::string_of(o.response(), "status") == "paid")
        FUZZ_CHECK(x.result == outcome::paid || x.result == outcome::unknown,
                   "a paid answer classified as neither paid nor unknown");
    return 0;
}
