// The refund side of the PortOne V1 wire layer: cancel answers, payment lookups and pages of
// cancelled payments, cancel_history wherever a payment is read, and the cancel body checked
// against PortOne's published parameters (portone-v1-spec.json, a copy of PortOne's V1 OpenAPI
// file reduced to parameters and payment fields).
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gateway/wire.hpp"

namespace gw = billingd::gateway;
namespace wire = billingd::gateway::wire;
using gw::outcome;
using nlohmann::json;

namespace {

constexpr const char* imp = "imp_406540408880";

// A 9900 KRW payment of `imp` with `cancel_amount` cancelled, as PortOne reports it.
json payment(std::int64_t cancel_amount, const std::string& status = "paid") {
    json p = {{"imp_uid", imp},
              {"merchant_uid", "sub1-p3"},
              {"customer_uid", "cust_1"},
              {"amount", 9900},
              {"cancel_amount", cancel_amount},
              {"currency", "KRW"},
              {"status", status},
              {"started_at", 1732700000},
              {"paid_at", 1732700003},
              {"failed_at", 0},
              {"cancelled_at", cancel_amount > 0 ? 1732800000 : 0},
              {"fail_reason", nullptr},
              {"pg_provider", "kakaopay"},
              {"pg_tid", "T123"},
              {"sandbox", false},
              {"cancel_history", json::array()}};
    if (cancel_amount > 0)
        p["cancel_history"].push_back({{"pg_tid", "T123"},
                                       {"amount", cancel_amount},
                                       {"cancelled_at", 1732800000},
                                       {"reason", "환불 요청"},
                                       {"cancellation_id", "C1"},
                                       {"receipt_url", "https://example/c1"}});
    return p;
}

std::string envelope(int code, const json& message, const json& response) {
    return json{{"code", code}, {"message", message}, {"response", response}}.dump();
}

wire::http_answer answered(int status, std::string body) {
    wire::http_answer a;
    a.request_written = true;
    a.http_status = status;
    a.body = std::move(body);
    return a;
}

wire::http_answer broken(bool written, bool tls = false) {
    wire::http_answer a;
    a.request_written = written;
    a.transport_error = tls ? "certificate verify failed" : "timed out after 60000 ms";
    a.tls_verify_failed = tls;
    return a;
}

// Refund 3000 of a payment nothing of which was refunded yet.
gw::cancel_request cancel_of(std::int64_t amount = 3000, std::int64_t checksum = 9900) {
    gw::cancel_request r;
    r.imp_uid = imp;
    r.amount = amount;
    r.checksum = checksum;
    r.reason = "환불 요청";
    return r;
}

json spec() {
    std::ifstream in(PORTONE_V1_SPEC);
    REQUIRE(in);
    return json::parse(in);
}

// A value of the type the spec declares.
json sample_of(const json& property) {
    const auto type = property.value("type", "string");
    if (type == "number") return 1000;
    if (type == "integer") return 1732800000;
    if (type == "boolean") return true;
    if (type == "array") return json::array({"x"});
    if (type == "object") return json::object({{"x", 1}});
    return "x";
}

}  // namespace

TEST_CASE("every cancel answer classifies as documented") {
    const std::string html = "<html><body>502 Bad Gateway</body></html>";
    const std::string refusal =
        envelope(1, "[checksum] 취소가능금액이 일치하지 않습니다.", nullptr);
    struct row {
        const char* situation;
        gw::cancel_request request;
        wire::http_answer answer;
        outcome expected;
        bool carries_payment;
    };
    auto other = payment(3000);
    other["imp_uid"] = "imp_1";
    auto fractional = payment(3000);
    fractional["cancel_amount"] = 3000.5;
    auto bad_history = payment(3000);
    bad_history["cancel_history"] = "none";
    auto more = payment(9900, "cancelled");  // a console refund right after ours
    const row rows[] = {
        {"applied, partial", cancel_of(), answered(200, envelope(0, nullptr, payment(3000))),
         outcome::found, true},
        {"applied, the rest", cancel_of(6900, 6900),
         answered(200, envelope(0, nullptr, payment(9900, "cancelled"))), outcome::found, true},
        {"applied, partial reads cancelled (inferred)", cancel_of(),
         answered(200, envelope(0, nullptr, payment(3000, "cancelled"))), outcome::found, true},
        {"applied, and more was refunded since", cancel_of(),
         answered(200, envelope(0, nullptr, more)), outcome::found, true},
        {"code 0 without the cancel", cancel_of(), answered(200, envelope(0, nullptr, payment(0))),
         outcome::unknown, true},
        {"code 0, cancel_amount below what the checksum implies", cancel_of(3000, 7900),
         answered(200, envelope(0, nullptr, payment(3000))), outcome::unknown, true},
        {"code 0 for another imp_uid", cancel_of(), answered(200, envelope(0, nullptr, other)),
         outcome::unknown, true},
        {"code 0, status ready", cancel_of(),
         answered(200, envelope(0, nullptr, payment(3000, "ready"))), outcome::unknown, true},
        {"code 0, fractional cancel_amount", cancel_of(),
         answered(200, envelope(0, nullptr, fractional)), outcome::unknown, false},
        {"code 0, cancel_history not an array", cancel_of(),
         answered(200, envelope(0, nullptr, bad_history)), outcome::unknown, false},
        {"code 0, response null", cancel_of(), answered(200, envelope(0, nullptr, nullptr)),
         outcome::unknown, false},
        {"refused as HTTP 200", cancel_of(), answered(200, refusal), outcome::refused, false},
        {"refused as HTTP 400", cancel_of(), answered(400, refusal), outcome::refused, false},
        {"refused as HTTP 403", cancel_of(), answered(403, refusal), outcome::refused, false},
        {"refused with a payment", cancel_of(),
         answered(200, envelope(-1, "이미 전액취소된 주문입니다.", payment(9900, "cancelled"))),
         outcome::refused, false},
        {"unknown imp_uid", cancel_of(),
         answered(404, envelope(-1, "존재하지 않는 결제정보입니다.", nullptr)), outcome::not_found,
         false},
        {"404 without an envelope", cancel_of(), answered(404, "Not Found"), outcome::config_error,
         false},
        {"401 after the token layer's retry", cancel_of(), answered(401, ""), outcome::config_error,
         false},
        {"redirect", cancel_of(), answered(302, ""), outcome::config_error, false},
        {"429", cancel_of(), answered(429, ""), outcome::transient, false},
        {"500 page", cancel_of(), answered(500, html), outcome::unknown, false},
        {"503 with an envelope", cancel_of(), answered(503, refusal), outcome::unknown, false},
        {"200 page", cancel_of(), answered(200, html), outcome::unknown, false},
        {"200 JSON without an envelope", cancel_of(), answered(200, R"({"ok":true})"),
         outcome::unknown, false},
        {"400 page", cancel_of(), answered(400, html), outcome::unknown, false},
        {"400 with code 0", cancel_of(), answered(400, envelope(0, nullptr, payment(3000))),
         outcome::unknown, false},
        {"not written", cancel_of(), broken(false), outcome::transient, false},
        {"written, then timed out", cancel_of(), broken(true), outcome::unknown, false},
        {"certificate refused", cancel_of(), broken(false, true), outcome::config_error, false},
    };
    for (const auto& r : rows) {
        CAPTURE(r.situation);
        const auto got = wire::classify_cancel(r.request, r.answer);
        CHECK(got.journal.result == r.expected);
        CHECK(got.journal.kind == "cancel");
        CHECK(got.journal.imp_uid == imp);  // the payment asked about, whatever the answer says
        CHECK(got.answer.has_value() == r.carries_payment);
        CHECK(got.journal.request_written == r.answer.request_written);
        CHECK(got.journal.http_status == r.answer.http_status);
        if (r.expected != outcome::found) CHECK_FALSE(got.journal.message.empty());
    }
}

TEST_CASE("an applied cancel carries the payment after it, with its cancel_history") {
    const auto got =
        wire::classify_cancel(cancel_of(), answered(200, envelope(0, nullptr, payment(3000))));
    REQUIRE(got.journal.result == outcome::found);
    CHECK(got.journal.code == 0);
    REQUIRE(got.answer);
    CHECK(got.answer->cancel_amount == 3000);
    CHECK(got.answer->cancelled_at == 1732800000);
    REQUIRE(got.answer->cancel_history.size() == 1);
    const auto& c = got.answer->cancel_history[0];
    CHECK(c.pg_tid == "T123");
    CHECK(c.amount == 3000);
    CHECK(c.cancelled_at == 1732800000);
    CHECK(c.reason == "환불 요청");
    CHECK(c.cancellation_id == "C1");
    CHECK(c.receipt_url == "https://example/c1");
}

TEST_CASE("the cancel journal names the endpoint, imp_uid, amount and checksum; raw is bounded") {
    auto request = cancel_of();
    request.reason = "a reason nobody needs in the journal";
    const auto huge = envelope(1, std::string(20000, 'x'), nullptr);
    const auto got = wire::classify_cancel(request, answered(200, huge));
    CHECK(got.journal.request_summary ==
          "POST /payments/cancel imp_uid=imp_406540408880 amount=3000 checksum=9900");
    CHECK(got.journal.raw.size() == gw::max_journaled_body);
    CHECK(got.journal.result == outcome::refused);
    CHECK(got.journal.code == 1);
}

TEST_CASE("the cancel body sends only parameters the spec declares, as their declared types") {
    const auto declared = spec()["endpoints"]["POST /payments/cancel"]["parameters"];
    for (auto request : {cancel_of(), cancel_of(9900, 9900)}) {
        const auto body = json::parse(wire::cancel_body(request));
        REQUIRE(body.is_object());
        CHECK(body["imp_uid"] == imp);
        CHECK(body["amount"] == request.amount);
        CHECK(body["checksum"] == request.checksum);
        CHECK(body["reason"] == "환불 요청");
        for (const auto& [key, value] : body.items()) {
            CAPTURE(key);
            const auto it = std::find_if(declared.begin(), declared.end(),
                                         [&](const json& p) { return p["name"] == key; });
            REQUIRE(it != declared.end());
            const auto type = (*it)["type"].get<std::string>();
            if (type == "number") CHECK(value.is_number_integer());
            if (type == "string") CHECK(value.is_string());
            if (it->contains("maxLength"))
                CHECK(value.get<std::string>().size() <= (*it)["maxLength"].get<std::size_t>());
        }
    }
    auto no_reason = cancel_of();
    no_reason.reason.clear();
    CHECK_FALSE(json::parse(wire::cancel_body(no_reason)).contains("reason"));
}

TEST_CASE("a payment carrying every field the spec declares is read wherever payments are") {
    const auto definitions = spec()["definitions"];
    json p = json::object();
    for (const auto& [name, property] : definitions["PaymentAnnotation"]["properties"].items())
        p[name] = sample_of(property);
    json entry = json::object();
    for (const auto& [name, property] :
         definitions["PaymentCancelAnnotation"]["properties"].items())
        entry[name] = sample_of(property);
    p["cancel_history"] = json::array({entry, entry});
    p["imp_uid"] = imp;
    p["status"] = "paid";
    p["amount"] = 9900;
    p["cancel_amount"] = 3000;

    auto check = [&](const gw::payment& got) {
        CHECK(got.imp_uid == imp);
        CHECK(got.amount == 9900);
        CHECK(got.cancel_amount == 3000);
        CHECK(got.cancelled_at == 1732800000);
        CHECK(got.pg_tid == "x");
        REQUIRE(got.cancel_history.size() == 2);
        CHECK(got.cancel_history[1].amount == 1000);
        CHECK(got.cancel_history[1].cancelled_at == 1732800000);
        CHECK(got.cancel_history[1].cancellation_id == "x");
        CHECK(got.cancel_history[1].receipt_url == "x");
    };
    const auto body = envelope(0, nullptr, p);
    const auto looked_up =
        wire::classify_payment(imp, "GET /payments/" + std::string(imp), answered(200, body));
    REQUIRE(looked_up.journal.result == outcome::found);
    check(*looked_up.found);
    const auto cancelled = wire::classify_cancel(cancel_of(), answered(200, body));
    REQUIRE(cancelled.journal.result == outcome::found);
    check(*cancelled.answer);
    const auto page = wire::classify_cancelled_page(
        1, "GET /payments/status/cancelled",
        answered(200, envelope(0, nullptr,
                               {{"total", 1}, {"previous", 0}, {"next", 0}, {"list", {p}}})));
    REQUIRE(page.journal.result == outcome::found);
    check(page.list.at(0));
    const auto parsed = wire::parse_payment(p.dump());
    REQUIRE(parsed);
    check(*parsed);
}

TEST_CASE("a charge answer with a cancel_history still classifies, and keeps the history") {
    gw::charge_request request;
    request.customer_uid = "cust_1";
    request.merchant_uid = "sub1-p3";
    request.amount = 9900;
    request.name = "Monthly plan";
    auto p = payment(3000);
    // Whatever PortOne nests inside an entry is skipped, not misread.
    p["cancel_history"][0]["extra"] = {{"deep", json::array({json::array({1, {{"a", "b"}}})})}};
    p["cancel_history"].push_back({{"amount", 100}, {"cancelled_at", 1732900000}});
    p["promotion"] = {{"cancel_history", "not this one"}};
    const auto got = wire::classify_charge(request, answered(200, envelope(0, nullptr, p)));
    CHECK(got.journal.result == outcome::paid);
    REQUIRE(got.answer);
    REQUIRE(got.answer->cancel_history.size() == 2);
    CHECK(got.answer->cancel_history[0].reason == "환불 요청");
    CHECK(got.answer->cancel_history[0].amount == 3000);
    CHECK(got.answer->cancel_history[1].amount == 100);
    CHECK(got.answer->cancel_history[1].pg_tid.empty());

    // A cancel_history that breaks the JSON grammar breaks the answer.
    auto text = envelope(0, nullptr, payment(3000));
    text.insert(text.find("\"cancel_history\":[") + 18, "[");
    CHECK(wire::classify_charge(request, answered(200, text)).journal.result == outcome::unknown);
    // Null reads as no cancels.
    p["cancel_history"] = nullptr;
    const auto none = wire::classify_charge(request, answered(200, envelope(0, nullptr, p)));
    CHECK(none.journal.result == outcome::paid);
    CHECK(none.answer->cancel_history.empty());
}

TEST_CASE("payment lookups: found for this imp_uid, 404 with an envelope is not_found") {
    const std::string summary = "GET /payments/imp_406540408880";
    auto other = payment(0);
    other["imp_uid"] = "imp_1";
    struct row {
        const char* situation;
        wire::http_answer answer;
        outcome expected;
    };
    const row rows[] = {
        {"found", answered(200, envelope(0, nullptr, payment(3000))), outcome::found},
        {"unknown imp_uid", answered(404, envelope(-1, "존재하지 않는 결제정보입니다.", nullptr)),
         outcome::not_found},
        {"bare 404", answered(404, "Not Found"), outcome::unknown},
        {"another payment", answered(200, envelope(0, nullptr, other)), outcome::unknown},
        {"code != 0", answered(200, envelope(1, "?", nullptr)), outcome::unknown},
        {"non-JSON", answered(200, "<html>"), outcome::unknown},
        {"500", answered(500, ""), outcome::unknown},
        {"401", answered(401, ""), outcome::config_error},
        {"429", answered(429, ""), outcome::transient},
        {"not written", broken(false), outcome::transient},
        {"written, then timed out", broken(true), outcome::unknown},
        {"certificate refused", broken(false, true), outcome::config_error},
    };
    for (const auto& r : rows) {
        CAPTURE(r.situation);
        const auto got = wire::classify_payment(imp, summary, r.answer);
        CHECK(got.journal.result == r.expected);
        CHECK(got.journal.kind == "payment");
        CHECK(got.journal.request_summary == summary);
        CHECK(got.journal.imp_uid == imp);
        CHECK(got.found.has_value() == (r.expected == outcome::found));
    }
}

TEST_CASE("pages of cancelled payments: a list, total and next; anything else is not found") {
    const auto list = [](json next, json items) {
        return envelope(0, nullptr,
                        {{"total", 3}, {"previous", 0}, {"next", next}, {"list", items}});
    };
    const json two = json::array({payment(9900, "cancelled"), payment(9900, "cancelled")});
    struct row {
        const char* situation;
        std::int64_t page;
        wire::http_answer answer;
        outcome expected;
        std::int64_t next;
        std::size_t size;
    };
    const row rows[] = {
        {"first of two pages", 1, answered(200, list(2, two)), outcome::found, 2, 2},
        {"last page", 2, answered(200, list(0, json::array({payment(9900, "cancelled")}))),
         outcome::found, 0, 1},
        {"nothing cancelled", 1, answered(200, list(0, json::array())), outcome::found, 0, 0},
        {"next does not advance", 2, answered(200, list(2, two)), outcome::unknown, 0, 0},
        {"list missing", 1,
         answered(200, envelope(0, nullptr, {{"total", 3}, {"previous", 0}, {"next", 0}})),
         outcome::unknown, 0, 0},
        {"malformed payment", 1, answered(200, list(0, json::array({"x"}))), outcome::unknown, 0,
         0},
        {"window over 90 days", 1, answered(400, envelope(-1, "조회 기간은 최대 90일", nullptr)),
         outcome::config_error, 0, 0},
        {"404", 1, answered(404, envelope(-1, "없음", nullptr)), outcome::unknown, 0, 0},
        {"code != 0", 1, answered(200, envelope(1, "?", nullptr)), outcome::unknown, 0, 0},
        {"401", 1, answered(401, ""), outcome::config_error, 0, 0},
        {"429", 1, answered(429, ""), outcome::transient, 0, 0},
        {"503", 1, answered(503, ""), outcome::unknown, 0, 0},
        {"not written", 1, broken(false), outcome::transient, 0, 0},
        {"written, then timed out", 1, broken(true), outcome::unknown, 0, 0},
    };
    for (const auto& r : rows) {
        CAPTURE(r.situation);
        const auto got =
            wire::classify_cancelled_page(r.page, "GET /payments/status/cancelled", r.answer);
        CHECK(got.journal.result == r.expected);
        CHECK(got.journal.kind == "cancelled_list");
        CHECK(got.next == r.next);
        CHECK(got.list.size() == r.size);
        if (r.expected == outcome::found) CHECK(got.total == 3);
    }
}

TEST_CASE("an envelope code beyond int64 is no envelope: never a wrapped code, never refused") {
    const std::string body = R"({"code":9223372036854775808,"message":"?","response":null})";
    const auto cancelled = wire::classify_cancel(cancel_of(), answered(200, body));
    CHECK(cancelled.journal.result == outcome::unknown);
    CHECK_FALSE(cancelled.journal.code);
    const auto looked = wire::classify_payment(imp, "GET", answered(404, body));
    CHECK(looked.journal.result == outcome::unknown);
    CHECK_FALSE(looked.journal.code);
}
