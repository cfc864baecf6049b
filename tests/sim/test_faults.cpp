// Fault injection, customer rules and control endpoints of the simulator.
#include <doctest/doctest.h>

#include <stdexcept>

#include "fixture.hpp"

using namespace sim_test;
using portone_sim::fault_kind;
using portone_sim::fault_plan;
using portone_sim::parse_fault;
using portone_sim::transport_action;

namespace {

simulator paying_sim(std::uint64_t seed = 7) {
    portone_sim::sim_config config;
    config.seed = seed;
    config.oversize_bytes = 100000;
    simulator sim(config);
    sim.customers().add_prefix_arg("pay-=pay");
    return sim;
}

void set_faults(simulator& sim, std::vector<std::string> specs) {
    std::vector<portone_sim::fault_spec> faults;
    for (const auto& s : specs) faults.push_back(parse_fault(s));
    sim.faults().replace(std::move(faults));
}

// Outcome signature of n charges: one letter per request.
std::string run_charges(std::uint64_t seed, int n) {
    auto sim = paying_sim(seed);
    set_faults(sim, {"charge:http503_before:0.3", "charge:reset_after:0.2",
                     "charge:latency_ms=10-90:0.5"});
    std::string out;
    for (int i = 0; i < n; ++i) {
        const auto tok = token(sim, t0);
        http_request r{"POST",
                       "/subscribe/payments/again",
                       charge_body("pay-1", "m" + std::to_string(i)).dump(),
                       "",
                       tok,
                       ""};
        auto p = sim.handle(r, t0);
        out += std::to_string(p.delay.count()) + ":";
        auto c = sim.complete(std::move(p), t0);
        out += c.action == transport_action::reset ? 'R' : c.response.status == 503 ? 'U' : 'P';
        out += ' ';
    }
    return out;
}

}  // namespace

TEST_CASE("fault specs parse and bad ones are rejected with a message") {
    auto f = parse_fault("charge:latency_ms=20-80:0.5:3");
    CHECK(f.kind == fault_kind::latency);
    CHECK(f.latency_min_ms == 20);
    CHECK(f.latency_max_ms == 80);
    CHECK(f.probability == doctest::Approx(0.5));
    CHECK(*f.count == 3);
    CHECK(parse_fault("*:http429:1").target == std::nullopt);
    CHECK(parse_fault("findAll:oversize:0.1").kind == fault_kind::oversize);
    for (const char* bad : {"charge:boom:1", "nowhere:http429:1", "charge:http429:1.5",
                            "charge:http429", "charge:latency_ms=9-3:1", "charge:http429:1:x"}) {
        CAPTURE(bad);
        CHECK_THROWS_AS(parse_fault(bad), std::invalid_argument);
    }
}

TEST_CASE("the same seed and request sequence give the same faults; another seed differs") {
    const auto a = run_charges(42, 60), b = run_charges(42, 60), c = run_charges(43, 60);
    CHECK(a == b);
    CHECK(a != c);
    CHECK(a.find('R') != std::string::npos);
    CHECK(a.find('U') != std::string::npos);
    CHECK(a.find('P') != std::string::npos);
}

TEST_CASE("faults on one endpoint do not disturb another endpoint's sequence") {
    fault_plan x(5), y(5);
    std::vector<portone_sim::fault_spec> specs = {parse_fault("*:http500_before:0.5")};
    x.replace(specs);
    y.replace(specs);
    std::string sx, sy;
    for (int i = 0; i < 40; ++i) {
        sx += x.draw(portone_sim::endpoint::charge).kind ? '1' : '0';
        y.draw(portone_sim::endpoint::find);  // interleaved lookups
        sy += y.draw(portone_sim::endpoint::charge).kind ? '1' : '0';
    }
    CHECK(sx == sy);
}

TEST_CASE("COUNT limits how often a fault fires") {
    auto sim = paying_sim();
    set_faults(sim, {"charge:http503_before:1.0:2"});
    CHECK(charge(sim, "pay-1", "m1", t0).status == 503);
    CHECK(charge(sim, "pay-1", "m1", t0).status == 503);
    CHECK(charge(sim, "pay-1", "m1", t0).body["response"]["status"] == "paid");
}

TEST_CASE("*_before faults and pg_failure answer without touching the ledger") {
    for (const char* spec :
         {"charge:http500_before:1", "charge:http502_before:1", "charge:http503_before:1",
          "charge:http429:1", "charge:pg_failure:1"}) {
        CAPTURE(spec);
        auto sim = paying_sim();
        set_faults(sim, {spec});
        auto a = charge(sim, "pay-1", "m1", t0);
        CHECK(a.status != 0);
        CHECK(sim.payments().all().empty());
        if (std::string(spec).find("pg_failure") != std::string::npos) {
            CHECK(a.status == 200);
            CHECK(a.body["code"] == -1);
            CHECK(a.body["response"].is_null());
        }
    }
}

TEST_CASE("*_after faults commit the payment and then misbehave") {
    struct row {
        const char* spec;
        transport_action action;
        int status;
        bool json_body;
    };
    const row rows[] = {
        {"charge:http500_after:1", transport_action::respond, 500, false},
        {"charge:http503_after:1", transport_action::respond, 503, false},
        {"charge:hang_after:1", transport_action::hang, 0, false},
        {"charge:reset_after:1", transport_action::reset, 0, false},
        {"charge:non_json:1", transport_action::respond, -1, false},
        {"charge:oversize:1", transport_action::respond, 200, true},
    };
    for (const auto& r : rows) {
        CAPTURE(r.spec);
        auto sim = paying_sim();
        set_faults(sim, {r.spec});
        auto a = charge(sim, "pay-1", "m1", t0);
        CHECK(a.raw.action == r.action);
        if (r.status > 0) CHECK(a.status == r.status);
        if (r.action == transport_action::respond) CHECK(a.body.is_discarded() != r.json_body);
        REQUIRE(sim.payments().all().size() == 1);
        CHECK(sim.payments().all()[0].status == "paid");
        if (r.json_body) {
            CHECK(a.raw.response.body.size() >= 100000);
            CHECK(a.body["response"]["status"] == "paid");
        }
    }
}

TEST_CASE("token_expire_early issues a token that works for exactly one request") {
    auto sim = paying_sim();
    set_faults(sim, {"token:token_expire_early:1:1"});
    const auto first = token(sim, t0);
    CHECK(send(sim, "GET", "/payments/imp_1", "", t0, first).status == 404);
    CHECK(send(sim, "GET", "/payments/imp_1", "", t0, first).status == 401);
    const auto second = token(sim, t0);
    CHECK(second != first);
    CHECK(send(sim, "GET", "/payments/imp_1", "", t0, second).status == 404);
    CHECK(send(sim, "GET", "/payments/imp_1", "", t0, second).status == 404);
}

TEST_CASE("latency faults add a delay without changing the answer") {
    auto sim = paying_sim();
    set_faults(sim, {"charge:latency_ms=50:1"});
    const auto tok = token(sim, t0);
    http_request r{"POST", "/subscribe/payments/again", charge_body("pay-1", "m1").dump(), "", tok,
                   ""};
    auto p = sim.handle(r, t0);
    CHECK(p.delay.count() == 50);
    CHECK(sim.complete(std::move(p), t0 + 50).response.status == 200);
}

TEST_CASE("customer rules: exact beats prefix, longest prefix wins, unmatched is unregistered") {
    portone_sim::customer_book book;
    book.load_rules(json::parse(
        R"({"customers":{"vip-1":"pay"},"prefixes":{"vip-":"decline","vip-x":"cap:3"}})"));
    CHECK(book.lookup("vip-1").type == portone_sim::behaviour::kind::pay);
    CHECK(book.lookup("vip-2").type == portone_sim::behaviour::kind::decline);
    CHECK(book.lookup("vip-x9").type == portone_sim::behaviour::kind::cap);
    CHECK(book.lookup("vip-x9").n == 3);
    CHECK_FALSE(book.registered("other"));
    CHECK_THROWS_AS(portone_sim::parse_behaviour("sometimes"), std::invalid_argument);
    CHECK_THROWS_AS(portone_sim::parse_behaviour("cap:x"), std::invalid_argument);
    CHECK(portone_sim::parse_behaviour("decline_first:2:잔액부족").reason == "잔액부족");
    CHECK_THROWS_AS(book.add_exact_arg("novalue"), std::invalid_argument);
}

TEST_CASE("control endpoints replace faults, add customers, and show ledger and stats") {
    auto sim = paying_sim();
    auto set =
        send(sim, "POST", "/__sim/faults", R"({"faults":["charge:http503_before:1.0"]})", t0);
    CHECK(set.status == 200);
    CHECK(charge(sim, "pay-1", "m1", t0).status == 503);
    CHECK(send(sim, "POST", "/__sim/faults", R"({"faults":[]})", t0).status == 200);
    CHECK(send(sim, "POST", "/__sim/faults", R"({"faults":["bad"]})", t0).status == 400);
    CHECK(charge(sim, "pay-1", "m1", t0).status == 200);

    CHECK(send(sim, "POST", "/__sim/customers", R"({"customers":{"new-1":"decline_first:1"}})", t0)
              .status == 200);
    CHECK(charge(sim, "new-1", "m2", t0).body["response"]["status"] == "failed");
    CHECK(charge(sim, "new-1", "m2", t0).body["response"]["status"] == "paid");
    CHECK(send(sim, "POST", "/__sim/customers", R"({"customers":{"x":"bogus"}})", t0).status ==
          400);

    auto ledger = send(sim, "GET", "/__sim/ledger", "", t0);
    REQUIRE(ledger.body.is_array());
    REQUIRE(ledger.body.size() == 3);
    CHECK(ledger.body[0]["seq"] == 1);
    CHECK(ledger.body[0]["merchant_uid"] == "m1");
    CHECK(ledger.body[1]["status"] == "failed");
    CHECK(ledger.body[2]["status"] == "paid");

    auto stats = send(sim, "GET", "/__sim/stats", "", t0);
    CHECK(stats.body["requests"]["charge"] == 4);
    CHECK(stats.body["responses"]["503"] == 1);

    const auto tok = token(sim, t0);
    CHECK(send(sim, "POST", "/__sim/token/expire", "", t0).status == 200);
    CHECK(send(sim, "GET", "/payments/imp_1", "", t0, tok).status == 401);
}
