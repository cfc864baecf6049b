// Cancels (refunds): POST /payments/cancel, console refunds, GET /payments/{imp_uid} and
// GET /payments/status/cancelled, both inferred modes, cancel faults and the imp_uid counter.
#include <doctest/doctest.h>

#include "fixture.hpp"

using namespace sim_test;
using portone_sim::parse_fault;
using portone_sim::sim_config;
using portone_sim::transport_action;

namespace {

constexpr std::int64_t day_ms = 86400 * 1000LL;

simulator make_sim(sim_config config = {}) {
    simulator sim(std::move(config));
    sim.customers().add_prefix_arg("pay-=pay");
    sim.customers().add_prefix_arg("decline-=decline");
    return sim;
}

void set_faults(simulator& sim, std::vector<std::string> specs) {
    std::vector<portone_sim::fault_spec> faults;
    for (const auto& s : specs) faults.push_back(parse_fault(s));
    sim.faults().replace(std::move(faults));
}

// A paid 9900 KRW charge; returns its imp_uid.
std::string paid(simulator& sim, const std::string& merchant_uid, std::int64_t now = t0) {
    auto a = charge(sim, "pay-1", merchant_uid, now);
    REQUIRE(a.body["response"]["status"] == "paid");
    return a.body["response"]["imp_uid"].get<std::string>();
}

answer cancel(simulator& sim, const json& body, std::int64_t now) {
    const auto tok = token(sim, now);
    return send(sim, "POST", "/payments/cancel", body.dump(), now, tok);
}

http_request cancel_request(simulator& sim, const json& body, std::int64_t now) {
    return {"POST", "/payments/cancel", body.dump(), "", "Bearer " + token(sim, now), ""};
}

json payment(simulator& sim, const std::string& imp_uid, std::int64_t now) {
    return get(sim, "/payments/" + imp_uid, now).body["response"];
}

json imp_requests(simulator& sim, const std::string& imp_uid) {
    return send(sim, "GET", "/__sim/requests?imp_uid=" + imp_uid, "", t0).body["imp_uids"][imp_uid];
}

}  // namespace

TEST_CASE("a partial cancel keeps the payment paid and records it; the rest cancels it") {
    auto sim = make_sim();
    const auto imp = paid(sim, "m1");
    auto a = cancel(sim, {{"imp_uid", imp}, {"amount", 3000}, {"checksum", 9900}, {"reason", "r1"}},
                    t0 + 5000);
    REQUIRE(a.status == 200);
    CHECK(a.body["code"] == 0);
    auto p = a.body["response"];
    CHECK(p["status"] == "paid");
    CHECK(p["cancel_amount"] == 3000);
    CHECK(p["cancelled_at"] == (t0 + 5000) / 1000);
    CHECK(p["cancel_reason"] == "r1");
    REQUIRE(p["cancel_history"].size() == 1);
    const auto first = p["cancel_history"][0];
    CHECK(first["amount"] == 3000);
    CHECK(first["cancelled_at"] == (t0 + 5000) / 1000);
    CHECK(first["reason"] == "r1");
    CHECK(first["pg_tid"] == p["pg_tid"]);
    CHECK_FALSE(first["cancellation_id"].get<std::string>().empty());
    CHECK_FALSE(first["receipt_url"].get<std::string>().empty());
    CHECK(p["cancel_receipt_urls"] == json{first["receipt_url"]});
    CHECK(payment(sim, imp, t0 + 6000) == p);

    // No amount: everything still cancellable.
    a = cancel(sim, {{"imp_uid", imp}, {"checksum", 6900}, {"reason", "r2"}}, t0 + 9000);
    REQUIRE(a.status == 200);
    p = a.body["response"];
    CHECK(p["status"] == "cancelled");
    CHECK(p["cancel_amount"] == 9900);
    CHECK(p["cancelled_at"] == (t0 + 9000) / 1000);
    REQUIRE(p["cancel_history"].size() == 2);
    CHECK(p["cancel_history"][0] == first);
    CHECK(p["cancel_history"][1]["amount"] == 6900);
    CHECK(p["cancel_history"][1]["cancellation_id"] != first["cancellation_id"]);

    auto ledger = send(sim, "GET", "/__sim/ledger", "", t0).body;
    REQUIRE(ledger.size() == 1);
    CHECK(ledger[0]["cancel_amount"] == 9900);
    CHECK(ledger[0]["cancel_history"] == p["cancel_history"]);
}

TEST_CASE("refused cancels answer HTTP 200 with code != 0 and change nothing") {
    auto sim = make_sim();
    const auto imp = paid(sim, "m1");
    const auto full = paid(sim, "m2");
    REQUIRE(cancel(sim, {{"imp_uid", full}, {"checksum", 9900}}, t0).body["code"] == 0);
    auto declined = charge(sim, "decline-1", "m3", t0).body["response"];
    REQUIRE(declined["status"] == "failed");
    struct row {
        const char* what;
        json body;
        const char* message;
    };
    const row rows[] = {
        {"checksum mismatch", {{"imp_uid", imp}, {"amount", 100}, {"checksum", 9800}}, "checksum"},
        {"amount above what is left", {{"imp_uid", imp}, {"amount", 9901}}, "초과"},
        {"amount above what is left, right checksum",
         {{"imp_uid", imp}, {"amount", 10000}, {"checksum", 9900}},
         "초과"},
        {"already fully cancelled", {{"imp_uid", full}, {"amount", 1}}, "이미 전액취소"},
        {"already fully cancelled, checksum 0",
         {{"imp_uid", full}, {"checksum", 0}},
         "이미 전액취소"},
        {"not paid", {{"imp_uid", declined["imp_uid"]}, {"amount", 1}}, "결제완료"},
    };
    const auto before = send(sim, "GET", "/__sim/ledger", "", t0).body;
    for (const auto& r : rows) {
        CAPTURE(r.what);
        auto a = cancel(sim, r.body, t0 + 1000);
        CHECK(a.status == 200);
        CHECK(a.body["code"] != 0);
        CHECK(a.body["response"].is_null());
        CHECK(a.body["message"].get<std::string>().find(r.message) != std::string::npos);
    }
    CHECK(send(sim, "GET", "/__sim/ledger", "", t0).body == before);
}

TEST_CASE("cancel_refusal_status 400: refusals answer HTTP 400, applied cancels still 200") {
    sim_config config;
    config.modes.cancel_refusal_status = portone_sim::cancel_refusal_status::http400;
    auto sim = make_sim(config);
    const auto imp = paid(sim, "m1");
    auto refused = cancel(sim, {{"imp_uid", imp}, {"amount", 100}, {"checksum", 1}}, t0);
    CHECK(refused.status == 400);
    CHECK(refused.body["code"] != 0);
    CHECK(cancel(sim, {{"imp_uid", imp}, {"amount", 100}, {"checksum", 9900}}, t0).status == 200);

    // And back at runtime.
    CHECK(send(sim, "POST", "/__sim/modes", R"({"cancel_refusal_status":"200"})", t0).status ==
          200);
    refused = cancel(sim, {{"imp_uid", imp}, {"amount", 100}, {"checksum", 9900}}, t0);
    CHECK(refused.status == 200);
    CHECK(refused.body["code"] != 0);
}

TEST_CASE(
    "partial_cancel_status cancelled: a partial cancel reads cancelled, the rest may follow") {
    auto sim = make_sim();
    REQUIRE(send(sim, "POST", "/__sim/modes", R"({"partial_cancel_status":"cancelled"})", t0)
                .body["partial_cancel_status"] == "cancelled");
    const auto imp = paid(sim, "m1");
    auto p = cancel(sim, {{"imp_uid", imp}, {"amount", 900}, {"checksum", 9900}}, t0).body;
    CHECK(p["response"]["status"] == "cancelled");
    CHECK(p["response"]["cancel_amount"] == 900);
    p = cancel(sim, {{"imp_uid", imp}, {"amount", 9000}, {"checksum", 9000}}, t0).body;
    CHECK(p["code"] == 0);
    CHECK(p["response"]["cancel_amount"] == 9900);
    CHECK(cancel(sim, {{"imp_uid", imp}, {"amount", 1}}, t0).body["code"] != 0);
}

TEST_CASE("unknown payments are 404 with PortOne's envelope; bad parameters are 400") {
    auto sim = make_sim();
    const auto imp = paid(sim, "m1");
    const json not_found =
        json::parse(R"({"code":-1,"message":"존재하지 않는 결제정보입니다.","response":null})");
    auto a = cancel(sim, {{"imp_uid", "imp_000000000000"}, {"amount", 1}}, t0);
    CHECK(a.status == 404);
    CHECK(a.body == not_found);
    CHECK(cancel(sim, {{"merchant_uid", "nothing"}}, t0).status == 404);
    // imp_uid wins over merchant_uid.
    CHECK(cancel(sim, {{"imp_uid", "imp_000000000000"}, {"merchant_uid", "m1"}}, t0).status == 404);
    CHECK(get(sim, "/payments/imp_000000000000", t0).body == not_found);

    for (const json& bad :
         {json{{"amount", 100}}, json{{"imp_uid", imp}, {"amount", 0}},
          json{{"imp_uid", imp}, {"amount", 10.5}}, json{{"imp_uid", imp}, {"amount", "ten"}},
          json{{"imp_uid", imp}, {"checksum", -1}}, json::array()}) {
        CAPTURE(bad.dump());
        a = cancel(sim, bad, t0);
        CHECK(a.status == 400);
        CHECK(a.body["code"] != 0);
    }
    CHECK(sim.payments().all()[0].cancel_amount == 0);
    CHECK(send(sim, "POST", "/payments/cancel", json{{"imp_uid", imp}}.dump(), t0).status == 401);
    CHECK(sim.payments().all()[0].cancel_amount == 0);
}

TEST_CASE("a cancel by merchant_uid cancels its paid payment; form bodies are read too") {
    auto sim = make_sim();
    sim.customers().add_exact_arg("flaky=decline_first:1");
    REQUIRE(charge(sim, "flaky", "m1", t0).body["response"]["status"] == "failed");
    auto second = charge(sim, "flaky", "m1", t0 + 1000).body["response"];
    REQUIRE(second["status"] == "paid");
    auto a = cancel(sim, {{"merchant_uid", "m1"}, {"amount", 100}}, t0 + 2000);
    CHECK(a.body["code"] == 0);
    CHECK(a.body["response"]["imp_uid"] == second["imp_uid"]);

    const auto tok = token(sim, t0);
    http_request form{"POST",
                      "/payments/cancel",
                      "imp_uid=" + second["imp_uid"].get<std::string>() +
                          "&amount=200&checksum=9800&reason=%ED%99%98%EB%B6%88+%EC%9A%94%EC%B2%AD",
                      "application/x-www-form-urlencoded",
                      "Bearer " + tok,
                      ""};
    auto f = to_answer(sim.serve(form, t0 + 3000));
    CHECK(f.body["code"] == 0);
    CHECK(f.body["response"]["cancel_amount"] == 300);
    CHECK(f.body["response"]["cancel_history"][1]["reason"] == "환불 요청");
}

TEST_CASE("overlapping cancels are decided at the PG's answer: the same checksum goes once") {
    auto sim = make_sim();
    const auto imp = paid(sim, "m1");
    const json body = {{"imp_uid", imp}, {"amount", 1000}, {"checksum", 9900}};
    auto first = sim.handle(cancel_request(sim, body, t0), t0);
    auto second = sim.handle(cancel_request(sim, body, t0 + 10), t0 + 10);
    // During the latency a lookup does not see the cancel yet.
    CHECK(payment(sim, imp, t0 + 20)["cancel_amount"] == 0);
    auto a = to_answer(sim.complete(std::move(first), t0 + 50));
    auto b = to_answer(sim.complete(std::move(second), t0 + 60));
    CHECK(a.body["code"] == 0);
    CHECK(b.body["code"] != 0);
    CHECK(b.body["message"].get<std::string>().find("checksum") != std::string::npos);
    CHECK(payment(sim, imp, t0 + 70)["cancel_amount"] == 1000);
    CHECK(imp_requests(sim, imp)["max_concurrent_cancels"] == 2);
}

TEST_CASE("cancel faults: *_before change nothing; *_after apply the cancel, then misbehave") {
    struct row {
        const char* spec;
        bool applied;
        transport_action action;
        int status;
    };
    const row rows[] = {
        {"cancel:http500_before:1", false, transport_action::respond, 500},
        {"cancel:http503_before:1", false, transport_action::respond, 503},
        {"cancel:http429:1", false, transport_action::respond, 429},
        {"cancel:pg_failure:1", false, transport_action::respond, 200},
        {"cancel:http500_after:1", true, transport_action::respond, 500},
        {"cancel:http503_after:1", true, transport_action::respond, 503},
        {"cancel:hang_after:1", true, transport_action::hang, 0},
        {"cancel:reset_after:1", true, transport_action::reset, 0},
        {"cancel:non_json:1", true, transport_action::respond, -1},
        {"cancel:oversize:1", true, transport_action::respond, 200},
        {"*:latency_ms=40:1", true, transport_action::respond, 200},
    };
    for (const auto& r : rows) {
        CAPTURE(r.spec);
        sim_config config;
        config.oversize_bytes = 100000;
        auto sim = make_sim(config);
        const auto imp = paid(sim, "m1");
        set_faults(sim, {r.spec});
        auto planned = sim.handle(
            cancel_request(sim, {{"imp_uid", imp}, {"amount", 500}, {"checksum", 9900}}, t0), t0);
        if (std::string(r.spec).find("latency") != std::string::npos)
            CHECK(planned.delay.count() == 40);
        auto a = to_answer(sim.complete(std::move(planned), t0));
        if (a.raw.held) sim.release(*a.raw.held);
        CHECK(a.raw.action == r.action);
        if (r.status > 0) CHECK(a.status == r.status);
        CHECK(sim.payments().all()[0].cancel_amount == (r.applied ? 500 : 0));
        CHECK(imp_requests(sim, imp)["cancels"] == 1);
    }
}

TEST_CASE("cancels and payment lookups are counted per imp_uid, by merchant_uid too") {
    auto sim = make_sim();
    const auto imp = paid(sim, "m1");
    cancel(sim, {{"imp_uid", imp}, {"amount", 100}}, t0 + 100);
    cancel(sim, {{"merchant_uid", "m1"}, {"amount", 100}}, t0 + 200);
    cancel(sim, {{"imp_uid", imp}, {"amount", 100000}}, t0 + 300);  // refused, still counted
    get(sim, "/payments/" + imp, t0);
    send(sim, "POST", "/payments/cancel", json{{"imp_uid", imp}}.dump(), t0);  // 401
    send(sim, "POST", "/__sim/console-cancel", json{{"imp_uid", imp}, {"amount", 1}}.dump(), t0);
    CHECK(imp_requests(sim, imp) == json{{"cancels", 3},
                                         {"lookups", 1},
                                         {"max_concurrent_cancels", 1},
                                         {"max_concurrent", 1},
                                         {"cancel_arrivals_ms", {t0 + 100, t0 + 200, t0 + 300}}});
    CHECK(imp_requests(sim, "imp_unseen")["cancels"] == 0);
    auto all = send(sim, "GET", "/__sim/requests", "", t0).body;
    CHECK(all["imp_uids"].size() == 1);
    CHECK(all["merchant_uids"]["m1"]["charges"] == 1);
    CHECK(send(sim, "GET", "/__sim/stats", "", t0).body["requests"]["cancel"] == 4);
}

TEST_CASE("console refunds need no checksum, happen at the sim's clock, and are not requests") {
    auto sim = make_sim();
    const auto imp = paid(sim, "m1");
    auto a = send(sim, "POST", "/__sim/console-cancel",
                  json{{"merchant_uid", "m1"}, {"amount", 1900}, {"reason", "console"}}.dump(),
                  t0 + 7000);
    REQUIRE(a.status == 200);
    CHECK(a.body["ok"] == true);
    CHECK(a.body["payment"]["cancel_amount"] == 1900);
    CHECK(a.body["payment"]["cancelled_at"] == (t0 + 7000) / 1000);
    CHECK(a.body["payment"]["cancel_history"][0]["reason"] == "console");
    a = send(sim, "POST", "/__sim/console-cancel", json{{"imp_uid", imp}}.dump(), t0 + 8000);
    CHECK(a.body["payment"]["status"] == "cancelled");
    CHECK(a.body["payment"]["cancel_amount"] == 9900);

    for (const auto& [body, status] :
         {std::pair{json{{"imp_uid", imp}}, 409}, std::pair{json{{"imp_uid", "imp_0"}}, 404},
          std::pair{json{{"reason", "x"}}, 400},
          std::pair{json{{"imp_uid", imp}, {"amount", -1}}, 400}}) {
        CAPTURE(body.dump());
        a = send(sim, "POST", "/__sim/console-cancel", body.dump(), t0);
        CHECK(a.status == status);
        CHECK(a.body["ok"] == false);
    }
    CHECK(imp_requests(sim, imp)["cancels"] == 0);
    CHECK(payment(sim, imp, t0 + 9000)["cancel_history"].size() == 2);
}

TEST_CASE("payments/status/cancelled lists payments cancelled within [from, to], by pages") {
    auto sim = make_sim();
    std::vector<std::string> imps;
    for (int i = 0; i < 4; ++i) imps.push_back(paid(sim, "m" + std::to_string(i)));
    // Cancelled on days 1, 2 and 3; the fourth only partly (it stays paid).
    for (int i = 0; i < 3; ++i) cancel(sim, {{"imp_uid", imps[i]}}, t0 + (i + 1) * day_ms);
    cancel(sim, {{"imp_uid", imps[3]}, {"amount", 1}}, t0 + 2 * day_ms);

    const auto s = [](std::int64_t ms) { return std::to_string(ms / 1000); };
    const auto now = t0 + 10 * day_ms;
    auto list = get(sim, "/payments/status/cancelled?from=" + s(t0) + "&to=" + s(now), now);
    REQUIRE(list.status == 200);
    auto r = list.body["response"];
    CHECK(r["total"] == 3);
    CHECK(r["previous"] == 0);
    CHECK(r["next"] == 0);
    REQUIRE(r["list"].size() == 3);
    for (const auto& p : r["list"]) {
        CHECK(p["status"] == "cancelled");
        CHECK(p["cancel_history"].size() == 1);
    }

    // Bounds are inclusive: exactly day 2's cancel.
    r = get(sim,
            "/payments/status/cancelled?from=" + s(t0 + 2 * day_ms) + "&to=" + s(t0 + 2 * day_ms),
            now)
            .body["response"];
    REQUIRE(r["total"] == 1);
    CHECK(r["list"][0]["imp_uid"] == imps[1]);

    // Pages of two.
    const auto base = "/payments/status/cancelled?from=" + s(t0) + "&to=" + s(now) + "&limit=2";
    r = get(sim, base + "&page=1", now).body["response"];
    CHECK(r["total"] == 3);
    CHECK(r["list"].size() == 2);
    CHECK(r["next"] == 2);
    r = get(sim, base + "&page=2", now).body["response"];
    CHECK(r["list"].size() == 1);
    CHECK(r["previous"] == 1);
    CHECK(r["next"] == 0);
    CHECK(get(sim, base + "&page=3", now).status == 400);

    // Without from/to: the last 90 days at the sim's clock.
    CHECK(get(sim, "/payments/status/cancelled", now).body["response"]["total"] == 3);
    CHECK(get(sim, "/payments/status/cancelled", t0 + 200 * day_ms).body["response"]["total"] == 0);
    // A window over 90 days, or reversed, or a status PortOne does not know: refused.
    for (const std::string& bad : std::vector<std::string>{
             "/payments/status/cancelled?from=" + s(t0) + "&to=" + s(t0 + 91 * day_ms),
             "/payments/status/cancelled?from=" + s(now) + "&to=" + s(t0),
             "/payments/status/refunded", "/payments/status/cancelled?page=0",
             "/payments/status/cancelled?limit=x"}) {
        CAPTURE(bad);
        auto a = get(sim, bad, now);
        CHECK(a.status == 400);
        CHECK(a.body["code"] != 0);
    }
    // The partly cancelled payment is listed under paid, by paid_at.
    CHECK(get(sim, "/payments/status/paid?from=" + s(t0) + "&to=" + s(now), now)
              .body["response"]["list"][0]["imp_uid"] == imps[3]);
}

TEST_CASE("cancel and status are fault endpoints") {
    CHECK(parse_fault("cancel:reset_after:1").target == portone_sim::endpoint::cancel);
    CHECK(parse_fault("status:http429:0.5").target == portone_sim::endpoint::status);
    auto sim = make_sim();
    set_faults(sim, {"status:http503_before:1"});
    CHECK(get(sim, "/payments/status/cancelled", t0).status == 503);
    CHECK(get(sim, "/payments/find/m1", t0).status == 404);  // other endpoints unaffected
}
