// Recording modes, merchant_uid re-use after failure, and the per-merchant_uid request counter.
#include <doctest/doctest.h>

#include "fixture.hpp"

using namespace sim_test;
using portone_sim::parse_fault;
using portone_sim::plan;
using portone_sim::sim_config;
using portone_sim::transport_action;

namespace {

simulator make_sim(sim_config config = {}) {
    simulator sim(std::move(config));
    sim.customers().add_prefix_arg("pay-=pay");
    sim.customers().add_prefix_arg("flaky1-=decline_first:1");
    return sim;
}

sim_config answer_mode() {
    sim_config config;
    config.modes.record_at = portone_sim::record_at::answer;
    return config;
}

http_request charge_request(simulator& sim, const std::string& customer,
                            const std::string& merchant, std::int64_t now) {
    return {"POST", "/subscribe/payments/again", charge_body(customer, merchant).dump(),
            "",     "Bearer " + token(sim, now), ""};
}

http_request get_request(simulator& sim, const std::string& target, std::int64_t now) {
    return {"GET", target, "", "", "Bearer " + token(sim, now), ""};
}

void set_faults(simulator& sim, std::vector<std::string> specs) {
    std::vector<portone_sim::fault_spec> faults;
    for (const auto& s : specs) faults.push_back(parse_fault(s));
    sim.faults().replace(std::move(faults));
}

json requests_of(simulator& sim, const std::string& merchant_uid) {
    return send(sim, "GET", "/__sim/requests?merchant_uid=" + merchant_uid, "", t0)
        .body["merchant_uids"][merchant_uid];
}

const json not_found =
    json::parse(R"({"code":-1,"message":"존재하지 않는 결제정보입니다.","response":null})");

}  // namespace

TEST_CASE("record_at arrival: a lookup during the PG latency sees the charge ready") {
    auto sim = make_sim();
    auto planned = sim.handle(charge_request(sim, "pay-1", "m1", t0), t0);
    CHECK(get(sim, "/payments/find/m1", t0 + 10).body["response"]["status"] == "ready");
    CHECK(sim.complete(std::move(planned), t0 + 50).response.status == 200);
    CHECK(sim.payments().all().size() == 1);
}

TEST_CASE("record_at answer: a charge in progress is not found until the PG answers") {
    auto sim = make_sim(answer_mode());
    auto planned = sim.handle(charge_request(sim, "pay-1", "m1", t0), t0);
    CHECK(sim.payments().all().empty());
    for (const char* target : {"/payments/find/m1", "/payments/findAll/m1",
                               "/payments/find/m1/ready", "/payments/findAll/m1/ready"}) {
        CAPTURE(target);
        auto during = get(sim, target, t0 + 10);
        CHECK(during.status == 404);
        CHECK(during.body == not_found);
    }

    auto done = to_answer(sim.complete(std::move(planned), t0 + 50));
    CHECK(done.body["response"]["status"] == "paid");
    REQUIRE(sim.payments().all().size() == 1);
    const auto& record = sim.payments().all()[0];
    CHECK(record.started_ms == t0);  // started when it arrived, recorded when answered
    CHECK(record.paid_ms == t0 + 50);
    auto found = get(sim, "/payments/find/m1", t0 + 60);
    CHECK(found.body["response"]["imp_uid"] == done.body["response"]["imp_uid"]);
    CHECK(get(sim, "/payments/findAll/m1", t0 + 60).body["response"]["total"] == 1);
}

TEST_CASE("record_at answer: a charge is recorded even when the answer never reaches the client") {
    for (const char* spec :
         {"charge:reset_after:1", "charge:hang_after:1", "charge:http503_after:1"}) {
        CAPTURE(spec);
        auto sim = make_sim(answer_mode());
        set_faults(sim, {spec});
        auto planned = sim.handle(charge_request(sim, "pay-1", "m1", t0), t0);
        CHECK(sim.payments().all().empty());
        sim.complete(std::move(planned), t0 + 50);
        REQUIRE(sim.payments().all().size() == 1);
        CHECK(sim.payments().all()[0].status == "paid");
    }
}

TEST_CASE("record_at answer: declines are recorded as failed when answered") {
    auto sim = make_sim(answer_mode());
    auto first = charge(sim, "flaky1-a", "m1", t0);
    CHECK(first.body["response"]["status"] == "failed");
    auto second = charge(sim, "flaky1-a", "m1", t0 + 1000);
    CHECK(second.body["response"]["status"] == "paid");
    CHECK(get(sim, "/payments/findAll/m1", t0 + 2000).body["response"]["total"] == 2);
    CHECK(charge(sim, "flaky1-a", "m1", t0 + 3000).body["code"] == 1);
}

TEST_CASE("a charge in flight keeps the recording mode it arrived under") {
    auto sim = make_sim();
    auto early = sim.handle(charge_request(sim, "pay-1", "m1", t0), t0);
    REQUIRE(send(sim, "POST", "/__sim/modes", R"({"record_at":"answer"})", t0).status == 200);
    auto late = sim.handle(charge_request(sim, "pay-1", "m2", t0), t0);
    CHECK(sim.payments().all().size() == 1);  // m1, ready
    sim.complete(std::move(early), t0 + 50);
    sim.complete(std::move(late), t0 + 50);
    REQUIRE(sim.payments().all().size() == 2);
    CHECK(sim.payments().all()[0].merchant_uid == "m1");
    CHECK(sim.payments().all()[1].merchant_uid == "m2");
    CHECK(sim.payments().all()[1].status == "paid");
}

TEST_CASE("failed_uid_reuse refuse: a failed merchant_uid is refused and nothing is recorded") {
    sim_config config;
    config.modes.failed_uid_reuse = portone_sim::failed_uid_reuse::refuse;
    auto sim = make_sim(config);
    CHECK(charge(sim, "flaky1-a", "m1", t0).body["response"]["status"] == "failed");
    auto again = charge(sim, "flaky1-a", "m1", t0 + 1000);
    CHECK(again.status == 200);
    CHECK(again.body["code"] == 1);
    CHECK(
        again.body["message"] ==
        "이미 주문이 이루어진 건입니다. (동일한 merchant_uid로 결제 또는 취소된 기록이 있습니다)");
    CHECK(again.body["response"].is_null());
    CHECK(sim.payments().all().size() == 1);
    // The refusal did not use up the customer's decline: a new merchant_uid is paid.
    CHECK(charge(sim, "flaky1-a", "m2", t0 + 2000).body["response"]["status"] == "paid");
    CHECK(charge(sim, "flaky1-a", "m2", t0 + 3000).body["code"] == 1);
    CHECK(charge(sim, "pay-1", "m3", t0).body["response"]["status"] == "paid");
}

TEST_CASE("failed_uid_reuse switches at runtime; allow charges a failed merchant_uid again") {
    auto sim = make_sim();
    CHECK(charge(sim, "flaky1-a", "m1", t0).body["response"]["status"] == "failed");
    auto set = send(sim, "POST", "/__sim/modes", R"({"failed_uid_reuse":"refuse"})", t0);
    CHECK(set.status == 200);
    CHECK(set.body["failed_uid_reuse"] == "refuse");
    CHECK(charge(sim, "flaky1-a", "m1", t0 + 1000).body["code"] == 1);
    CHECK(send(sim, "POST", "/__sim/modes", R"({"failed_uid_reuse":"allow"})", t0).status == 200);
    CHECK(charge(sim, "flaky1-a", "m1", t0 + 2000).body["response"]["status"] == "paid");
    CHECK(sim.payments().all().size() == 2);
}

TEST_CASE("/__sim/modes shows the modes; a bad value or unknown key changes nothing") {
    auto sim = make_sim();
    CHECK(send(sim, "GET", "/__sim/modes", "", t0).body == json{{"ok", true},
                                                                {"record_at", "arrival"},
                                                                {"failed_uid_reuse", "allow"},
                                                                {"cancel_refusal_status", 200},
                                                                {"partial_cancel_status", "paid"}});
    for (const char* bad :
         {R"({"record_at":"answer","failed_uid_reuse":"never"})", R"({"record_at":"later"})",
          R"({"record_at":"answer","speed":"fast"})", R"({"record_at":1})", R"(["answer"])",
          "{nope", R"({"record_at":"answer","cancel_refusal_status":404})",
          R"({"partial_cancel_status":"refunded"})"}) {
        CAPTURE(bad);
        auto a = send(sim, "POST", "/__sim/modes", bad, t0);
        CHECK(a.status == 400);
        CHECK(a.body["ok"] == false);
        CHECK(a.body["error"].is_string());
    }
    CHECK(sim.modes().record_at == portone_sim::record_at::arrival);
    auto both = send(sim, "POST", "/__sim/modes",
                     R"({"record_at":"answer","failed_uid_reuse":"refuse"})", t0);
    CHECK(both.body == json{{"ok", true},
                            {"record_at", "answer"},
                            {"failed_uid_reuse", "refuse"},
                            {"cancel_refusal_status", 200},
                            {"partial_cancel_status", "paid"}});
    CHECK(send(sim, "GET", "/__sim/modes", "", t0).body == both.body);
}

TEST_CASE("requests are counted per merchant_uid: charges, lookups and charge arrival times") {
    auto sim = make_sim();
    charge(sim, "pay-1", "m1", t0);
    get(sim, "/payments/find/m1", t0 + 100);
    get(sim, "/payments/findAll/m1/paid?sorting=started", t0 + 200);
    charge(sim, "pay-1", "m1", t0 + 300);  // refused as a duplicate, still a request
    charge(sim, "pay-1", "m2", t0 + 400);
    get(sim, "/payments/imp_000000000001", t0);  // not about a merchant_uid
    send(sim, "GET", "/payments/find/m1", "", t0, "not-a-token");
    send(sim, "POST", "/subscribe/payments/again", charge_body("pay-1", "m1").dump(), t0);

    auto all = send(sim, "GET", "/__sim/requests", "", t0);
    REQUIRE(all.status == 200);
    CHECK(all.body["merchant_uids"].size() == 2);
    CHECK(all.body["merchant_uids"]["m1"] == json{{"charges", 2},
                                                  {"lookups", 2},
                                                  {"max_concurrent_charges", 1},
                                                  {"max_concurrent", 1},
                                                  {"charge_arrivals_ms", {t0, t0 + 300}}});
    CHECK(all.body["merchant_uids"]["m2"]["charge_arrivals_ms"] == json{t0 + 400});
    CHECK(all.body["merchant_uids"]["m2"]["lookups"] == 0);
}

TEST_CASE("requests answered by a fault are counted; unparsable charges are not") {
    auto sim = make_sim();
    set_faults(sim, {"charge:http503_before:1", "find:http429:1"});
    CHECK(charge(sim, "pay-1", "m1", t0).status == 503);
    CHECK(get(sim, "/payments/find/m1", t0).status == 429);
    const auto tok = token(sim, t0);
    send(sim, "POST", "/subscribe/payments/again", "{broken", t0, tok);
    send(sim, "POST", "/subscribe/payments/again", R"({"merchant_uid":""})", t0, tok);
    auto m1 = requests_of(sim, "m1");
    CHECK(m1["charges"] == 1);
    CHECK(m1["lookups"] == 1);
    CHECK(send(sim, "GET", "/__sim/requests", "", t0).body["merchant_uids"].size() == 1);
}

TEST_CASE("a filter on an unseen merchant_uid answers zeros for just that uid") {
    auto sim = make_sim();
    charge(sim, "pay-1", "m1", t0);
    auto a = send(sim, "GET", "/__sim/requests?merchant_uid=other%20uid", "", t0);
    CHECK(a.body == json::parse(R"({"merchant_uids":{"other uid":{"charges":0,"lookups":0,
        "max_concurrent_charges":0,"max_concurrent":0,"charge_arrivals_ms":[]}}})"));
}

TEST_CASE("overlapping requests for one merchant_uid raise max_concurrent; sequential do not") {
    auto sim = make_sim();
    // Sequential: each request completes before the next arrives.
    for (int i = 0; i < 3; ++i) get(sim, "/payments/find/m1", t0);
    charge(sim, "pay-1", "m1", t0);
    CHECK(requests_of(sim, "m1")["max_concurrent"] == 1);

    // A lookup while a charge is in its latency, and a second charge on top.
    auto first = sim.handle(charge_request(sim, "flaky1-a", "m2", t0), t0);
    auto lookup = sim.handle(get_request(sim, "/payments/findAll/m2", t0 + 5), t0 + 5);
    auto other_uid = sim.handle(charge_request(sim, "pay-1", "m3", t0 + 6), t0 + 6);
    auto m2 = requests_of(sim, "m2");
    CHECK(m2["max_concurrent"] == 2);
    CHECK(m2["max_concurrent_charges"] == 1);
    sim.complete(std::move(lookup), t0 + 10);
    auto second = sim.handle(charge_request(sim, "flaky1-a", "m2", t0 + 20), t0 + 20);
    m2 = requests_of(sim, "m2");
    CHECK(m2["max_concurrent"] == 2);
    CHECK(m2["max_concurrent_charges"] == 2);
    CHECK(m2["charge_arrivals_ms"] == json{t0, t0 + 20});
    CHECK(requests_of(sim, "m3")["max_concurrent"] == 1);
    sim.complete(std::move(first), t0 + 50);
    sim.complete(std::move(second), t0 + 70);
    sim.complete(std::move(other_uid), t0 + 70);

    // Everything has ended: a new request is alone again and the maxima stay.
    auto later = sim.handle(charge_request(sim, "flaky1-a", "m2", t0 + 100), t0 + 100);
    CHECK(requests_of(sim, "m2")["max_concurrent_charges"] == 2);
    sim.complete(std::move(later), t0 + 150);
    CHECK(sim.request_counters().at("m2").in_progress == 0);
    CHECK(sim.request_counters().at("m2").in_progress_charges == 0);
}

TEST_CASE("a hung request stays in progress until the transport releases it; a reset ends") {
    auto sim = make_sim();
    set_faults(sim, {"charge:hang_after:1:1", "charge:reset_after:1:1"});
    auto hung = sim.complete(sim.handle(charge_request(sim, "pay-1", "m1", t0), t0), t0 + 50);
    REQUIRE(hung.action == transport_action::hang);
    REQUIRE(hung.held);
    CHECK(hung.held->merchant_uid == "m1");
    CHECK(sim.request_counters().at("m1").in_progress == 1);
    get(sim, "/payments/find/m1", t0 + 100);  // while the connection is still held
    CHECK(requests_of(sim, "m1")["max_concurrent"] == 2);
    sim.release(*hung.held);
    CHECK(sim.request_counters().at("m1").in_progress == 0);

    auto reset = sim.complete(sim.handle(charge_request(sim, "pay-1", "m2", t0), t0), t0 + 50);
    REQUIRE(reset.action == transport_action::reset);
    CHECK_FALSE(reset.held);
    get(sim, "/payments/find/m2", t0 + 100);
    CHECK(requests_of(sim, "m2")["max_concurrent"] == 1);
}

TEST_CASE("serve() releases a hang at once so sequential tests see no overlap") {
    auto sim = make_sim();
    set_faults(sim, {"charge:hang_after:1"});
    CHECK(charge(sim, "pay-1", "m1", t0).raw.action == transport_action::hang);
    get(sim, "/payments/find/m1", t0);
    CHECK(requests_of(sim, "m1")["max_concurrent"] == 1);
}
