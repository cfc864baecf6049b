// The decision table, row by row: one row per guard of the engine (decide.hpp).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "scheduler/decide.hpp"

using namespace billingd;
using domain::charge_state;
using domain::subscription_status;
using scheduler::action_kind;
using scheduler::lookup_kind;
using scheduler::probe_kind;

namespace {

constexpr std::int64_t now = 1'704'070'800;  // 2024-01-01T01:00:00Z

storage::charge_record charge(charge_state state = charge_state::scheduled) {
    storage::charge_record c;
    c.id = 1;
    c.subscription_id = 7;
    c.period_index = 3;
    c.merchant_uid = "inst-0123456789abcdef-p3";
    c.customer_uid = "cust";
    c.amount = 9900;
    c.currency = "KRW";
    c.state = state;
    return c;
}

storage::subscription_record subscription() {
    storage::subscription_record s;
    s.id = 7;
    s.status = subscription_status::active;
    s.next_period = 4;  // the period after the charge's: it waits on period 3
    return s;
}

scheduler::decision_policy policy() {
    scheduler::decision_policy p;
    p.max_amount_per_charge = 100'000;
    p.max_charges_per_pass = 10;
    p.max_charges_per_hour = 100;
    p.max_attempts_per_charge = 50;
    p.max_refusals = 3;
    p.in_progress_floor = 95;
    return p;
}

struct due_row {
    const char* guard;
    storage::charge_record c;
    std::optional<storage::subscription_record> s;
    scheduler::gate_state g;
    action_kind expected;
    scheduler::probe_kind probe = scheduler::probe_kind::none;
    std::int64_t at = 0;
    const char* reason_has = "";
};

}  // namespace

TEST_CASE("decide_due: one row per guard") {
    auto with = [](auto base, auto change) {
        change(base);
        return base;
    };
    const auto c = charge();
    const auto s = subscription();
    const scheduler::gate_state open;
    const std::vector<due_row> rows = {
        {"a due charge of a billable subscription is sent", c, s, open, action_kind::send},
        {"stopping: nothing new", c, s, with(open, [](auto& g) { g.stopping = true; }),
         action_kind::hold},
        {"paid is final", charge(charge_state::paid), s, open, action_kind::none},
        {"canceled is final", charge(charge_state::canceled), s, open, action_kind::none},
        {"parked waits for an operator", charge(charge_state::parked), s, open, action_kind::none},
        {"in doubt: looked up, never sent", charge(charge_state::unknown), s, open,
         action_kind::look_up},
        {"sending found due (after a crash): looked up", charge(charge_state::sending), s, open,
         action_kind::look_up},
        {"a retry of a charge that had been in doubt is looked up first",
         with(charge(charge_state::retry_wait), [](auto& x) { x.unknown_since = now - 10; }), s,
         open, action_kind::look_up},
        {"in doubt while the breaker is open: lookups continue", charge(charge_state::unknown), s,
         with(open,
              [](auto& g) {
                  g.breaker_open = true;
                  g.breaker_probe_at = now + 30;
              }),
         action_kind::look_up},
        {"in doubt while halted by refused credentials: held", charge(charge_state::unknown), s,
         with(open,
              [](auto& g) {
                  g.halted = true;
                  g.halt_blocks_lookups = true;
                  g.halt_probe_at = now + 60;
              }),
         action_kind::hold},
        {"in doubt while only charging is halted: looked up", charge(charge_state::unknown), s,
         with(open,
              [](auto& g) {
                  g.halted = true;
                  g.halt_probe_at = now + 60;
              }),
         action_kind::look_up},
        {"in doubt at the credential halt's probe time: the lookup is the probe",
         charge(charge_state::unknown), s,
         with(open,
              [](auto& g) {
                  g.halted = true;
                  g.halt_blocks_lookups = true;
                  g.halt_probe_at = now;
              }),
         action_kind::look_up, probe_kind::halt},
        {"canceled at period end while waiting, never sent: canceled, the subscription ends", c,
         with(s, [](auto& x) { x.cancel_at_period_end = true; }), open, action_kind::cancel,
         probe_kind::none, 0, "period end"},
        {"canceled at period end during dunning: the owed period is still collected",
         with(charge(charge_state::declined), [](auto& x) { x.attempt_count = 1; }),
         with(s, [](auto& x) { x.cancel_at_period_end = true; }), open, action_kind::send},
        {"subscription gone, never sent: canceled", c, std::nullopt, open, action_kind::cancel,
         probe_kind::none, 0, "gone"},
        {"subscription paused, never sent: canceled", c,
         with(s, [](auto& x) { x.status = subscription_status::paused; }), open,
         action_kind::cancel, probe_kind::none, 0, "paused"},
        {"subscription canceled after a decline: looked up, then canceled",
         with(charge(charge_state::declined), [](auto& x) { x.attempt_count = 1; }),
         with(s, [](auto& x) { x.status = subscription_status::canceled; }), open,
         action_kind::look_up, probe_kind::none, 0, "canceled"},
        {"subscription moved past the period (resume), never sent: canceled", c,
         with(s, [](auto& x) { x.next_period = 5; }), open, action_kind::cancel, probe_kind::none,
         0, "period 5"},
        {"subscription moved past the period after a send: looked up",
         with(charge(charge_state::retry_wait), [](auto& x) { x.attempt_count = 2; }),
         with(s, [](auto& x) { x.next_period = 5; }), open, action_kind::look_up},
        {"in trial: held until the trial ends", c,
         with(s, [](auto& x) { x.trial_end_at = now + 3600; }), open, action_kind::hold,
         probe_kind::none, now + 3600},
        {"trial over: sent", c, with(s, [](auto& x) { x.trial_end_at = now; }), open,
         action_kind::send},
        {"a currency other than KRW is parked, never sent in the wrong unit",
         with(c, [](auto& x) { x.currency = "USD"; }), s, open, action_kind::park, probe_kind::none,
         0, "USD"},
        {"amount above max_amount_per_charge: parked", with(c, [](auto& x) { x.amount = 100'001; }),
         s, open, action_kind::park, probe_kind::none, 0, "max_amount_per_charge"},
        {"sent max_attempts_per_charge times: parked",
         with(c, [](auto& x) { x.attempt_count = 50; }), s, open, action_kind::park,
         probe_kind::none, 0, "max_attempts_per_charge"},
        {"halted: held behind the gate", c, s,
         with(open,
              [](auto& g) {
                  g.halted = true;
                  g.halt_probe_at = now + 60;
              }),
         action_kind::hold},
        {"halted, probe time, a probe already out: held", c, s,
         with(open,
              [](auto& g) {
                  g.halted = true;
                  g.halt_probe_at = now;
                  g.probe_in_flight = true;
              }),
         action_kind::hold},
        {"halted, probe time: the charge is the probe", c, s,
         with(open,
              [](auto& g) {
                  g.halted = true;
                  g.halt_probe_at = now;
              }),
         action_kind::send, probe_kind::halt},
        {"breaker open: held", c, s,
         with(open,
              [](auto& g) {
                  g.breaker_open = true;
                  g.breaker_probe_at = now + 30;
              }),
         action_kind::hold},
        {"breaker open, probe time: the charge is the probe", c, s,
         with(open,
              [](auto& g) {
                  g.breaker_open = true;
                  g.breaker_probe_at = now;
              }),
         action_kind::send, probe_kind::breaker},
        {"breaker open, probe on the wire: held", c, s,
         with(open,
              [](auto& g) {
                  g.breaker_open = true;
                  g.breaker_probe_at = now;
                  g.probe_in_flight = true;
              }),
         action_kind::hold},
        {"max_charges_per_pass reached: held, stays due", c, s,
         with(open, [](auto& g) { g.charges_this_pass = 10; }), action_kind::hold, probe_kind::none,
         0, "this pass"},
        {"max_charges_per_hour reached (journal, survives restarts): held", c, s,
         with(open, [](auto& g) { g.charges_last_hour = 100; }), action_kind::hold,
         probe_kind::none, 0, "last hour"},
        {"quiet hours: held until they end", c, s,
         with(open, [](auto& g) { g.quiet_until = now + 600; }), action_kind::hold,
         probe_kind::none, now + 600},
        {"a dunning retry of a declined charge is sent",
         with(charge(charge_state::declined), [](auto& x) { x.attempt_count = 1; }), s, open,
         action_kind::send},
    };
    const auto p = policy();
    for (const auto& row : rows) {
        CAPTURE(row.guard);
        const auto a = scheduler::decide_due(row.c, row.s ? &*row.s : nullptr, now, row.g, p);
        CHECK(a.kind == row.expected);
        CHECK(a.probe == row.probe);
        CHECK(a.at == row.at);
        CHECK(a.reason.find(row.reason_has) != std::string::npos);
    }
}

TEST_CASE("a charge canceled at period end also ends its subscription") {
    auto s = subscription();
    s.cancel_at_period_end = true;
    const auto a = scheduler::decide_due(charge(), &s, now, {}, policy());
    CHECK(a.kind == action_kind::cancel);
    CHECK(a.end_subscription);
    s.cancel_at_period_end = false;
    CHECK_FALSE(scheduler::decide_due(charge(), &s, now, {}, policy()).end_subscription);
}

TEST_CASE("count limits name their guardrail; gates that lift by themselves do not") {
    const auto c = charge();
    const auto s = subscription();
    scheduler::gate_state g;
    g.charges_last_hour = 100;
    CHECK(scheduler::decide_due(c, &s, now, g, policy()).guardrail == "max_charges_per_hour");
    g = {};
    g.breaker_open = true;
    g.breaker_probe_at = now + 1;
    CHECK(scheduler::decide_due(c, &s, now, g, policy()).guardrail.empty());
}

namespace {

gateway::payment payment(const char* status, std::int64_t amount = 9900) {
    gateway::payment p;
    p.imp_uid = std::string{"imp_"} + status;
    p.merchant_uid = "inst-0123456789abcdef-p3";
    p.customer_uid = "cust";
    p.amount = amount;
    p.currency = "KRW";
    p.status = status;
    if (std::string{status} == "failed") p.fail_reason = "한도초과";
    return p;
}

gateway::lookup_result lookup(gateway::outcome verdict, std::vector<gateway::payment> list) {
    gateway::lookup_result l;
    l.verdict = verdict;
    l.payments = std::move(list);
    for (const auto& p : l.payments)
        if (p.status == "paid" || (!l.settled && p.status == "failed")) l.settled = p;
    return l;
}

struct lookup_row {
    const char* situation;
    storage::charge_record c;
    std::optional<storage::subscription_record> s;
    gateway::lookup_result l;
    std::optional<std::int64_t> last_sent_at;
    lookup_kind expected;
    std::int64_t at = 0;
    const char* reason_has = "";
};

}  // namespace

TEST_CASE("decide_after_lookup: one row per answer") {
    using gateway::outcome;
    auto with = [](auto base, auto change) {
        change(base);
        return base;
    };
    const auto unknown = with(charge(charge_state::reconciling), [](auto& x) {
        x.attempt_count = 1;
        x.unknown_since = now - 200;
    });
    const auto refused = with(unknown, [](auto& x) { x.last_refusal = "PG사 통신 오류"; });
    const auto s = subscription();
    const auto long_ago = std::optional<std::int64_t>{now - 200};
    const std::vector<lookup_row> rows = {
        {"a paid record as asked: paid", unknown, s, lookup(outcome::paid, {payment("paid")}),
         long_ago, lookup_kind::paid},
        {"paid for another amount: ANOMALY", unknown, s,
         lookup(outcome::paid, {payment("paid", 9901)}), long_ago, lookup_kind::park, 0, "ANOMALY"},
        {"paid without a currency is not proof", unknown, s,
         lookup(outcome::paid, {with(payment("paid"), [](auto& p) { p.currency = ""; })}), long_ago,
         lookup_kind::park, 0, "currency"},
        {"paid without a customer_uid is not proof", unknown, s,
         lookup(outcome::paid, {with(payment("paid"), [](auto& p) { p.customer_uid = ""; })}),
         long_ago, lookup_kind::park, 0, "customer_uid"},
        {"paid for another merchant_uid is not proof", unknown, s,
         lookup(outcome::paid,
                {with(payment("paid"), [](auto& p) { p.merchant_uid = "other-p3"; })}),
         long_ago, lookup_kind::park, 0, "merchant_uid"},
        {"two paid records for one merchant_uid: ANOMALY", unknown, s,
         lookup(outcome::paid, {payment("paid"), payment("paid")}), long_ago, lookup_kind::park, 0,
         "2 paid"},
        {"a ready record: still in doubt", unknown, s, lookup(outcome::unknown, {payment("ready")}),
         long_ago, lookup_kind::unknown},
        {"not authorised: halt", unknown, s, lookup(outcome::config_error, {}), long_ago,
         lookup_kind::halt},
        {"a new failed record: declined", unknown, s,
         lookup(outcome::declined, {payment("failed")}), long_ago, lookup_kind::declined, 0,
         "한도초과"},
        {"cancelled at PortOne: parked for a business decision", unknown, s,
         lookup(outcome::declined, {payment("cancelled")}), long_ago, lookup_kind::park, 0,
         "cancelled"},
        {"no record, past the trust floor: resend", unknown, s, lookup(outcome::not_found, {}),
         long_ago, lookup_kind::resend},
        {"no record before the trust floor: still in doubt until it", unknown, s,
         lookup(outcome::not_found, {}), now - 10, lookup_kind::unknown, now - 10 + 95,
         "in progress"},
        {"only earlier failures before the floor: still in doubt",
         with(unknown, [](auto& x) { x.decline_count = 1; }), s,
         lookup(outcome::declined, {payment("failed")}), now - 10, lookup_kind::unknown, now + 85},
        {"only earlier failures past the floor: resend",
         with(unknown, [](auto& x) { x.decline_count = 1; }), s,
         lookup(outcome::declined, {payment("failed")}), long_ago, lookup_kind::resend},
        {"no record after a refusal: a counted refusal, retried past the trust floor", refused, s,
         lookup(outcome::not_found, {}), now - 1, lookup_kind::refused, now - 1 + 95,
         "refusal 1 of 3"},
        {"a refusal long after the send: retried after the refusal delay", refused, s,
         lookup(outcome::not_found, {}), long_ago, lookup_kind::refused, now + 45,
         "refusal 1 of 3"},
        {"old failures only after a refusal of re-use: a refusal",
         with(refused, [](auto& x) { x.decline_count = 1; }), s,
         lookup(outcome::declined, {payment("failed")}), now - 1, lookup_kind::refused},
        {"the last allowed refusal: parked with PortOne's message",
         with(refused, [](auto& x) { x.refusal_count = 2; }), s, lookup(outcome::not_found, {}),
         now - 1, lookup_kind::park, 0, "PG사 통신 오류"},
        {"already paid after a refusal: paid", refused, s, lookup(outcome::paid, {payment("paid")}),
         now - 1, lookup_kind::paid},
        {"no record and the subscription was paused: canceled", unknown,
         with(s, [](auto& x) { x.status = subscription_status::paused; }),
         lookup(outcome::not_found, {}), long_ago, lookup_kind::cancel},
        {"no record and the subscription moved on: canceled", unknown,
         with(s, [](auto& x) { x.next_period = 5; }), lookup(outcome::not_found, {}), long_ago,
         lookup_kind::cancel},
        {"no record and the subscription is gone: canceled", unknown, std::nullopt,
         lookup(outcome::not_found, {}), long_ago, lookup_kind::cancel},
        {"no record before the floor, subscription paused: still in doubt", unknown,
         with(s, [](auto& x) { x.status = subscription_status::paused; }),
         lookup(outcome::not_found, {}), now - 10, lookup_kind::unknown},
    };
    for (const auto& row : rows) {
        CAPTURE(row.situation);
        const auto d = scheduler::decide_after_lookup(row.c, row.s ? &*row.s : nullptr, row.l, now,
                                                      row.last_sent_at, policy(), 0.5);
        CHECK(d.kind == row.expected);
        if (row.at != 0) CHECK(d.at == row.at);
        CHECK(d.reason.find(row.reason_has) != std::string::npos);
        if (d.kind == lookup_kind::refused) {
            CHECK(d.at > now);
        }
    }
}

TEST_CASE("refusal delays grow, stay bounded and are never immediate") {
    auto p = policy();
    p.max_refusals = 50;
    p.refusal_base_delay = 60;
    p.refusal_max_delay = 3600;
    auto c = charge(charge_state::reconciling);
    c.last_refusal = "no";
    const auto l = lookup(gateway::outcome::not_found, {});
    std::int64_t previous = 0;
    for (int n = 0; n < 40; ++n) {
        c.refusal_count = n;
        for (double u : {0.0, 0.999}) {
            const auto d = scheduler::decide_after_lookup(c, nullptr, l, now, now, p, u);
            REQUIRE(d.kind == lookup_kind::refused);
            CHECK(d.at - now >= 30);
            CHECK(d.at - now <= 3600);
            if (u == 0.0) {
                CHECK(d.at - now >= previous);
                previous = d.at - now;
            }
        }
    }
}
