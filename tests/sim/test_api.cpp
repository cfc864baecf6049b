// The simulated PortOne V1 endpoints: tokens, charges, lookups, billing keys.
#include <doctest/doctest.h>

#include "fixture.hpp"

using namespace sim_test;
using portone_sim::sim_config;

namespace {

simulator make_sim(sim_config config = {}) {
    simulator sim(std::move(config));
    sim.customers().add_prefix_arg("pay-=pay");
    sim.customers().add_prefix_arg("decline-=decline:한도초과");
    sim.customers().add_prefix_arg("flaky2-=decline_first:2");
    sim.customers().add_prefix_arg("cap-=cap:2");
    return sim;
}

}  // namespace

TEST_CASE("getToken returns the same token while valid and extends it in its last minute") {
    auto sim = make_sim();
    auto first = send(sim, "POST", "/users/getToken",
                      R"({"imp_key":"sim_key","imp_secret":"sim_secret"})", t0);
    REQUIRE(first.status == 200);
    CHECK(first.body["code"] == 0);
    CHECK(first.body["message"].is_null());
    const auto& r = first.body["response"];
    CHECK(r["now"] == t0 / 1000);
    CHECK(r["expired_at"] == t0 / 1000 + 1800);

    auto again =
        send(sim, "POST", "/users/getToken", "imp_key=sim_key&imp_secret=sim_secret", t0 + 60'000);
    CHECK(again.body["response"]["access_token"] == r["access_token"]);
    CHECK(again.body["response"]["expired_at"] == t0 / 1000 + 1800);

    auto late = send(sim, "POST", "/users/getToken",
                     R"({"imp_key":"sim_key","imp_secret":"sim_secret"})", t0 + 1750'000);
    CHECK(late.body["response"]["access_token"] == r["access_token"]);
    CHECK(late.body["response"]["expired_at"] == t0 / 1000 + 1800 + 300);
}

TEST_CASE("wrong credentials and missing or expired tokens get HTTP 401") {
    auto sim = make_sim();
    CHECK(send(sim, "POST", "/users/getToken", R"({"imp_key":"sim_key","imp_secret":"x"})", t0)
              .status == 401);
    CHECK(send(sim, "GET", "/payments/imp_1", "", t0).status == 401);
    const auto tok = token(sim, t0);
    CHECK(send(sim, "GET", "/payments/imp_1", "", t0, tok).status == 404);
    CHECK(send(sim, "GET", "/payments/imp_1", "", t0 + 1800'000, tok).status == 401);
    const auto fresh = token(sim, t0 + 1800'000);
    CHECK(fresh != tok);
}

TEST_CASE("a token is accepted as Bearer, bare, or in X-ImpTokenHeader") {
    auto sim = make_sim();
    const auto tok = token(sim, t0);
    http_request r{"GET", "/payments/imp_000000000001", "", "", "", ""};
    r.authorization = tok;
    CHECK(sim.serve(r, t0).response.status == 404);
    r.authorization.clear();
    r.imp_token_header = tok;
    CHECK(sim.serve(r, t0).response.status == 404);
    r.imp_token_header = "nope";
    CHECK(sim.serve(r, t0).response.status == 401);
}

TEST_CASE("an approved charge returns a paid KakaoPay payment object") {
    auto sim = make_sim();
    auto a = charge(sim, "pay-1", "sub1-2024-11", t0, 12000);
    REQUIRE(a.status == 200);
    CHECK(a.body["code"] == 0);
    const auto& p = a.body["response"];
    CHECK(p["status"] == "paid");
    CHECK(p["paid_at"] == t0 / 1000);
    CHECK(p["failed_at"] == 0);
    CHECK(p["amount"] == 12000);
    CHECK(p["customer_uid"] == "pay-1");
    CHECK(p["merchant_uid"] == "sub1-2024-11");
    CHECK(p["pg_provider"] == "kakaopay");
    CHECK(p["channel"] == "api");
    CHECK(p["customer_uid_usage"] == "payment");
    CHECK(p["pay_method"] == "card");
    CHECK(p["currency"] == "KRW");
    const auto imp = p["imp_uid"].get<std::string>();
    CHECK(imp.size() == 16);
    CHECK(imp.rfind("imp_", 0) == 0);
    CHECK(imp.find_first_not_of("0123456789", 4) == std::string::npos);
}

TEST_CASE("invalid charge parameters get HTTP 400 with a non-zero code and nothing is recorded") {
    auto sim = make_sim();
    const auto tok = token(sim, t0);
    const std::string long_merchant(41, 'm');
    const std::string long_customer(81, 'c');
    const json cases[] = {
        {{"merchant_uid", "m"}, {"amount", 100}, {"name", "n"}},
        {{"customer_uid", "pay-1"}, {"amount", 100}, {"name", "n"}},
        {{"customer_uid", "pay-1"}, {"merchant_uid", "m"}, {"name", "n"}},
        {{"customer_uid", "pay-1"}, {"merchant_uid", "m"}, {"amount", 100}},
        {{"customer_uid", "pay-1"}, {"merchant_uid", "m"}, {"amount", 0}, {"name", "n"}},
        {{"customer_uid", "pay-1"}, {"merchant_uid", "m"}, {"amount", -5}, {"name", "n"}},
        {{"customer_uid", "pay-1"}, {"merchant_uid", "m"}, {"amount", "100"}, {"name", "n"}},
        {{"customer_uid", "pay-1"}, {"merchant_uid", long_merchant}, {"amount", 1}, {"name", "n"}},
        {{"customer_uid", long_customer}, {"merchant_uid", "m"}, {"amount", 1}, {"name", "n"}},
    };
    for (const auto& body : cases) {
        auto a = send(sim, "POST", "/subscribe/payments/again", body.dump(), t0, tok);
        CAPTURE(body.dump());
        CHECK(a.status == 400);
        CHECK(a.body["code"] != 0);
        CHECK(a.body["message"].is_string());
        CHECK(a.body["response"].is_null());
    }
    CHECK(send(sim, "POST", "/subscribe/payments/again", "{not json", t0, tok).status == 400);
    CHECK(sim.payments().all().empty());
}

TEST_CASE("an unknown customer gets code 1 (or the configured -1) and nothing is recorded") {
    auto sim = make_sim();
    auto a = charge(sim, "nobody", "m1", t0);
    CHECK(a.status == 200);
    CHECK(a.body["code"] == 1);
    CHECK(a.body["message"] == "등록되지 않은 구매자입니다.");
    CHECK(a.body["response"].is_null());
    CHECK(sim.payments().all().empty());

    sim_config config;
    config.unknown_customer_code = -1;
    auto other = make_sim(config);
    CHECK(charge(other, "nobody", "m1", t0).body["code"] == -1);
}

TEST_CASE("a merchant_uid that is already paid is refused with the duplicate message") {
    auto sim = make_sim();
    REQUIRE(charge(sim, "pay-1", "m1", t0).body["response"]["status"] == "paid");
    auto dup = charge(sim, "pay-1", "m1", t0 + 1000);
    CHECK(dup.status == 200);
    CHECK(dup.body["code"] == 1);
    CHECK(
        dup.body["message"] ==
        "이미 주문이 이루어진 건입니다. (동일한 merchant_uid로 결제 또는 취소된 기록이 있습니다)");
    CHECK(dup.body["response"].is_null());
    CHECK(sim.payments().all().size() == 1);
}

TEST_CASE("a failed merchant_uid may be charged again and gets a new imp_uid") {
    auto sim = make_sim();
    auto first = charge(sim, "flaky2-a", "m1", t0);
    CHECK(first.body["code"] == 0);
    CHECK(first.body["response"]["status"] == "failed");
    CHECK(first.body["response"]["failed_at"] == t0 / 1000);
    CHECK(first.body["response"]["paid_at"] == 0);
    CHECK(first.body["response"]["fail_reason"].is_string());
    auto second = charge(sim, "flaky2-a", "m1", t0 + 1000);
    CHECK(second.body["response"]["status"] == "failed");
    auto third = charge(sim, "flaky2-a", "m1", t0 + 2000);
    CHECK(third.body["response"]["status"] == "paid");
    CHECK(third.body["response"]["imp_uid"] != first.body["response"]["imp_uid"]);
    CHECK(sim.payments().all().size() == 3);
    CHECK(charge(sim, "flaky2-a", "m1", t0 + 3000).body["code"] == 1);

    auto found = get(sim, "/payments/find/m1", t0 + 4000);
    CHECK(found.body["response"]["imp_uid"] == third.body["response"]["imp_uid"]);
    auto failed = get(sim, "/payments/find/m1/failed", t0 + 4000);
    CHECK(failed.body["response"]["imp_uid"] == second.body["response"]["imp_uid"]);
    auto all = get(sim, "/payments/findAll/m1?limit=2&page=1", t0 + 4000);
    CHECK(all.body["response"]["total"] == 3);
    CHECK(all.body["response"]["next"] == 2);
    CHECK(all.body["response"]["list"].size() == 2);
    CHECK(all.body["response"]["list"][0]["imp_uid"] == third.body["response"]["imp_uid"]);
    auto page2 = get(sim, "/payments/findAll/m1?limit=2&page=2", t0 + 4000);
    CHECK(page2.body["response"]["previous"] == 1);
    CHECK(page2.body["response"]["next"] == 0);
    CHECK(page2.body["response"]["list"].size() == 1);
    CHECK(get(sim, "/payments/findAll/m1?limit=1001", t0).status == 400);
}

TEST_CASE("decline answers code 0 with status failed and the configured reason") {
    auto sim = make_sim();
    auto a = charge(sim, "decline-1", "m1", t0);
    CHECK(a.body["code"] == 0);
    CHECK(a.body["response"]["status"] == "failed");
    CHECK(a.body["response"]["fail_reason"] == "한도초과");
}

TEST_CASE("cap:N allows N paid charges per Seoul calendar month, then declines") {
    auto sim = make_sim();
    // 2024-11-30 15:30 UTC is already 2024-12-01 00:30 in Seoul.
    const std::int64_t nov = 1732700000000, dec = 1732980600000;
    CHECK(charge(sim, "cap-1", "a", nov).body["response"]["status"] == "paid");
    CHECK(charge(sim, "cap-1", "b", nov).body["response"]["status"] == "paid");
    auto third = charge(sim, "cap-1", "c", nov);
    CHECK(third.body["response"]["status"] == "failed");
    CHECK(third.body["response"]["fail_reason"] == std::string(portone_sim::cap_decline_reason));
    CHECK(charge(sim, "cap-2", "d", nov).body["response"]["status"] == "paid");
    CHECK(charge(sim, "cap-1", "c", dec).body["response"]["status"] == "paid");
}

TEST_CASE("lookups of unknown payments answer 404 with the documented body") {
    auto sim = make_sim();
    for (const char* target :
         {"/payments/find/none", "/payments/findAll/none", "/payments/imp_123456789012"}) {
        auto a = get(sim, target, t0);
        CAPTURE(target);
        CHECK(a.status == 404);
        CHECK(a.body ==
              json::parse(
                  R"({"code":-1,"message":"존재하지 않는 결제정보입니다.","response":null})"));
    }
}

TEST_CASE("a charge is ready during the PG latency and settled on completion") {
    auto sim = make_sim();
    const auto tok = token(sim, t0);
    http_request r{
        "POST", "/subscribe/payments/again", charge_body("pay-1", "m1").dump(), "", "Bearer " + tok,
        ""};
    auto planned = sim.handle(r, t0);
    CHECK(sim.payments().all().at(0).status == "ready");
    auto during = get(sim, "/payments/find/m1", t0 + 10);
    CHECK(during.body["response"]["status"] == "ready");
    auto done = to_answer(sim.complete(std::move(planned), t0 + 50));
    CHECK(done.body["response"]["status"] == "paid");
    CHECK(get(sim, "/payments/" + done.body["response"]["imp_uid"].get<std::string>(), t0 + 60)
              .body["response"]["status"] == "paid");
}

TEST_CASE("billing keys: lookup, masked card, delete, then unregistered") {
    auto sim = make_sim();
    auto a = get(sim, "/subscribe/customers/pay-7", t0);
    REQUIRE(a.status == 200);
    const auto& c = a.body["response"];
    CHECK(c["customer_uid"] == "pay-7");
    CHECK(c["pg_provider"] == "kakaopay");
    CHECK(c["card_name"].is_string());
    CHECK(c["card_number"].get<std::string>().find("******") != std::string::npos);
    CHECK(c["inserted"] == t0 / 1000);
    auto missing = get(sim, "/subscribe/customers/nobody", t0);
    CHECK(missing.status == 404);
    CHECK(missing.body["code"] == -1);
    CHECK(missing.body["response"].is_null());

    const auto tok = token(sim, t0);
    CHECK(send(sim, "DELETE", "/subscribe/customers/pay-7", "", t0, tok).status == 200);
    CHECK(get(sim, "/subscribe/customers/pay-7", t0).status == 404);
    CHECK(charge(sim, "pay-7", "m9", t0).body["message"] == "등록되지 않은 구매자입니다.");
    CHECK(send(sim, "DELETE", "/subscribe/customers/pay-7", "", t0, tok).status == 404);
}
