// The charging engine against a scripted gateway: the money invariants of DESIGN.md.
#include <doctest/doctest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <filesystem>
#include <map>

#include "domain/merchant_uid.hpp"
#include "engine_harness.hpp"
#include "fake_gateway.hpp"
#include "scheduler/engine.hpp"

using namespace billingd;
using billingd::testing::count_rows;
using billingd::testing::fake_gateway;
using billingd::testing::harness;
using billingd::testing::utc;
using domain::charge_state;
using domain::subscription_status;
namespace asio = boost::asio;

TEST_CASE("a due subscription is charged once and advanced from its anchor without drift") {
    harness h;
    const auto sub = h.add("cust", "2024-01-31");
    // 10:00 KST on Jan 31 is 01:00Z.
    auto s = h.run_at("2024-01-31T00:59:59Z");
    CHECK(s.sent == 0);
    s = h.run_at("2024-01-31T01:00:00Z");
    CHECK(s.paid == 1);
    CHECK(h.gw.paid_count(h.uid(sub, 0)) == 1);
    auto row = h.store->find_subscription(sub);
    CHECK(row->next_period == 1);
    CHECK(row->next_due_at ==
          calendar::parse_utc("2024-02-29T01:00:00Z")->time_since_epoch().count());

    h.run_at("2024-02-29T01:00:00Z");
    h.run_at("2024-03-31T01:00:00Z");
    h.run_at("2024-03-31T02:00:00Z");  // nothing new: already paid
    CHECK(h.gw.ledger.size() == 3);
    CHECK(h.state(sub, 1) == charge_state::paid);
    CHECK(h.state(sub, 2) == charge_state::paid);
    CHECK(h.store->find_subscription(sub)->next_due_at ==
          calendar::parse_utc("2024-04-30T01:00:00Z")->time_since_epoch().count());
}

TEST_CASE("the attempt is committed before the charge request leaves") {
    harness h;
    h.add("cust", "2024-01-01");
    int checked = 0;
    h.gw.on_charge = [&](const gateway::charge_request& r) {
        // Another connection sees a durable `sending` row and its request journal row.
        CHECK(count_rows(h.db_path(), "SELECT count(*) FROM charges WHERE merchant_uid = '" +
                                          r.merchant_uid + "' AND state = 'sending'") == 1);
        CHECK(count_rows(h.db_path(), "SELECT count(*) FROM attempts WHERE merchant_uid = '" +
                                          r.merchant_uid +
                                          "' AND phase = 'request' AND kind = 'charge'") >= 1);
        ++checked;
    };
    h.run_at("2024-01-01T01:00:00Z");
    CHECK(checked == 1);
}

TEST_CASE("a lost answer is reconciled before anything is resent, and never charged twice") {
    harness h;
    h.config.settle_unknown_immediately = false;
    const auto sub = h.add("lost", "2024-01-01");
    h.gw.behaviour["lost"] = "unknown_after_commit";
    const std::string uid = h.uid(sub, 0);

    auto s = h.run_at("2024-01-01T01:00:00Z");
    CHECK(s.unknown == 1);
    CHECK(h.state(sub, 0) == charge_state::unknown);
    s = h.run_at("2024-01-01T01:00:05Z");  // before the first lookup delay: nothing happens
    CHECK(h.gw.calls.size() == 1);
    s = h.run_at("2024-01-01T01:00:10Z");
    CHECK(h.gw.calls.back() == "lookup:" + uid);
    CHECK(h.state(sub, 0) == charge_state::paid);
    CHECK(h.gw.paid_count(uid) == 1);
    for (const auto& call : h.gw.calls) CHECK(call != "charge:" + uid + "#2");
    CHECK(std::count(h.gw.calls.begin(), h.gw.calls.end(), "charge:" + uid) == 1);
}

TEST_CASE(
    "a charge with no record at PortOne after an unknown outcome is resent under the same "
    "merchant_uid") {
    harness h;
    const auto sub = h.add("cust", "2024-01-01");
    const std::string uid = h.uid(sub, 0);
    // Simulate a crash after the write-ahead commit: the row says `sending` and its request
    // row is journaled at 01:00:00; nothing reached PortOne.
    h.run_at("2023-12-31T00:00:00Z");  // schedules only
    {
        auto tx = h.store->begin();
        storage::charge_record c;
        c.subscription_id = sub;
        c.period_index = 0;
        c.period_start = utc("2024-01-01T01:00:00Z").time_since_epoch().count();
        c.merchant_uid = uid;
        c.customer_uid = "cust";
        c.amount = 9900;
        c.order_name = "plan";
        c.state = charge_state::sending;
        c.created_at = c.updated_at = 1;
        const auto [row, inserted] = h.store->materialise_charge(c);
        storage::attempt_record a;
        a.at = utc("2024-01-01T01:00:00Z").time_since_epoch().count();
        a.charge_id = row.id;
        a.kind = "charge";
        a.phase = "request";
        h.store->append_attempt(a);
        h.store->set_schedule(sub, 0, std::nullopt, 1);
        tx.commit();
    }
    h.clock.set(utc("2024-01-01T01:00:05Z"));
    CHECK(h.eng().recover() == 1);
    CHECK(h.state(sub, 0) == charge_state::unknown);
    // Looked up at once, but "no record" is not trusted while the request may still be at
    // PortOne or the PG (write-ahead time + the trust floor, 222 s with default timeouts).
    h.run_at("2024-01-01T01:00:05Z");
    CHECK(h.gw.calls == std::vector<std::string>{"lookup:" + uid});
    CHECK(h.state(sub, 0) == charge_state::unknown);
    CHECK(h.store->charges_of_subscription(sub).front().next_action_at ==
          utc("2024-01-01T01:03:42Z").time_since_epoch().count());
    h.run_at("2024-01-01T01:03:41Z");
    CHECK(h.gw.calls.size() == 1);
    h.run_at("2024-01-01T01:03:42Z");
    REQUIRE(h.gw.calls.size() == 3);
    CHECK(h.gw.calls[1] == "lookup:" + uid);  // looked up again past the floor
    CHECK(h.gw.calls[2] == "charge:" + uid);  // then resent with the same merchant_uid
    CHECK(h.state(sub, 0) == charge_state::paid);
    CHECK(h.gw.paid_count(uid) == 1);
}

TEST_CASE("a charge left sending after a crash that PortOne did pay is not charged again") {
    harness h;
    const auto sub = h.add("cust", "2024-01-01");
    h.run_at("2024-01-01T01:00:00Z");
    REQUIRE(h.state(sub, 0) == charge_state::paid);
    // Pretend the outcome commit was lost: put the row back to `sending` with raw SQL.
    h.sql(
        "DROP TRIGGER charges_paid_is_final; UPDATE charges SET state='sending', "
        "next_action_at=NULL");
    h.eng().recover();
    h.run_at("2024-01-01T01:05:00Z");
    CHECK(h.state(sub, 0) == charge_state::paid);
    CHECK(h.gw.ledger.size() == 1);
    CHECK(h.gw.calls.back().rfind("lookup:", 0) == 0);
}

TEST_CASE("declines are retried on dunning days 1, 3, 5, 7, then the subscription is unpaid") {
    harness h;
    const auto sub = h.add("poor", "2024-01-01");
    h.gw.behaviour["poor"] = "decline";
    h.run_at("2024-01-01T01:00:00Z");
    CHECK(h.state(sub, 0) == charge_state::declined);
    CHECK(h.store->find_subscription(sub)->status == subscription_status::past_due);
    const char* days[] = {"2024-01-02T01:00:00Z", "2024-01-04T01:00:00Z", "2024-01-06T01:00:00Z",
                          "2024-01-08T01:00:00Z"};
    std::size_t expected = 1;
    for (const char* day : days) {
        // Nothing in between: a decline never triggers a fast retry.
        h.run_at(day);
        CHECK(h.gw.ledger.size() == ++expected);
    }
    CHECK(h.state(sub, 0) == charge_state::canceled);
    CHECK(h.store->find_subscription(sub)->status == subscription_status::unpaid);
    h.run_at("2024-03-01T01:00:00Z");
    CHECK(h.gw.ledger.size() == 5);
}

TEST_CASE("a decline followed by a successful dunning retry makes the subscription active") {
    harness h;
    const auto sub = h.add("flaky", "2024-01-01");
    h.gw.behaviour["flaky"] = "decline_first:1";
    h.run_at("2024-01-01T01:00:00Z");
    h.run_at("2024-01-01T12:00:00Z");
    CHECK(h.gw.ledger.size() == 1);
    h.run_at("2024-01-02T01:00:00Z");
    CHECK(h.state(sub, 0) == charge_state::paid);
    CHECK(h.store->find_subscription(sub)->status == subscription_status::active);
    CHECK(h.store->find_subscription(sub)->next_period == 1);
}

TEST_CASE("an unregistered billing key is verified, parked and makes the subscription past_due") {
    harness h;
    const auto sub = h.add("gone", "2024-01-01");
    h.gw.behaviour["gone"] = "unregistered";
    const auto s = h.run_at("2024-01-01T01:00:00Z");
    CHECK(s.parked == 1);
    CHECK(h.state(sub, 0) == charge_state::parked);
    CHECK(h.gw.calls.back() == "customer:gone");
    CHECK(h.store->find_subscription(sub)->status == subscription_status::past_due);
    h.run_at("2024-01-09T01:00:00Z");
    CHECK(std::count(h.gw.calls.begin(), h.gw.calls.end(), "charge:" + h.uid(sub, 0)) == 1);
}

TEST_CASE("a paid answer with a different amount is parked as an anomaly") {
    harness h;
    const auto sub = h.add("odd", "2024-01-01");
    h.gw.behaviour["odd"] = "wrong_amount";
    h.run_at("2024-01-01T01:00:00Z");
    CHECK(h.state(sub, 0) == charge_state::parked);
    auto c = h.store->charges_of_subscription(sub).front();
    CHECK(c.park_reason->find("ANOMALY") != std::string::npos);
    // The schedule moved on when the charge was created; period 1 waits for the parked one.
    CHECK(h.store->find_subscription(sub)->next_period == 1);
    const auto s = h.run_at("2024-02-01T01:00:00Z");
    CHECK(s.sent == 0);
    CHECK(h.store->charges_of_subscription(sub).size() == 1);
    CHECK_FALSE(h.store->find_subscription(sub)->next_due_at.has_value());
}

TEST_CASE("a transient failure before sending is retried with backoff") {
    harness h;
    const auto sub = h.add("net", "2024-01-01");
    h.gw.behaviour["net"] = "lost_before";
    h.run_at("2024-01-01T01:00:00Z");
    CHECK(h.state(sub, 0) == charge_state::retry_wait);
    h.gw.behaviour["net"] = "pay";
    h.run_at("2024-01-01T02:00:00Z");
    CHECK(h.state(sub, 0) == charge_state::paid);
    CHECK(h.gw.paid_count(h.uid(sub, 0)) == 1);
}

TEST_CASE(
    "missed periods beyond max_catch_up_periods are skipped with an event, oldest charged first") {
    harness h;
    h.config.max_catch_up_periods = 2;
    const auto sub = h.add("cust", "2024-01-05");
    h.run_at("2024-05-06T00:00:00Z");  // periods 0..4 are due (Jan..May 5)
    // The missed range is one event, not a row per period.
    CHECK(h.store->charges_of_subscription(sub).size() == 2);
    CHECK(h.state(sub, 3) == charge_state::paid);
    CHECK(h.state(sub, 4) == charge_state::paid);
    CHECK(h.gw.ledger.size() == 2);
    CHECK(h.gw.ledger[0].merchant_uid == h.uid(sub, 3));
    std::vector<std::string> skipped;
    for (const auto& e : h.store->events_of_subscription(sub))
        if (e.kind == "charge.skipped") skipped.push_back(e.detail.value_or(""));
    REQUIRE(skipped.size() == 1);
    CHECK(skipped[0].find("periods 0..2") != std::string::npos);
}

TEST_CASE("an anchor far in the past writes one skipped range, not a row per missed period") {
    harness h;
    storage::subscription_record r;
    r.customer_uid = "typo";
    r.amount = 1000;
    r.order_name = "daily";
    r.interval_unit = "day";
    r.anchor_date = "1900-01-01";  // billingctl refuses it without --backdate; SQL does not
    const auto sub = h.store->insert_subscription(r);
    const auto s = h.run_at("2024-01-01T01:00:00Z");
    CHECK(s.paid == 1);
    CHECK(h.store->charges_of_subscription(sub).size() == 1);
    CHECK(count_rows(h.db_path(), "SELECT count(*) FROM events") < 10);
}

TEST_CASE("one bad row never stops billing: it is flagged and the others are charged") {
    harness h;
    const auto good = h.add("good", "2024-01-01");
    // Rows written by hand with the CHECK constraints bypassed.
    const std::string bad_rows[] = {
        "interval_count = 4294967296",
        "amount = 0",
        "customer_uid = ''",
        "customer_uid = 'cr' || char(13) || char(10) || 'lf'",
        "next_period = -5",
        "customer_uid = '" + std::string(81, 'x') + "'",
        "order_name = ''",
        "amount = 1000000000000000",
        "interval_count = -1",
        "max_periods = 0",
        "currency = 'USD'",
        "customer_uid = CAST(x'c328' AS TEXT)",
        "uid_key = 'UPPER'",
    };
    std::vector<std::int64_t> bad;
    for (const auto& column : bad_rows) {
        bad.push_back(h.add("b" + std::to_string(bad.size()), "2024-01-01"));
        h.sql(
            "PRAGMA ignore_check_constraints = 1; DROP TRIGGER IF EXISTS "
            "subscriptions_uid_key_is_fixed; UPDATE subscriptions SET " +
            std::string{column} + " WHERE id = " + std::to_string(bad.back()));
    }
    const auto s = h.run_at("2024-01-01T01:00:00Z");
    CHECK(h.state(good, 0) == charge_state::paid);
    CHECK(s.paid == 1);
    for (std::size_t i = 0; i < bad.size(); ++i) {
        CAPTURE(bad_rows[i]);
        const auto row = h.store->find_subscription(bad[i]);
        REQUIRE(row);
        CHECK(row->needs_attention.has_value());
        CHECK(h.store->charges_of_subscription(bad[i]).empty());
    }
    // The next pass does not trip over them either.
    h.add("later", "2024-01-02");
    CHECK(h.run_at("2024-01-02T01:00:00Z").paid == 1);
}

TEST_CASE("at most max_in_flight requests, never two for one merchant_uid") {
    harness h;
    h.config.max_in_flight = 3;
    for (int i = 0; i < 40; ++i) h.add("c" + std::to_string(i), "2024-01-01");
    const auto s = h.run_at("2024-01-01T01:00:00Z");
    CHECK(s.paid == 40);
    CHECK(h.gw.max_in_flight_seen <= 3);
    CHECK(h.gw.max_in_flight_seen >= 2);
    CHECK_FALSE(h.gw.concurrent_same_uid);
}

TEST_CASE("the amount guardrail parks an oversized charge without sending it") {
    harness h;
    h.config.max_amount_per_charge = 100000;
    const auto big = h.add("rich", "2024-01-01", 5'000'000);
    const auto ok = h.add("cust", "2024-01-01", 9900);
    h.run_at("2024-01-01T01:00:00Z");
    CHECK(h.state(big, 0) == charge_state::parked);
    CHECK(h.state(ok, 0) == charge_state::paid);
    CHECK(h.gw.ledger.size() == 1);
}

TEST_CASE("paused and canceled subscriptions are not charged; max_periods ends a subscription") {
    harness h;
    const auto paused = h.add("p", "2024-01-01");
    h.store->set_status(paused, subscription_status::paused, 0);
    const auto limited = h.add("l", "2024-01-01", 1000, "day");
    h.sql("UPDATE subscriptions SET max_periods = 2 WHERE id = " + std::to_string(limited));
    h.run_at("2024-01-01T01:00:00Z");
    h.run_at("2024-01-02T01:00:00Z");
    h.run_at("2024-01-03T01:00:00Z");
    CHECK(h.store->charges_of_subscription(paused).empty());
    CHECK(h.store->charges_of_subscription(limited).size() == 2);
    CHECK(h.store->find_subscription(limited)->status == subscription_status::ended);
}

TEST_CASE("a subscription with an unknown time zone is flagged, not crashed on") {
    harness h;
    storage::subscription_record s;
    s.customer_uid = "tz";
    s.amount = 100;
    s.order_name = "plan";
    s.anchor_date = "2024-01-01";
    s.time_zone = "Mars/Olympus";
    const auto id = h.store->insert_subscription(s);
    h.run_at("2024-01-01T01:00:00Z");
    CHECK(h.store->find_subscription(id)->needs_attention.has_value());
    CHECK(h.gw.calls.empty());
}

TEST_CASE("every request and answer is journaled") {
    harness h;
    const auto sub = h.add("cust", "2024-01-01");
    h.run_at("2024-01-01T01:00:00Z");
    const auto c = h.store->charges_of_subscription(sub).front();
    const auto rows = h.store->attempts_of_charge(c.id);
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].phase == "request");
    CHECK(rows[1].phase == "answer");
    CHECK(rows[1].request_id == rows[0].id);
    CHECK(rows[1].outcome == std::optional<std::string>{"paid"});
    CHECK(rows[1].imp_uid == c.imp_uid);
}

TEST_CASE("the circuit breaker stops new charges while PortOne fails and resumes after a probe") {
    harness h;
    h.config.max_in_flight = 1;
    h.config.breaker_window = 10;
    h.config.breaker_min_calls = 5;
    h.config.breaker_open_for = std::chrono::seconds{30};
    std::vector<std::int64_t> subs;
    for (int i = 0; i < 30; ++i) subs.push_back(h.add("c" + std::to_string(i), "2024-01-01"));
    h.gw.down = true;
    auto s = h.run_at("2024-01-01T01:00:00Z");
    const auto charges_sent = [&] {
        return std::count_if(h.gw.calls.begin(), h.gw.calls.end(),
                             [](const std::string& c) { return c.rfind("charge:", 0) == 0; });
    };
    CHECK(charges_sent() == 5);  // opened after five failures out of five
    CHECK(h.eng().breaker().open);
    CHECK(s.work_left);

    h.run_at("2024-01-01T01:00:10Z");  // lookups of the unknowns go on; no new charge
    CHECK(charges_sent() == 5);
    CHECK(std::count_if(h.gw.calls.begin(), h.gw.calls.end(),
                        [](const std::string& c) { return c.rfind("lookup:", 0) == 0; }) >= 5);
    CHECK(h.eng().next_wakeup() >= calendar::parse_utc("2024-01-01T01:00:30Z"));

    h.gw.down = false;
    h.run_at("2024-01-01T01:00:31Z");  // a probe succeeds, sending resumes
    CHECK_FALSE(h.eng().breaker().open);
    h.run_at("2024-01-01T01:10:00Z");  // the 503s are resent once past the trust floor
    for (auto sub : subs) {
        CHECK(h.state(sub, 0) == charge_state::paid);
        CHECK(h.gw.paid_count(h.uid(sub, 0)) == 1);
    }
}

TEST_CASE("a row an operator changes while its request is on the wire is not overwritten") {
    harness h;
    const auto sub = h.add("cust", "2024-01-01");
    h.gw.on_charge = [&](const gateway::charge_request&) {
        h.sql("UPDATE charges SET state = 'parked', park_reason = 'operator'");
    };
    std::vector<std::string> decisions;
    h.eng().on_decision([&](const scheduler::decision& d) { decisions.push_back(d.what); });
    h.run_at("2024-01-01T01:00:00Z");
    CHECK(h.state(sub, 0) == charge_state::parked);
    const auto c = h.store->charges_of_subscription(sub).front();
    const auto rows = h.store->attempts_of_charge(c.id);
    REQUIRE(rows.size() == 2);
    CHECK(rows[1].outcome == std::optional<std::string>{"paid"});  // the answer is kept
    CHECK(std::find(decisions.begin(), decisions.end(), "superseded") != decisions.end());
    // Period 1 waits for the parked period 0: nothing marked the subscription active or paid.
    CHECK(h.store->find_subscription(sub)->next_period == 1);
    CHECK(h.store->find_subscription(sub)->status == subscription_status::active);
}

TEST_CASE("count guardrails hold charges back with an event and release them later") {
    harness h;
    h.config.max_charges_per_hour = 5;
    std::vector<std::int64_t> subs;
    for (int i = 0; i < 8; ++i) subs.push_back(h.add("c" + std::to_string(i), "2024-01-01"));
    auto s = h.run_at("2024-01-01T01:00:00Z");
    CHECK(s.paid == 5);
    CHECK(s.work_left);
    CHECK(h.eng().next_wakeup() == calendar::parse_utc("2024-01-01T02:00:00Z"));
    storage::statement ev(
        h.store->db(), "SELECT count(*) FROM events WHERE kind = 'guardrail.max_charges_per_hour'");
    REQUIRE(ev.step());
    CHECK(ev.int64(0) >= 1);
    s = h.run_at("2024-01-01T01:30:00Z");
    CHECK(s.paid == 0);
    s = h.run_at("2024-01-01T02:00:01Z");
    CHECK(s.paid == 3);
    for (auto sub : subs) CHECK(h.state(sub, 0) == charge_state::paid);
}

TEST_CASE("max_charges_per_pass pauses the pass and the rest is charged by the next one") {
    harness h;
    h.config.max_charges_per_pass = 3;
    for (int i = 0; i < 7; ++i) h.add("c" + std::to_string(i), "2024-01-01");
    auto s = h.run_at("2024-01-01T01:00:00Z");  // run_until_idle stops at the guardrail
    CHECK(s.paid == 3);
    CHECK(s.work_left);
    s = h.run_at("2024-01-01T01:00:01Z");
    CHECK(s.paid == 3);
    s = h.run_at("2024-01-01T01:00:02Z");
    CHECK(s.paid == 1);
    CHECK(h.gw.ledger.size() == 7);
}

TEST_CASE("quiet hours hold a due charge until the window closes") {
    harness h;
    h.config.quiet.start = *calendar::parse_time_of_day("09:50");
    h.config.quiet.end = *calendar::parse_time_of_day("10:10");
    h.config.quiet_zone = calendar::find_zone("Asia/Seoul");
    const auto sub = h.add("cust", "2024-01-01");  // due 10:00 KST, inside the window
    auto s = h.run_at("2024-01-01T01:00:00Z");
    CHECK(s.sent == 0);
    // No charge row yet (it is created as it is sent): the period is due when the window ends.
    CHECK(h.store->charges_of_subscription(sub).empty());
    CHECK(h.store->find_subscription(sub)->next_due_at ==
          calendar::parse_utc("2024-01-01T01:10:00Z")->time_since_epoch().count());
    s = h.run_at("2024-01-01T01:10:00Z");
    CHECK(s.paid == 1);
}

TEST_CASE("a charge time inside a DST gap is charged at the shifted instant") {
    harness h;
    storage::subscription_record r;
    r.customer_uid = "ny";
    r.amount = 1500;
    r.order_name = "plan";
    r.interval_unit = "day";
    r.anchor_date = "2024-03-09";
    r.charge_time = "02:30";
    r.time_zone = "America/New_York";
    const auto sub = h.store->insert_subscription(r);
    h.run_at("2024-03-09T07:30:00Z");  // 02:30 EST
    CHECK(h.state(sub, 0) == charge_state::paid);
    // Mar 10 02:30 does not exist: 03:30 EDT = 07:30Z; one minute before, nothing is due.
    auto s = h.run_at("2024-03-10T07:29:00Z");
    CHECK(s.sent == 0);
    h.run_at("2024-03-10T07:30:00Z");
    CHECK(h.state(sub, 1) == charge_state::paid);
}

TEST_CASE("a period whose payment was cancelled at PortOne is parked, not dunned") {
    harness h;
    h.config.settle_unknown_immediately = false;
    const auto sub = h.add("lost", "2024-01-01");
    h.gw.behaviour["lost"] = "unknown_after_commit";
    const std::string uid = h.uid(sub, 0);
    h.run_at("2024-01-01T01:00:00Z");  // paid at PortOne, answer lost
    REQUIRE(h.gw.ledger.size() == 1);
    h.gw.ledger[0].status = "cancelled";  // the merchant refunded it before the lookup
    h.run_at("2024-01-01T01:00:10Z");
    CHECK(h.state(sub, 0) == charge_state::parked);
    CHECK(std::count(h.gw.calls.begin(), h.gw.calls.end(), "charge:" + uid) == 1);
    h.run_at("2024-01-03T01:00:00Z");  // no dunning retry either
    CHECK(std::count(h.gw.calls.begin(), h.gw.calls.end(), "charge:" + uid) == 1);
}

TEST_CASE("after stop(), nothing new is written ahead and the request on the wire finishes") {
    harness h;
    h.config.max_in_flight = 1;
    for (int i = 0; i < 6; ++i) h.add("c" + std::to_string(i), "2024-01-01");
    h.gw.on_charge = [&](const gateway::charge_request&) { h.eng().stop(); };
    h.run_at("2024-01-01T01:00:00Z");
    CHECK(h.gw.ledger.size() == 1);  // the one on the wire finishes and is journaled
    CHECK(h.state(1, 0) == charge_state::paid);
    // Never written ahead: no charge row, the subscriptions still due.
    for (std::int64_t sub = 2; sub <= 6; ++sub) {
        CHECK(h.store->charges_of_subscription(sub).empty());
        CHECK(h.store->find_subscription(sub)->next_period == 0);
    }
    CHECK(count_rows(h.db_path(), "SELECT count(*) FROM attempts WHERE phase = 'request'") == 1);
}

TEST_CASE("only what goes on the wire is written ahead: a crash leaves at most max_in_flight") {
    harness h;
    h.config.max_in_flight = 3;
    h.config.batch_size = 256;
    for (int i = 0; i < 40; ++i) h.add("c" + std::to_string(i), "2024-01-01");
    std::int64_t most_sending = 0;
    h.gw.on_charge = [&](const gateway::charge_request&) {
        most_sending = std::max(
            most_sending,
            count_rows(h.db_path(), "SELECT count(*) FROM charges WHERE state = 'sending'"));
    };
    h.run_at("2024-01-01T01:00:00Z");
    CHECK(most_sending >= 1);
    CHECK(most_sending <= 3);
    CHECK(h.gw.ledger.size() == 40);
}

TEST_CASE("if the write-ahead commit fails, nothing of that batch is sent") {
    harness h;
    for (int i = 0; i < 6; ++i) h.add("c" + std::to_string(i), "2024-01-01");
    h.fail_once_at("before_write_ahead_commit");
    CHECK_THROWS_AS(h.run_at("2024-01-01T01:00:00Z"), storage::error);
    CHECK(h.gw.calls.empty());
    h.run_at("2024-01-01T01:00:01Z");
    CHECK(h.gw.calls.size() == 6);
    for (std::int64_t sub = 1; sub <= 6; ++sub) CHECK(h.state(sub, 0) == charge_state::paid);
    testing::check_one_request_per_uid(h.gw);
}

TEST_CASE("if an outcome commit fails, sending stops and the rows are reconciled next pass") {
    harness h;
    h.config.max_in_flight = 2;
    for (int i = 0; i < 10; ++i) h.add("c" + std::to_string(i), "2024-01-01");
    h.fail_once_at("before_outcome_commit");
    CHECK_THROWS_AS(h.run_at("2024-01-01T01:00:00Z"), storage::error);
    const auto sent_in_failed_pass = h.gw.ledger.size();
    CHECK(sent_in_failed_pass <= 2);   // only what was already on the wire
    h.run_at("2024-01-01T01:00:10Z");  // recovers: looks the lost answers up, sends the rest
    h.run_at("2024-01-01T01:00:20Z");
    for (std::int64_t sub = 1; sub <= 10; ++sub) {
        CHECK(h.state(sub, 0) == charge_state::paid);
        CHECK(h.gw.paid_count(h.uid(sub, 0)) == 1);
    }
    CHECK(h.gw.ledger.size() == 10);
}

TEST_CASE("a lookup that finds only earlier declines means the latest attempt never arrived") {
    harness h;
    h.config.settle_unknown_immediately = true;
    const auto sub = h.add("flaky", "2024-01-01");
    h.gw.behaviour["flaky"] = "decline_first:1";
    h.run_at("2024-01-01T01:00:00Z");  // declined once
    REQUIRE(h.state(sub, 0) == charge_state::declined);
    h.gw.down = true;  // the dunning retry gets a 503 and never reaches PortOne
    h.gw.yields = 0;
    h.gw.on_charge = [&](const gateway::charge_request&) {};
    h.clock.set(utc("2024-01-02T01:00:00Z"));
    {
        asio::io_context io;
        auto f = asio::co_spawn(io, h.eng().run_pass(), asio::use_future);
        io.run();
        f.get();
    }
    h.gw.down = false;
    h.run_at("2024-01-02T01:00:01Z");  // only the first decline, but the 503 may be in progress
    CHECK(h.state(sub, 0) == charge_state::unknown);
    h.run_at("2024-01-02T01:10:00Z");  // past the trust floor: resend, paid
    const auto c = h.store->charges_of_subscription(sub).front();
    CHECK(c.state == charge_state::paid);
    CHECK(c.decline_count == 1);
}

TEST_CASE("lowering max_periods by hand ends the subscription instead of looping") {
    harness h;
    const auto sub = h.add("c", "2024-01-01", 1000, "day");
    h.run_at("2024-01-03T01:00:00Z");  // catch-up charges period 2
    h.sql("UPDATE subscriptions SET max_periods = 1");
    h.run_at("2024-01-05T01:00:00Z");
    CHECK(h.store->find_subscription(sub)->status == subscription_status::ended);
}

TEST_CASE("an operator's retry of a charge parked in doubt is looked up before it is resent") {
    harness h;
    h.config.settle_unknown_immediately = true;
    h.config.unknown.give_up_after = std::chrono::seconds{1};
    const auto sub = h.add("slow", "2024-01-01");
    h.gw.behaviour["slow"] = "ready";  // PortOne keeps saying "ready"
    h.run_at("2024-01-01T01:00:00Z");
    h.run_at("2024-01-01T02:00:00Z");
    REQUIRE(h.state(sub, 0) == charge_state::parked);
    const auto calls_before = h.gw.calls.size();
    // billingctl charge retry: parked -> retry_wait, due now.
    h.sql("UPDATE charges SET state = 'retry_wait', next_action_at = 0");
    h.gw.ledger[0].status = "paid";  // the PG finished after all
    h.run_at("2024-01-01T03:00:00Z");
    REQUIRE(h.gw.calls.size() > calls_before);
    CHECK(h.gw.calls[calls_before].rfind("lookup:", 0) == 0);
    CHECK(h.state(sub, 0) == charge_state::paid);
    CHECK(h.gw.ledger.size() == 1);
}

TEST_CASE("a configuration error halts charging and the loop sleeps instead of spinning") {
    harness h;
    h.config.max_in_flight = 1;
    h.add("a", "2024-01-01");
    h.add("b", "2024-01-01");
    h.gw.behaviour["a"] = "bad_credentials";
    h.gw.behaviour["b"] = "bad_credentials";
    const auto s = h.run_at("2024-01-01T01:00:00Z");
    CHECK(s.halted);
    CHECK(h.eng().halted());
    CHECK(h.gw.calls.size() == 1);  // nothing more is sent once halted
    CHECK(h.eng().next_wakeup() == utc("2024-01-01T01:05:00Z"));  // the probe, not a spin
    CHECK(h.state(1, 0) == charge_state::retry_wait);             // not processed, kept for later
    CHECK(h.store->charges_of_subscription(2).empty());           // never written ahead

    // Still refused at the probe: renewed, and again only one request went out.
    h.run_at("2024-01-01T01:05:00Z");
    CHECK(h.gw.calls.size() == 2);
    CHECK(h.eng().halted());
    CHECK(h.eng().next_wakeup() == utc("2024-01-01T01:10:00Z"));

    // The operator fixed the credentials: the next probe lifts the halt without a restart.
    h.gw.behaviour.clear();
    h.run_at("2024-01-01T01:10:00Z");
    CHECK_FALSE(h.eng().halted());
    CHECK(h.state(1, 0) == charge_state::paid);
    CHECK(h.state(2, 0) == charge_state::paid);
}

// --- the second design: each of these failed on the first engine ---

TEST_CASE("two databases on one PortOne account never share a merchant_uid") {
    harness a;
    harness b;
    // One PortOne account: b's engine talks to a's gateway.
    b.engine = std::make_unique<scheduler::engine>(*b.store, a.gw, b.clock, b.config);
    const auto sub_a = a.add("cust_a", "2024-01-01");
    const auto sub_b = b.add("cust_b", "2024-01-01");
    REQUIRE(sub_a == sub_b);  // both databases start their ids at 1
    a.run_at("2024-01-01T01:00:00Z");
    b.run_at("2024-01-01T01:00:00Z");
    CHECK(a.uid(sub_a, 0) != b.uid(sub_b, 0));
    CHECK(a.gw.ledger.size() == 2);  // both customers were charged
    CHECK(a.gw.paid_count(a.uid(sub_a, 0)) == 1);
    CHECK(a.gw.paid_count(b.uid(sub_b, 0)) == 1);
    CHECK(a.state(sub_a, 0) == charge_state::paid);
    CHECK(b.state(sub_b, 0) == charge_state::paid);
    CHECK(b.store->charges_of_subscription(sub_b).front().imp_uid !=
          a.store->charges_of_subscription(sub_a).front().imp_uid);
}

TEST_CASE("a subscription paused while its charge waits for a worker slot is not charged") {
    harness h;
    h.config.max_in_flight = 1;
    const auto first = h.add("c1", "2024-01-01");
    h.add("c2", "2024-01-01");
    const auto third = h.add("c3", "2024-01-01");
    bool paused = false;
    h.gw.on_charge = [&](const gateway::charge_request&) {
        if (paused) return;
        paused = true;  // billingctl subscription pause, while the first charge is on the wire
        h.sql("UPDATE subscriptions SET status = 'paused' WHERE id = " + std::to_string(third));
    };
    h.run_at("2024-01-01T01:00:00Z");
    CHECK(h.state(first, 0) == charge_state::paid);
    CHECK(std::count(h.gw.calls.begin(), h.gw.calls.end(), "charge:" + h.uid(third, 0)) == 0);
    CHECK(h.store->charges_of_subscription(third).empty());  // re-read before it was created
    CHECK(h.gw.ledger.size() == 2);
}

TEST_CASE("a period the subscription moved past is looked up and canceled, never sent") {
    harness h;
    const auto sub = h.add("flaky", "2024-01-01");
    h.gw.behaviour["flaky"] = "decline";
    h.run_at("2024-01-01T01:00:00Z");
    REQUIRE(h.state(sub, 0) == charge_state::declined);
    // billingctl subscription resume moves it on to the next period while period 0 waits for
    // its dunning day.
    h.sql("UPDATE subscriptions SET next_period = 2, next_due_at = 1767229200");
    h.run_at("2024-01-02T01:00:00Z");
    CHECK(std::count(h.gw.calls.begin(), h.gw.calls.end(), "charge:" + h.uid(sub, 0)) == 1);
    CHECK(h.gw.calls.back() == "lookup:" + h.uid(sub, 0));
    CHECK(h.state(sub, 0) == charge_state::canceled);
}

TEST_CASE("PortOne refusing re-use of a failed merchant_uid: bounded retries, then parked") {
    harness h;
    h.config.max_refusals = 3;
    h.gw.refuse_failed_reuse = true;
    const auto sub = h.add("flaky", "2024-01-01");
    h.gw.behaviour["flaky"] = "decline_first:1";
    h.run_at("2024-01-01T01:00:00Z");
    REQUIRE(h.state(sub, 0) == charge_state::declined);
    // Dunning day 1 and the hours after it: every resend is refused ("already used").
    for (int hour = 0; hour < 6; ++hour)
        h.run_at(("2024-01-02T0" + std::to_string(1 + hour) + ":00:00Z").c_str());
    const auto charges_sent =
        std::count(h.gw.calls.begin(), h.gw.calls.end(), "charge:" + h.uid(sub, 0));
    CHECK(charges_sent == 1 + 3);  // the decline, then three refusals
    const auto c = h.store->charges_of_subscription(sub).front();
    CHECK(c.state == charge_state::parked);
    CHECK(c.refusal_count == 3);
    CHECK(c.park_reason.value_or("").find("이미 주문이 이루어진 건입니다") != std::string::npos);
    CHECK(c.park_reason.value_or("").find("refused") != std::string::npos);
}

TEST_CASE("an HTTP 400 is looked up before anything is decided, then counted as a refusal") {
    harness h;
    h.config.max_refusals = 2;
    const auto sub = h.add("pgdown", "2024-01-01");
    h.gw.behaviour["pgdown"] = "pg_failure";
    h.run_at("2024-01-01T01:00:00Z");
    const auto c = h.store->charges_of_subscription(sub).front();
    CHECK(h.gw.calls.size() == 2);
    CHECK(h.gw.calls[1] == "lookup:" + h.uid(sub, 0));
    CHECK(c.state == charge_state::retry_wait);
    CHECK(c.refusal_count == 1);
    CHECK(*c.next_action_at > utc("2024-01-01T01:00:00Z").time_since_epoch().count());
    h.run_at("2024-01-01T03:00:00Z");
    CHECK(h.state(sub, 0) == charge_state::parked);
}

TEST_CASE("the hourly cap holds across restarts") {
    harness h;
    h.config.max_charges_per_hour = 5;
    for (int i = 0; i < 8; ++i) h.add("c" + std::to_string(i), "2024-01-01");
    auto s = h.run_at("2024-01-01T01:00:00Z");
    CHECK(s.paid == 5);
    h.engine.reset();  // a restart: a new process with nothing in memory
    s = h.run_at("2024-01-01T01:10:00Z");
    CHECK(s.paid == 0);
    CHECK(s.work_left);
    h.engine.reset();
    s = h.run_at("2024-01-01T02:00:00Z");
    CHECK(s.paid == 3);
}

TEST_CASE("HTTP-200 refusals (a PG outage) open the circuit breaker") {
    harness h;
    h.config.max_in_flight = 1;
    h.config.breaker_window = 10;
    h.config.breaker_min_calls = 5;
    for (int i = 0; i < 12; ++i) {
        const auto customer = "c" + std::to_string(i);
        h.gw.behaviour[customer] = "pg_failure";
        h.add(customer, "2024-01-01");
    }
    h.run_at("2024-01-01T01:00:00Z");
    CHECK(h.eng().breaker().open);
    const auto charges = std::count_if(h.gw.calls.begin(), h.gw.calls.end(),
                                       [](const auto& c) { return c.rfind("charge:", 0) == 0; });
    CHECK(charges < 12);
}

TEST_CASE("a breaker probe cut off by a failed pass does not keep the breaker shut") {
    harness h;
    h.config.max_in_flight = 1;
    h.config.breaker_window = 10;
    h.config.breaker_min_calls = 5;
    bool armed = false;
    h.config.at_step = [&](std::string_view step) {
        if (armed && step == "after_write_ahead_commit") {
            armed = false;
            throw storage::error("disk I/O error");
        }
    };
    for (int i = 0; i < 12; ++i) h.add("c" + std::to_string(i), "2024-01-01");
    h.gw.down = true;
    h.run_at("2024-01-01T01:00:00Z");
    REQUIRE(h.eng().breaker().open);
    h.gw.down = false;
    armed = true;  // the probe is written ahead, then the pass fails before it is sent
    CHECK_THROWS_AS(h.run_at("2024-01-01T01:00:31Z"), storage::error);
    h.run_at("2024-01-01T01:00:32Z");
    CHECK_FALSE(h.eng().breaker().open);
}

TEST_CASE("a charge answered 404 (base_url points elsewhere) halts instead of resending") {
    harness h;
    h.config.max_in_flight = 1;
    h.config.settle_unknown_immediately = true;
    for (int i = 0; i < 3; ++i) {
        h.gw.behaviour["w" + std::to_string(i)] = "wrong_endpoint";
        h.add("w" + std::to_string(i), "2024-01-01");
    }
    const auto s = h.run_at("2024-01-01T01:00:00Z");
    CHECK(s.halted);
    CHECK(h.gw.calls.size() == 1);
    CHECK(h.state(1, 0) == charge_state::unknown);  // looked up once the halt lifts
}

TEST_CASE("a paid answer for a charge canceled meanwhile is parked, not only logged") {
    harness h;
    const auto sub = h.add("cust", "2024-01-01");
    h.gw.on_charge = [&](const gateway::charge_request&) {
        h.sql("UPDATE charges SET state = 'canceled', next_action_at = NULL");
    };
    h.run_at("2024-01-01T01:00:00Z");
    const auto c = h.store->charges_of_subscription(sub).front();
    CHECK(c.state == charge_state::parked);
    CHECK(c.park_reason.value_or("").find("PortOne reports paid") != std::string::npos);
    CHECK(c.imp_uid.has_value());
}

TEST_CASE("nothing is charged before trial_end_at") {
    harness h;
    storage::subscription_record r;
    r.customer_uid = "trial";
    r.amount = 9900;
    r.order_name = "plan";
    r.interval_unit = "month";
    r.anchor_date = "2024-01-01";
    r.status = subscription_status::trialing;
    r.trial_end_at = utc("2024-01-15T01:00:00Z").time_since_epoch().count();
    const auto sub = h.store->insert_subscription(r);
    h.run_at("2024-01-01T01:00:00Z");
    h.run_at("2024-01-14T23:00:00Z");
    CHECK(h.gw.calls.empty());
    h.run_at("2024-01-15T01:00:00Z");
    CHECK(h.state(sub, 0) == charge_state::paid);
    CHECK(h.store->find_subscription(sub)->status == subscription_status::active);
}

TEST_CASE(
    "a subscription made billable again by hand after its period was canceled is rescheduled") {
    harness h;
    const auto sub = h.add("cust", "2024-01-01");
    h.run_at("2023-12-31T00:00:00Z");
    h.store->set_status(sub, subscription_status::paused, 0);
    h.run_at("2024-01-01T01:00:00Z");  // period 0 comes due while paused: nothing
    // Period 0 was canceled (e.g. by billingctl cancel); then someone reactivates by SQL.
    h.sql(
        "INSERT INTO charges (subscription_id, period_index, period_start, merchant_uid, "
        "customer_uid, amount, currency, order_name, state, created_at, updated_at) VALUES (1, 0, "
        "0, 'x-0123456789abcdef-p0', 'cust', 9900, 'KRW', 'plan', 'canceled', 0, 0);"
        "UPDATE subscriptions SET status = 'active', next_due_at = NULL");
    h.run_at("2024-01-01T02:00:00Z");
    const auto s = h.store->find_subscription(sub);
    CHECK(s->next_period == 1);
    CHECK(s->next_due_at == utc("2024-02-01T01:00:00Z").time_since_epoch().count());
    h.run_at("2024-02-01T01:00:00Z");
    CHECK(h.state(sub, 1) == charge_state::paid);
}

TEST_CASE("a pass ends when more due charges than batch_size are all held behind a gate") {
    harness h;
    h.config.max_in_flight = 64;
    h.config.batch_size = 8;
    h.config.max_charges_per_hour = 3;
    for (int i = 0; i < 40; ++i) h.add("c" + std::to_string(i), "2024-01-01");
    const auto s = h.run_at("2024-01-01T01:00:00Z");  // must return, not spin
    CHECK(s.paid == 3);
    CHECK(s.work_left);
}

TEST_CASE("a charge held behind a gate is not sent once its subscription cancels at period end") {
    harness h;
    h.config.max_charges_per_hour = 1;
    const auto first = h.add("c1", "2024-01-01");
    const auto second = h.add("c2", "2024-01-01");
    h.run_at("2024-01-01T01:00:00Z");
    REQUIRE(h.state(first, 0) == charge_state::paid);
    REQUIRE(h.store->charges_of_subscription(second).empty());  // held by the hourly cap
    h.store->set_cancel_at_period_end(second, true, 0);         // billingctl cancel --at-period-end
    h.run_at("2024-01-01T02:00:01Z");
    CHECK(h.store->charges_of_subscription(second).empty());
    CHECK(h.store->find_subscription(second)->status == subscription_status::canceled);
    CHECK(std::count(h.gw.calls.begin(), h.gw.calls.end(), "charge:" + h.uid(second, 0)) == 0);
}

TEST_CASE("a late decline of a period the subscription moved past leaves the subscription alone") {
    harness h;
    h.config.settle_unknown_immediately = true;
    h.config.dunning.retry_after = {std::chrono::days{1}};
    h.config.dunning.when_exhausted = domain::dunning_exhausted_action::cancel;
    const auto sub = h.add("lost", "2024-01-01");
    h.gw.behaviour["lost"] = "decline_lost";  // declined every time, the answer lost
    h.run_at("2024-01-01T01:00:00Z");
    REQUIRE(h.state(sub, 0) == charge_state::declined);
    h.gw.yields = 0;
    // The dunning retry's answer is lost; before its lookup, the operator pauses and resumes:
    // the subscription moves on to period 2 and is active.
    h.gw.on_charge = [&](const gateway::charge_request&) {
        h.sql("UPDATE subscriptions SET status = 'active', next_period = 2");
        h.gw.on_charge = nullptr;
    };
    h.run_at("2024-01-02T01:00:00Z");
    h.run_at("2024-01-02T02:00:00Z");
    const auto c = h.store->charges_of_subscription(sub).front();
    CHECK(c.decline_count == 2);  // the second decline was found and recorded
    CHECK(c.state == charge_state::canceled);
    CHECK(h.store->find_subscription(sub)->status == subscription_status::active);
}

TEST_CASE("a halt of charging only lets lookups go on, and a lookup does not lift it") {
    harness h;
    h.config.max_in_flight = 1;
    h.config.settle_unknown_immediately = true;
    const auto slow = h.add("slow", "2024-01-01");
    const auto broken = h.add("broken", "2024-01-01");
    h.gw.behaviour["slow"] = "ready";             // stays in doubt: looked up again and again
    h.gw.behaviour["broken"] = "module_missing";  // the account's billing module: charges only
    h.run_at("2024-01-01T01:00:00Z");
    REQUIRE(h.eng().halted());
    REQUIRE(h.state(slow, 0) == charge_state::unknown);
    const auto lookups = [&] {
        return std::count(h.gw.calls.begin(), h.gw.calls.end(), "lookup:" + h.uid(slow, 0));
    };
    const auto before = lookups();
    h.run_at("2024-01-01T01:01:00Z");  // its next lookup is due; the halt holds charges only
    CHECK(lookups() > before);
    CHECK(h.eng().halted());
    CHECK(h.state(broken, 0) == charge_state::retry_wait);
    h.gw.behaviour["broken"] = "pay";  // the billing module was set up
    h.run_at("2024-01-01T01:05:00Z");  // the probe is a charge
    CHECK_FALSE(h.eng().halted());
    CHECK(h.state(broken, 0) == charge_state::paid);
}

TEST_CASE("refusals of re-used merchant_uids do not open the breaker for healthy customers") {
    harness h;
    h.config.max_in_flight = 2;
    h.config.breaker_window = 10;
    h.config.breaker_min_calls = 5;
    h.gw.refuse_failed_reuse = true;
    std::vector<std::int64_t> flaky, healthy;
    for (int i = 0; i < 8; ++i) {
        const auto customer = "flaky" + std::to_string(i);
        h.gw.behaviour[customer] = "decline_first:1";
        flaky.push_back(h.add(customer, "2024-01-01"));
    }
    h.run_at("2024-01-01T01:00:00Z");  // all declined
    for (int i = 0; i < 8; ++i) healthy.push_back(h.add("ok" + std::to_string(i), "2024-01-02"));
    h.run_at("2024-01-02T01:00:00Z");  // dunning resends refused, healthy charges due
    CHECK_FALSE(h.eng().breaker().open);
    for (auto sub : healthy) CHECK(h.state(sub, 0) == charge_state::paid);
}

// --- what a charge costs the database ---

TEST_CASE("a paid charge writes six rows: four inserted, two updated, no event for sending") {
    harness h;
    const auto sub = h.add("cust", "2024-01-01");
    h.run_at("2024-01-01T01:00:00Z");  // period 0, and the new row's first schedule
    h.sql(
        "CREATE TABLE counted (tbl TEXT PRIMARY KEY, n INTEGER NOT NULL);"
        "INSERT INTO counted VALUES ('charges', 0), ('subscriptions', 0);"
        "CREATE TRIGGER count_charges AFTER UPDATE ON charges "
        "BEGIN UPDATE counted SET n = n + 1 WHERE tbl = 'charges'; END;"
        "CREATE TRIGGER count_subscriptions AFTER UPDATE ON subscriptions "
        "BEGIN UPDATE counted SET n = n + 1 WHERE tbl = 'subscriptions'; END;");
    const auto rows = [&](const char* table) {
        return count_rows(h.db_path(), std::string{"SELECT count(*) FROM "} + table);
    };
    const auto charges = rows("charges"), attempts = rows("attempts"), events = rows("events");
    const auto s = h.run_at("2024-02-01T01:00:00Z");
    REQUIRE(s.paid == 1);
    CHECK(h.state(sub, 1) == charge_state::paid);
    CHECK(rows("charges") - charges == 1);
    CHECK(rows("attempts") - attempts == 2);  // the request and its answer
    CHECK(rows("events") - events == 1);      // charge.paid
    CHECK(count_rows(h.db_path(), "SELECT n FROM counted WHERE tbl = 'charges'") == 1);
    CHECK(count_rows(h.db_path(), "SELECT n FROM counted WHERE tbl = 'subscriptions'") == 1);
    CHECK(count_rows(h.db_path(),
                     "SELECT count(*) FROM events WHERE kind = 'charge.paid' AND "
                     "json_extract(data, '$.period_index') = 1 AND "
                     "json_extract(data, '$.amount') = 9900 AND "
                     "json_extract(data, '$.period_end') = 1709254800") == 1);
    // The paid answer matched its request: its raw body is not kept.
    CHECK(count_rows(h.db_path(),
                     "SELECT count(*) FROM attempts WHERE phase = 'answer' AND "
                     "outcome = 'paid' AND raw_answer IS NOT NULL") == 0);
}

TEST_CASE("a period that falls due while the one before is open waits, then is charged once") {
    harness h;
    h.config.dunning.retry_after = {std::chrono::days{2}, std::chrono::days{4}};
    const auto sub = h.add("flaky", "2024-01-01", 9900, "day");
    h.gw.behaviour["flaky"] = "decline_first:2";
    h.run_at("2024-01-01T01:00:00Z");
    REQUIRE(h.state(sub, 0) == charge_state::declined);
    // Day 1: period 1 is due, period 0 waits for its dunning day: nothing new is created.
    auto s = h.run_at("2024-01-02T01:00:00Z");
    CHECK(s.sent == 0);
    CHECK(h.store->charges_of_subscription(sub).size() == 1);
    CHECK_FALSE(h.store->find_subscription(sub)->next_due_at.has_value());
    CHECK(h.store->find_subscription(sub)->next_period == 1);
    // Day 3: period 0 is declined again; still nothing for the periods after it.
    h.run_at("2024-01-03T01:00:00Z");
    CHECK(h.store->charges_of_subscription(sub).size() == 1);
    // Day 5: period 0 is paid; the schedule goes on from today's period (catch-up policy).
    s = h.run_at("2024-01-05T01:00:00Z");
    CHECK(h.state(sub, 0) == charge_state::paid);
    CHECK(h.state(sub, 4) == charge_state::paid);
    CHECK(h.store->charges_of_subscription(sub).size() == 2);
    CHECK(h.gw.paid_count(h.uid(sub, 0)) == 1);
    CHECK(h.gw.paid_count(h.uid(sub, 4)) == 1);
    CHECK(h.store->find_subscription(sub)->next_period == 5);
}

TEST_CASE("a new period the database refuses is undone and flagged; the others are charged") {
    harness h;
    h.config.max_in_flight = 8;
    const auto a = h.add("good_a", "2024-01-01");
    const auto bad = h.add("bad", "2024-01-01");
    const auto b = h.add("good_b", "2024-01-01");
    // A trigger an operator added refuses this customer's charge row (SQLITE_CONSTRAINT).
    h.sql(
        "CREATE TRIGGER refuse_bad BEFORE INSERT ON charges WHEN NEW.customer_uid = 'bad' "
        "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END;");
    const auto s = h.run_at("2024-01-01T01:00:00Z");
    CHECK(s.paid == 2);
    CHECK(h.state(a, 0) == charge_state::paid);
    CHECK(h.state(b, 0) == charge_state::paid);
    CHECK(h.store->charges_of_subscription(bad).empty());
    const auto flagged = h.store->find_subscription(bad);
    CHECK(flagged->needs_attention.value_or("").find("refused by a trigger") != std::string::npos);
    CHECK(h.gw.ledger.size() == 2);
}
