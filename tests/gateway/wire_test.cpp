// The PortOne V1 wire layer: every row of PORTONE_V1.md's outcome table, the reconciliation
// recipe, customer and token answers, and the request bodies.
#include "gateway/wire.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace gw = billingd::gateway;
namespace wire = billingd::gateway::wire;
using gw::outcome;

namespace {

gw::charge_request sample_request() {
    gw::charge_request r;
    r.customer_uid = "cust_1";
    r.merchant_uid = "sub1-p3";
    r.amount = 9900;
    r.name = "Monthly plan";
    return r;
}

std::string payment_json(const std::string& status, const std::string& extra = "") {
    return R"({"imp_uid":"imp_406540408880","merchant_uid":"sub1-p3","customer_uid":"cust_1",)"
           R"("customer_uid_usage":"payment","channel":"api","amount":9900,"cancel_amount":0,)"
           R"("currency":"KRW","status":")" +
           status + R"(","started_at":1732700000,"paid_at":)" +
           (status == "paid" ? "1732700003" : "0") + R"(,"failed_at":)" +
           (status == "failed" ? "1732700003" : "0") + R"(,"cancelled_at":0,"fail_reason":)" +
           (status == "failed" ? R"("한도초과")" : "null") +
           R"(,"pg_provider":"kakaopay","pg_tid":"T123","pay_method":"card",)"
           R"("receipt_url":"https://example/r","name":"Monthly plan","sandbox":false)" +
           extra + "}";
}

std::string envelope_json(int code, const std::string& message, const std::string& response) {
    return R"({"code":)" + std::to_string(code) + R"(,"message":)" + message + R"(,"response":)" +
           response + "}";
}

wire::http_answer answered(int status, std::string body) {
    wire::http_answer a;
    a.request_written = true;
    a.http_status = status;
    a.body = std::move(body);
    return a;
}

wire::http_answer broken(bool written, std::string error) {
    wire::http_answer a;
    a.request_written = written;
    a.transport_error = std::move(error);
    return a;
}

struct charge_row {
    const char* situation;
    wire::http_answer answer;
    outcome expected;
    bool needs_customer_check = false;
    bool carries_payment = false;
};

}  // namespace

TEST_CASE("every row of the PortOne V1 charge outcome table classifies as documented") {
    const std::string paid = payment_json("paid");
    const std::string failed = payment_json("failed");
    const std::vector<charge_row> rows = {
        {"approved", answered(200, envelope_json(0, "null", paid)), outcome::paid, false, true},
        {"card declined", answered(200, envelope_json(0, "null", failed)), outcome::declined, false,
         true},
        {"status ready", answered(200, envelope_json(0, "null", payment_json("ready"))),
         outcome::unknown, false, true},
        {"status cancelled", answered(200, envelope_json(0, "null", payment_json("cancelled"))),
         outcome::unknown, false, true},
        {"status nobody knows", answered(200, envelope_json(0, "null", payment_json("weird"))),
         outcome::unknown, false, true},
        {"PG communication failed",
         answered(200, envelope_json(-1, R"("PG사 통신 중 오류가 발생했습니다")", "null")),
         outcome::refused},
        {"merchant_uid already paid or cancelled",
         answered(200, envelope_json(1,
                                     R"x("이미 주문이 이루어진 건입니다. (동일한 merchant_uid로 )x"
                                     R"x(결제 또는 취소된 기록이 있습니다)")x",
                                     "null")),
         outcome::refused},
        {"unregistered customer_uid, code 1",
         answered(200, envelope_json(1, R"("등록되지 않은 구매자입니다.")", "null")),
         outcome::invalid_billing_key, true},
        {"unregistered customer_uid, code -1",
         answered(200, envelope_json(-1, R"("등록되지 않은 구매자입니다.")", "null")),
         outcome::invalid_billing_key, true},
        {"unregistered text with an unexpected code is not trusted",
         answered(200, envelope_json(7, R"("등록되지 않은 구매자입니다.")", "null")),
         outcome::refused},
        {"unregistered text next to a payment is not trusted",
         answered(200, envelope_json(1, R"("등록되지 않은 구매자입니다.")", paid)),
         outcome::refused},
        {"missing/invalid parameter",
         answered(400, envelope_json(-1, R"("merchant_uid is required")", "null")),
         outcome::refused},
        {"billing module not configured",
         answered(200,
                  envelope_json(1, R"("비인증결제모듈 사용정보를 찾을 수 없습니다.")", "null")),
         outcome::config_error},
        {"token rejected after the refresh", answered(401, ""), outcome::config_error},
        {"connect/DNS/TLS failure before the request is written",
         broken(false, "connection refused"), outcome::transient},
        {"timeout after the request was written", broken(true, "read timed out"), outcome::unknown},
        {"reset after the request was written", broken(true, "connection reset by peer"),
         outcome::unknown},
        {"HTTP 500", answered(500, "Internal Server Error"), outcome::unknown},
        {"HTTP 502", answered(502, ""), outcome::unknown},
        {"HTTP 503 with an envelope", answered(503, envelope_json(-1, "null", "null")),
         outcome::unknown},
        {"HTTP 504", answered(504, "<html>gateway timeout</html>"), outcome::unknown},
        {"non-JSON body", answered(200, "<html>oops</html>"), outcome::unknown},
        {"empty body", answered(200, ""), outcome::unknown},
        {"JSON without an envelope", answered(200, R"({"status":"paid"})"), outcome::unknown},
        {"code as a string", answered(200, R"({"code":"0","message":null,"response":null})"),
         outcome::unknown},
        {"code 0 without a payment", answered(200, envelope_json(0, "null", "null")),
         outcome::unknown},
        {"code 0 with a fractional amount",
         answered(200, envelope_json(0, "null",
                                     R"({"status":"paid","amount":9900.5,"imp_uid":"imp_1"})")),
         outcome::unknown},
        {"HTTP 429", answered(429, ""), outcome::transient},
        {"HTTP 404 on the charge endpoint (base_url points elsewhere)", answered(404, "not here"),
         outcome::config_error},
        {"HTTP 301 on the charge endpoint", answered(301, ""), outcome::config_error},
        {"HTTP 308 on the charge endpoint", answered(308, ""), outcome::config_error},
        {"HTTP 403", answered(403, ""), outcome::unknown},
    };
    const auto request = sample_request();
    for (const auto& row : rows) {
        CAPTURE(row.situation);
        const auto r = wire::classify_charge(request, row.answer);
        CHECK(r.journal.result == row.expected);
        CHECK(r.needs_customer_check == row.needs_customer_check);
        CHECK(r.answer.has_value() == row.carries_payment);
        CHECK(r.journal.kind == "charge");
        CHECK(r.journal.request_written == row.answer.request_written);
        CHECK(r.journal.http_status == row.answer.http_status);
        CHECK(r.journal.raw == row.answer.body);
        CHECK(r.journal.request_summary.find("merchant_uid=sub1-p3") != std::string::npos);
    }
}

TEST_CASE("a paid answer carries the payment, its imp_uid and PortOne's code") {
    const auto r = wire::classify_charge(
        sample_request(), answered(200, envelope_json(0, "null", payment_json("paid"))));
    REQUIRE(r.answer);
    CHECK(r.answer->amount == 9900);
    CHECK(r.answer->customer_uid == "cust_1");
    CHECK(r.answer->paid_at == 1732700003);
    CHECK(r.journal.imp_uid == "imp_406540408880");
    REQUIRE(r.journal.code);
    CHECK(*r.journal.code == 0);
    CHECK_FALSE(wire::paid_anomaly(sample_request(), *r.answer));
}

TEST_CASE("a decline journals the fail_reason") {
    const auto r = wire::classify_charge(
        sample_request(), answered(200, envelope_json(0, "null", payment_json("failed"))));
    CHECK(r.journal.message == "한도초과");
    CHECK(r.answer->failed_at == 1732700003);
}

TEST_CASE("transport failures say whether the request left") {
    const auto before = wire::classify_charge(sample_request(), broken(false, "refused"));
    CHECK(before.journal.message.find("not sent") != std::string::npos);
    CHECK(before.journal.http_status == 0);
    const auto after = wire::classify_charge(sample_request(), broken(true, "timeout"));
    CHECK(after.journal.message.find("timeout") != std::string::npos);
    CHECK_FALSE(after.journal.code);
}

TEST_CASE("a paid answer for another amount or customer is an anomaly") {
    auto request = sample_request();
    auto p = wire::parse_payment(payment_json("paid"));
    REQUIRE(p);
    CHECK_FALSE(wire::paid_anomaly(request, *p));
    p->amount = 99000;
    CHECK(wire::paid_anomaly(request, *p));
    p->amount = 9900;
    p->customer_uid = "cust_2";
    CHECK(wire::paid_anomaly(request, *p));
    p->customer_uid = "cust_1";
    p->merchant_uid = "other";
    CHECK(wire::paid_anomaly(request, *p));
    p->merchant_uid = "sub1-p3";
    p->currency = "USD";
    CHECK(wire::paid_anomaly(request, *p));
}

TEST_CASE("the journaled body is bounded and stays valid UTF-8") {
    std::string huge(10000, 'x');
    auto r = wire::classify_charge(sample_request(), answered(502, huge));
    CHECK(r.journal.raw.size() == gw::max_journaled_body);

    std::string korean;
    while (korean.size() < 2 * gw::max_journaled_body) korean += "한";  // 3 bytes each
    r = wire::classify_charge(sample_request(), answered(502, korean));
    CHECK(r.journal.raw.size() <= gw::max_journaled_body);
    CHECK(r.journal.raw.size() % 3 == 0);
    CHECK(r.journal.raw.size() > gw::max_journaled_body - 3);
}

namespace {

gw::payment make_payment(std::string status, std::int64_t failed_at = 0, std::string reason = "") {
    gw::payment p;
    p.imp_uid = "imp_" + status + std::to_string(failed_at);
    p.merchant_uid = "sub1-p3";
    p.status = std::move(status);
    p.amount = 9900;
    p.failed_at = failed_at;
    p.fail_reason = std::move(reason);
    return p;
}

struct reduction_row {
    const char* situation;
    std::vector<gw::payment> payments;
    outcome verdict;
    const char* settled_imp_uid;  // nullptr: nothing settles it
};

}  // namespace

TEST_CASE("findAll records reduce by the reconciliation recipe") {
    const std::vector<reduction_row> rows = {
        {"no records", {}, outcome::not_found, nullptr},
        {"one paid", {make_payment("paid")}, outcome::paid, "imp_paid0"},
        {"paid after failures",
         {make_payment("failed", 10, "a"), make_payment("paid"), make_payment("failed", 20, "b")},
         outcome::paid,
         "imp_paid0"},
        {"paid next to ready",
         {make_payment("ready"), make_payment("paid")},
         outcome::paid,
         "imp_paid0"},
        {"ready only", {make_payment("ready")}, outcome::unknown, nullptr},
        {"ready next to failed",
         {make_payment("failed", 5), make_payment("ready")},
         outcome::unknown,
         nullptr},
        {"unrecognised status", {make_payment("partial_cancelled")}, outcome::unknown, nullptr},
        {"only failed: the latest failure settles it",
         {make_payment("failed", 20, "newest"), make_payment("failed", 10, "older")},
         outcome::declined,
         "imp_failed20"},
        {"only failed, newest last",
         {make_payment("failed", 10, "older"), make_payment("failed", 30, "newest")},
         outcome::declined,
         "imp_failed30"},
        {"cancelled counts as a failure",
         {make_payment("cancelled")},
         outcome::declined,
         "imp_cancelled0"},
    };
    for (const auto& row : rows) {
        CAPTURE(row.situation);
        gw::exchange journal;
        journal.kind = "lookup";
        const auto r = wire::reduce_lookup(journal, row.payments);
        CHECK(r.verdict == row.verdict);
        CHECK(r.journal.result == row.verdict);
        CHECK(r.payments.size() == row.payments.size());
        if (row.settled_imp_uid) {
            REQUIRE(r.settled);
            CHECK(r.settled->imp_uid == row.settled_imp_uid);
            CHECK(r.journal.imp_uid == row.settled_imp_uid);
        } else {
            CHECK_FALSE(r.settled);
        }
    }
}

TEST_CASE("a declined lookup journals the latest fail_reason") {
    gw::exchange journal;
    const auto r = wire::reduce_lookup(
        journal, {make_payment("failed", 10, "older"), make_payment("failed", 30, "newest")});
    CHECK(r.journal.message == "newest");
}

namespace {

struct page_row {
    const char* situation;
    wire::http_answer answer;
    outcome expected;
    std::size_t payments = 0;
};

std::string list_json(const std::vector<std::string>& items, int next = 0) {
    std::string list;
    for (const auto& item : items) list += (list.empty() ? "" : ",") + item;
    return envelope_json(0, "null",
                         R"({"total":)" + std::to_string(items.size()) +
                             R"(,"previous":0,"next":)" + std::to_string(next) + R"(,"list":[)" +
                             list + "]}");
}

}  // namespace

TEST_CASE("findAll pages classify: 404 is not_found, anything unexpected is unknown") {
    const std::vector<page_row> rows = {
        {"two records", answered(200, list_json({payment_json("failed"), payment_json("paid")})),
         outcome::found, 2},
        {"empty list", answered(200, list_json({})), outcome::found, 0},
        {"PortOne's 404",
         answered(404, envelope_json(-1, R"("존재하지 않는 결제정보입니다.")", "null")),
         outcome::not_found},
        {"a bare 404 is not PortOne's answer", answered(404, "<html>Not Found</html>"),
         outcome::unknown},
        {"token rejected after the refresh", answered(401, ""), outcome::config_error},
        {"HTTP 500", answered(500, ""), outcome::unknown},
        {"HTTP 429", answered(429, ""), outcome::unknown},
        {"HTTP 400", answered(400, envelope_json(-1, R"("bad")", "null")), outcome::unknown},
        {"code != 0", answered(200, envelope_json(-1, R"("error")", "null")), outcome::unknown},
        {"non-JSON", answered(200, "garbage"), outcome::unknown},
        {"list missing", answered(200, envelope_json(0, "null", R"({"total":1})")),
         outcome::unknown},
        {"malformed payment", answered(200, list_json({"42"})), outcome::unknown},
        {"not sent", broken(false, "refused"), outcome::unknown},
        {"timeout", broken(true, "timeout"), outcome::unknown},
    };
    for (const auto& row : rows) {
        CAPTURE(row.situation);
        const auto r = wire::classify_find_all_page("GET /payments/findAll/sub1-p3", row.answer);
        CHECK(r.journal.result == row.expected);
        CHECK(r.journal.kind == "lookup");
        CHECK(r.page.has_value() == (row.expected == outcome::found));
        if (r.page) CHECK(r.page->list.size() == row.payments);
    }
}

TEST_CASE("a findAll page reports the next page") {
    const auto r =
        wire::classify_find_all_page("s", answered(200, list_json({payment_json("failed")}, 2)));
    REQUIRE(r.page);
    CHECK(r.page->next == 2);
    CHECK(r.page->total == 1);
    CHECK(r.page->list[0].fail_reason == "한도초과");
}

TEST_CASE("customer lookups: 200+code 0 exists, 404 or code != 0 is not_found") {
    struct row {
        const char* situation;
        wire::http_answer answer;
        outcome expected;
        bool exists;
    };
    const std::vector<row> rows = {
        {"registered",
         answered(200, envelope_json(
                           0, "null",
                           R"({"customer_uid":"cust_1","card_name":"카카오페이",)"
                           R"("card_number":"5365-****-****-1234","pg_provider":"kakaopay"})")),
         outcome::found, true},
        {"404", answered(404, envelope_json(-1, R"("존재하지 않는 구매자입니다")", "null")),
         outcome::not_found, false},
        {"older accounts: 200 with code != 0",
         answered(200, envelope_json(1, R"("등록되지 않은 구매자입니다.")", "null")),
         outcome::not_found, false},
        {"bare 404", answered(404, ""), outcome::unknown, false},
        {"401", answered(401, ""), outcome::config_error, false},
        {"500", answered(500, ""), outcome::unknown, false},
        {"non-JSON", answered(200, "<html>"), outcome::unknown, false},
        {"timeout", broken(true, "timeout"), outcome::unknown, false},
        {"not sent", broken(false, "refused"), outcome::unknown, false},
    };
    for (const auto& r : rows) {
        CAPTURE(r.situation);
        const auto c = wire::classify_customer("GET /subscribe/customers/cust_1", r.answer);
        CHECK(c.journal.result == r.expected);
        CHECK(c.exists == r.exists);
        CHECK(c.journal.kind == "customer");
        if (c.exists) {
            CHECK(c.card_number == "5365-****-****-1234");
            CHECK(c.pg_provider == "kakaopay");
        }
    }
}

TEST_CASE("getToken answers: a token, wrong credentials, or try later") {
    const std::string good = envelope_json(
        0, "null", R"({"access_token":"abc123","now":1732700000,"expired_at":1732701800})");
    struct row {
        const char* situation;
        wire::http_answer answer;
        outcome expected;
    };
    const std::vector<row> rows = {
        {"token", answered(200, good), outcome::found},
        {"wrong credentials", answered(401, envelope_json(-1, R"("Unauthorized")", "null")),
         outcome::config_error},
        {"400", answered(400, ""), outcome::config_error},
        {"500", answered(500, ""), outcome::transient},
        {"429", answered(429, ""), outcome::transient},
        {"non-JSON", answered(200, "xx"), outcome::transient},
        {"no token",
         answered(200, envelope_json(0, "null", R"({"now":1732700000,"expired_at":1732701800})")),
         outcome::transient},
        {"already expired",
         answered(200,
                  envelope_json(0, "null",
                                R"({"access_token":"abc123","now":1732700000,"expired_at":1})")),
         outcome::transient},
        {"not sent", broken(false, "refused"), outcome::transient},
        {"timeout", broken(true, "timeout"), outcome::transient},
    };
    for (const auto& r : rows) {
        CAPTURE(r.situation);
        const auto t = wire::classify_token(r.answer);
        CHECK(t.journal.result == r.expected);
        CHECK(t.token.has_value() == (r.expected == outcome::found));
        CHECK(t.journal.raw.find("abc123") == std::string::npos);
    }
    const auto t = wire::classify_token(answered(200, good));
    CHECK(t.token->access_token == "abc123");
    CHECK(t.token->lifetime() == std::chrono::seconds{1800});
}

TEST_CASE("the charge body holds the required fields and only non-empty optional ones") {
    auto request = sample_request();
    auto body = wire::charge_body(request);
    CHECK(body.find(R"("customer_uid":"cust_1")") != std::string::npos);
    CHECK(body.find(R"("merchant_uid":"sub1-p3")") != std::string::npos);
    CHECK(body.find(R"("amount":9900)") != std::string::npos);
    CHECK(body.find(R"("name":"Monthly plan")") != std::string::npos);
    CHECK(body.find(R"("currency":"KRW")") != std::string::npos);
    CHECK(body.find("buyer_") == std::string::npos);
    CHECK(body.find("custom_data") == std::string::npos);

    request.buyer_email = "a@example.com";
    request.custom_data = R"({"plan":"basic"})";
    request.currency.clear();
    body = wire::charge_body(request);
    CHECK(body.find(R"("buyer_email":"a@example.com")") != std::string::npos);
    CHECK(body.find(R"("custom_data":"{\"plan\":\"basic\"}")") != std::string::npos);
    CHECK(body.find("currency") == std::string::npos);
    CHECK(body.find("buyer_name") == std::string::npos);
}

TEST_CASE("the token body carries the credentials and nothing else journals them") {
    const auto body = wire::token_body("key\"1", "secret");
    CHECK(body == R"({"imp_key":"key\"1","imp_secret":"secret"})");
}

TEST_CASE("path segments are percent-encoded") {
    CHECK(wire::encode_path_segment("sub1-p3_x.y~") == "sub1-p3_x.y~");
    CHECK(wire::encode_path_segment("a/b c?%") == "a%2Fb%20c%3F%25");
    CHECK(wire::encode_path_segment("한") == "%ED%95%9C");
}

TEST_CASE("the envelope parser accepts only an object with an integer code") {
    CHECK(wire::parse_envelope(R"({"code":0,"message":null,"response":{}})"));
    CHECK(wire::parse_envelope(R"({"code":-1,"message":"x","response":null})")->message == "x");
    CHECK_FALSE(wire::parse_envelope(R"({"code":0.5})"));
    CHECK_FALSE(wire::parse_envelope(R"([0])"));
    CHECK_FALSE(wire::parse_envelope("{"));
    CHECK(wire::parse_envelope(R"({"code":0,"response":null})")->response_null);
}

TEST_CASE("every outcome has a name") {
    CHECK(gw::to_string(outcome::invalid_billing_key) == "invalid_billing_key");
    CHECK(gw::to_string(outcome::paid) == "paid");
    CHECK(gw::to_string(outcome::not_found) == "not_found");
    CHECK(gw::to_string(outcome::refused) == "refused");
}

TEST_CASE("an amount beyond int64 is not an answer, and the journal shows what was received") {
    for (const std::string amount : {"9223372036854775808", "18446744073709551615", "1e30"}) {
        CAPTURE(amount);
        std::string body = payment_json("paid");
        body.replace(body.find(R"("amount":9900)"), 13, R"("amount":)" + amount);
        const auto r =
            wire::classify_charge(sample_request(), answered(200, envelope_json(0, "null", body)));
        CHECK(r.journal.result == outcome::unknown);
        CHECK_FALSE(r.answer);
        CHECK(r.journal.message.find("(amount ") != std::string::npos);
        CHECK(r.journal.message.find(amount.substr(0, 2)) != std::string::npos);
        CHECK(r.journal.message.find("-922") == std::string::npos);  // never wrapped
    }
}

TEST_CASE("a decline with a non-UTF-8 (EUC-KR) fail_reason is a decline, its bytes escaped") {
    std::string body = payment_json("failed");
    // 한도초과 in EUC-KR: not UTF-8, as some PGs pass their messages through.
    body.replace(body.find("한도초과"), std::string{"한도초과"}.size(),
                 "\xC7\xD1\xB5\xB5\xC3\xCA\xB0\xFA");
    const auto r =
        wire::classify_charge(sample_request(), answered(200, envelope_json(0, "null", body)));
    CHECK(r.journal.result == outcome::declined);
    REQUIRE(r.answer);
    CHECK(r.answer->fail_reason == "\\xC7\\xD1\\xB5\\xB5\\xC3\\xCA\\xB0\\xFA");
}

TEST_CASE("an access token must be an RFC 6750 b64token") {
    CHECK(wire::is_b64token("a1b2c3d4e5"));
    CHECK(wire::is_b64token("abc-._~+/=="));
    CHECK_FALSE(wire::is_b64token(""));
    CHECK_FALSE(wire::is_b64token("=abc"));
    CHECK_FALSE(wire::is_b64token("abc=d"));
    CHECK_FALSE(wire::is_b64token("tok\r\nX-Injected: 1"));
    CHECK_FALSE(wire::is_b64token("tok en"));
    wire::http_answer a = answered(
        200, R"({"code":0,"message":null,"response":{"access_token":"tok\r\nX: 1","now":1,)"
             R"("expired_at":1801}})");
    const auto t = wire::classify_token(a);
    CHECK(t.journal.result == outcome::config_error);
    CHECK_FALSE(t.token);
}
