// getToken and customer answers: classify_token and classify_customer.
//
// Input: "<kind> <http_status> <request_written> <transport_error> <tls_refused>\n<body>"
// where kind is "customer" for GET /subscribe/customers/{customer_uid}, else getToken.
// Invariants, getToken: found only from HTTP 200 + code 0 + a usable token made of RFC 6750
// b64token characters (it goes into the Authorization header), and then the token appears
// nowhere in the journal (no raw body of any 200 answer is kept); config_error only for
// 400/401/403, a refused certificate or a 200 whose token is not a b64token; everything else
// transient (getToken moves no money). token_cache then takes whatever classify_token hands
// it (any lifetime) without undefined behaviour, leases that token and serves it again from
// the cache, or passes the failure on.
// Customer: found (exists) only from HTTP 200 + code 0 + an object, with the answer's card
// fields; not_found only from a 404 with PortOne's envelope or a 200 with code != 0;
// config_error only for 401 or a refused certificate; no complete answer is otherwise
// unknown. Nothing throws.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <exception>

#include "gateway/token_cache.hpp"
#include "gateway_oracle.hpp"

namespace gw = billingd::gateway;
namespace wire = billingd::gateway::wire;
using billingd::fuzz::oracle;
using gw::outcome;

namespace {

// RFC 6750: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
bool b64token(std::string_view token) {
    const auto body_end = token.find_first_not_of(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/");
    const auto body = token.substr(0, body_end);
    const auto padding = token.substr(body.size());
    return !body.empty() && padding.find_first_not_of('=') == std::string_view::npos;
}

// The token cache on the classified answer, at a steady clock a year after boot: the first
// get() fetches (the answer), a second one right after is served from the cache.
void check_cache(const wire::token_result& fetched) {
    namespace asio = boost::asio;
    asio::io_context io;
    const auto now = std::chrono::steady_clock::time_point{std::chrono::hours{24 * 365}};
    gw::token_cache cache(
        io.get_executor(),
        [fetched]() -> asio::awaitable<wire::token_result> { co_return fetched; },
        std::chrono::seconds{60}, [now] { return now; });
    std::optional<gw::token_cache::lease> first;
    std::optional<gw::token_cache::lease> second;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            first = co_await cache.get(0);
            second = co_await cache.get(0);
        },
        asio::detached);
    io.run();
    FUZZ_CHECK(first && second, "token_cache::get did not finish");
    if (fetched.token) {
        FUZZ_CHECK(
            !first->failure && first->token == fetched.token->access_token && first->generation > 0,
            "the cache did not lease the fetched token");
        FUZZ_CHECK(!second->failure && second->token == first->token && cache.fetches() == 1,
                   "a fresh token was not served from the cache");
    } else {
        FUZZ_CHECK(first->failure && first->token.empty() && first->generation == 0,
                   "a lease without a token");
        FUZZ_CHECK(first->failure->result == fetched.journal.result,
                   "the cache changed the failure's class");
    }
}

void check_token(const wire::http_answer& answer) {
    wire::token_result r;
    try {
        r = wire::classify_token(answer);
    } catch (const std::exception& e) {
        FUZZ_CHECK(false, e.what());
    }
    const gw::exchange& x = r.journal;
    const oracle o(answer.body);
    const bool broken = billingd::fuzz::transport_failed(answer);
    FUZZ_CHECK(x.raw.size() <= gw::max_journaled_body, "journal raw body over the bound");
    billingd::fuzz::check_code(x, o);
    FUZZ_CHECK(x.result == outcome::found || x.result == outcome::config_error ||
                   x.result == outcome::transient,
               "getToken classified as something that moves money");
    FUZZ_CHECK((x.result == outcome::found) == r.token.has_value(), "found iff a token");
    if (!broken && answer.http_status == 200)
        FUZZ_CHECK(x.raw.empty(), "the body of a 200 getToken answer was journaled");
    else
        billingd::fuzz::check_raw(x.raw, answer.body);
    if (broken)
        FUZZ_CHECK(x.result == (billingd::fuzz::tls_refused(answer) ? outcome::config_error
                                                                    : outcome::transient),
                   "no complete answer: config_error for a refused certificate, else transient");
    if (x.result == outcome::config_error && !broken) {
        const int s = answer.http_status;
        const bool bad_token = s == 200 && o.code_zero() && o.response_object &&
                               !b64token(billingd::fuzz::string_of(o.response(), "access_token"));
        FUZZ_CHECK(s == 400 || s == 401 || s == 403 || bad_token,
                   "config_error from something other than 400/401/403 or a bad token");
    }
    if (r.token) {
        FUZZ_CHECK(!broken && answer.http_status == 200 && o.code_zero() && o.response_object,
                   "a token from something other than 200 + code 0 + an object");
        const std::string& token = r.token->access_token;
        FUZZ_CHECK(!token.empty() && (o.lossy || token == billingd::fuzz::string_of(
                                                              o.response(), "access_token")),
                   "the token is not the answer's access_token");
        FUZZ_CHECK(r.token->now > 0 && r.token->expired_at > r.token->now,
                   "a token that is already expired");
        FUZZ_CHECK(b64token(token),
                   "a token outside RFC 6750's b64token would go into the Authorization header");
        FUZZ_CHECK(!billingd::fuzz::contains(x.raw, token) &&
                       !billingd::fuzz::contains(x.message, token) &&
                       !billingd::fuzz::contains(x.request_summary, token) &&
                       !billingd::fuzz::contains(x.imp_uid, token),
                   "the access token reached the journal");
        FUZZ_CHECK(r.token->lifetime() > std::chrono::seconds{0}, "a token without a lifetime");
    }
    check_cache(r);
}

void check_customer(const wire::http_answer& answer) {
    gw::customer_result r;
    try {
        r = wire::classify_customer("GET /subscribe/customers/cust_1", answer);
    } catch (const std::exception& e) {
        FUZZ_CHECK(false, e.what());
    }
    const gw::exchange& x = r.journal;
    const oracle o(answer.body);
    const bool broken = billingd::fuzz::transport_failed(answer);
    billingd::fuzz::check_raw(x.raw, answer.body);
    billingd::fuzz::check_code(x, o);
    FUZZ_CHECK(x.result == outcome::found || x.result == outcome::not_found ||
                   x.result == outcome::config_error || x.result == outcome::unknown,
               "a customer lookup classified as a charge outcome");
    FUZZ_CHECK(r.exists == (x.result == outcome::found), "exists iff found");
    if (broken)
        FUZZ_CHECK(x.result == (billingd::fuzz::tls_refused(answer) ? outcome::config_error
                                                                    : outcome::unknown),
                   "no complete answer: config_error for a refused certificate, else unknown");
    if (r.exists) {
        FUZZ_CHECK(!broken && answer.http_status == 200 && o.code_zero() && o.response_object,
                   "exists from something other than 200 + code 0 + an object");
        if (!o.lossy)
            FUZZ_CHECK(
                r.card_name == billingd::fuzz::string_of(o.response(), "card_name") &&
                    r.card_number == billingd::fuzz::string_of(o.response(), "card_number") &&
                    r.pg_provider == billingd::fuzz::string_of(o.response(), "pg_provider"),
                "card fields differ from the answer");
    }
    if (x.result == outcome::not_found) {
        FUZZ_CHECK(!broken && o.envelope &&
                       (answer.http_status == 404 ||
                        (answer.http_status == 200 && !(o.code_fits && o.code == 0))),
                   "not_found from something other than 404 + envelope or 200 + code != 0");
    }
    if (x.result == outcome::config_error)
        FUZZ_CHECK(broken ? billingd::fuzz::tls_refused(answer) : answer.http_status == 401,
                   "config_error from something but 401 or a refused certificate");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    billingd::fuzz::text_input in(data, size);
    auto header = in.line();
    billingd::fuzz::words w(header);
    const bool customer = w.next() == "customer";
    const auto kind_end = header.find(' ');
    header.remove_prefix(kind_end == std::string_view::npos ? header.size() : kind_end);
    const auto answer = billingd::fuzz::read_answer(header, in.rest());
    if (customer)
        check_customer(answer);
    else
        check_token(answer);
    return 0;
}
