// Subscriptions that change and money that comes back, against the scripted gateway: the price
// schedule, consent, re-anchored calendars, card changes on an open period, refunds (written
// ahead, reconciled before any resend) and refunds made in PortOne's console.
#include <doctest/doctest.h>

#include "engine_harness.hpp"
#include "operations/changes.hpp"
#include "operations/refunds.hpp"
#include "operations/rekey.hpp"
#include "storage/change_store.hpp"

using namespace billingd;
using billingd::testing::count_rows;
using billingd::testing::harness;
using billingd::testing::utc;
using domain::charge_state;
using domain::subscription_status;

namespace {

operations::caller ops(harness& h, const char* actor = "alice") {
    return {actor, h.clock.now().time_since_epoch().count()};
}

std::int64_t amount_of(harness& h, std::int64_t sub, std::int64_t period) {
    for (const auto& c : h.store->charges_of_subscription(sub))
        if (c.period_index == period) return c.amount;
    FAIL("no charge for period " << period);
    return 0;
}

storage::charge_record charge_of(harness& h, std::int64_t sub, std::int64_t period) {
    for (const auto& c : h.store->charges_of_subscription(sub))
        if (c.period_index == period) return c;
    FAIL("no charge for period " << period);
    return {};
}

std::size_t calls_to(const testing::fake_gateway& gw, const std::string& call) {
    return static_cast<std::size_t>(std::count(gw.calls.begin(), gw.calls.end(), call));
}

// SQLite's result code for `sql` run by another connection, as an operator's sqlite3 would.
int exec_rc(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
    sqlite3_close(db);
    return rc;
}

std::string operation_error(const std::function<void()>& f) {
    try {
        f();
    } catch (const operations::error& e) {
        return e.type();
    }
    return "";
}

}  // namespace

TEST_CASE("a price change for period 3 charges the old price for periods 1-2 and the new from 3") {
    harness h;
    const auto sub = h.add("cust", "2024-01-01");
    h.run_at("2024-01-01T01:00:00Z");  // period 0 at 9,900
    auto r =
        operations::update_subscription(*h.store, ops(h), sub, {.amount = 12900, .from_period = 3});
    CHECK(r.from_period == 3);
    CHECK(r.subscription.amount == 9900);  // the current price stays until period 3 starts
    // A period that has a charge keeps its frozen request.
    CHECK(operation_error([&] {
              operations::update_subscription(*h.store, ops(h), sub,
                                              {.amount = 100, .from_period = 0});
          }) == "period-has-charge");
    h.run_at("2024-02-01T01:00:00Z");
    h.run_at("2024-03-01T01:00:00Z");
    h.run_at("2024-04-01T01:00:00Z");
    CHECK(amount_of(h, sub, 0) == 9900);
    CHECK(amount_of(h, sub, 1) == 9900);
    CHECK(amount_of(h, sub, 2) == 9900);
    CHECK(amount_of(h, sub, 3) == 12900);
    CHECK(h.store->find_subscription(sub)->amount == 12900);
    CHECK_FALSE(h.store->find_subscription(sub)->price_change_period);
    CHECK(count_rows(h.db_path(),
                     "SELECT count(*) FROM events WHERE kind = "
                     "'subscription.price_scheduled' AND actor = 'alice'") == 1);
    CHECK(count_rows(h.db_path(),
                     "SELECT count(*) FROM events WHERE kind = "
                     "'subscription.price_changed'") == 1);
    CHECK(count_rows(h.db_path(),
                     "SELECT count(*) FROM price_schedule WHERE applied_at IS NOT NULL") == 1);
}

TEST_CASE("a promotion: periods 0-2 at 4,900, then 9,900") {
    harness h;
    const auto sub = h.add("cust", "2024-01-01");
    operations::update_subscription(*h.store, ops(h), sub, {.amount = 4900});
    operations::update_subscription(*h.store, ops(h), sub, {.amount = 9900, .from_period = 3});
    for (const char* at : {"2024-01-01T01:00:00Z", "2024-02-01T01:00:00Z", "2024-03-01T01:00:00Z",
                           "2024-04-01T01:00:00Z", "2024-05-01T01:00:00Z"})
        h.run_at(at);
    CHECK(amount_of(h, sub, 0) == 4900);
    CHECK(amount_of(h, sub, 2) == 4900);
    CHECK(amount_of(h, sub, 3) == 9900);
    CHECK(amount_of(h, sub, 4) == 9900);
}

TEST_CASE("an interval and charge time change re-anchors the calendar at the next period") {
    harness h;
    const auto sub = h.add("cust", "2024-01-31");
    h.run_at("2024-01-31T01:00:00Z");  // period 0; period 1 would start 2024-02-29 10:00 KST
    const auto r = operations::update_subscription(
        *h.store, ops(h), sub, {.charge_time = "09:00", .interval_unit = "week"});
    CHECK(r.subscription.anchor_period == 1);
    CHECK(r.subscription.anchor_date == "2024-02-29");
    CHECK(*r.subscription.next_due_at == utc("2024-02-29T00:00:00Z").time_since_epoch().count());
    h.run_at("2024-02-29T00:00:00Z");
    h.run_at("2024-03-07T00:00:00Z");
    CHECK(charge_of(h, sub, 1).period_start ==
          utc("2024-02-29T00:00:00Z").time_since_epoch().count());
    CHECK(charge_of(h, sub, 2).period_start ==
          utc("2024-03-07T00:00:00Z").time_since_epoch().count());
    CHECK(h.state(sub, 2) == charge_state::paid);
    // Changes of the calendar or the card start with the next period only.
    CHECK(operation_error([&] {
              operations::update_subscription(*h.store, ops(h), sub,
                                              {.interval_unit = "month", .from_period = 9});
          }) == "change-starts-next-period");
}

TEST_CASE("with require_consent a price rise waits for consent, then charges the new price") {
    harness h;
    h.config.require_consent = true;
    const auto sub = h.add("cust", "2024-01-01");
    h.run_at("2024-01-01T01:00:00Z");
    operations::update_subscription(*h.store, ops(h), sub, {.amount = 14900});
    auto s = h.run_at("2024-02-01T01:00:00Z");
    CHECK(s.held_for_consent == 1);
    CHECK(h.store->charges_of_subscription(sub).size() == 1);  // period 1 not charged
    CHECK(*h.store->find_subscription(sub)->consent_period == 1);
    CHECK(count_rows(h.db_path(), "SELECT count(*) FROM held_for_consent") == 1);
    CHECK(count_rows(h.db_path(), "SELECT amount_held FROM held_for_consent") == 14900);
    h.run_at("2024-02-03T01:00:00Z");  // still waiting, nothing charged
    CHECK(h.store->charges_of_subscription(sub).size() == 1);
    operations::record_consent(*h.store, ops(h), sub, std::nullopt);
    h.run_at("2024-02-03T01:00:01Z");
    CHECK(amount_of(h, sub, 1) == 14900);
    CHECK_FALSE(h.store->find_subscription(sub)->consent_period);
    // A price cut needs no consent.
    operations::update_subscription(*h.store, ops(h), sub, {.amount = 9900});
    h.run_at("2024-03-01T01:00:00Z");
    CHECK(amount_of(h, sub, 2) == 9900);
}

TEST_CASE("no consent before the timeout: cancel, or charge the old price") {
    for (const bool old_price : {false, true}) {
        CAPTURE(old_price);
        harness h;
        h.config.require_consent = true;
        h.config.consent_timeout = std::chrono::hours{24 * 7};
        h.config.consent_timeout_charges_old_price = old_price;
        const auto sub = h.add("cust", "2024-01-01");
        h.run_at("2024-01-01T01:00:00Z");
        operations::update_subscription(*h.store, ops(h), sub, {.amount = 14900});
        h.run_at("2024-02-01T01:00:00Z");
        CHECK(h.store->find_subscription(sub)->next_due_at ==
              utc("2024-02-08T01:00:00Z").time_since_epoch().count());
        h.run_at("2024-02-08T01:00:00Z");
        if (old_price) {
            CHECK(amount_of(h, sub, 1) == 9900);
            CHECK(h.store->find_subscription(sub)->amount == 9900);
            h.run_at("2024-03-01T01:00:00Z");
            CHECK(amount_of(h, sub, 2) == 9900);  // the rise is dropped
        } else {
            CHECK(h.store->charges_of_subscription(sub).size() == 1);
            CHECK(h.store->find_subscription(sub)->status == subscription_status::canceled);
        }
        CHECK(count_rows(h.db_path(),
                         "SELECT count(*) FROM events WHERE kind = "
                         "'subscription.consent_timed_out'") == 1);
    }
}

TEST_CASE("a rekey after a decline charges the new card once and never the old merchant_uid") {
    harness h;
    h.gw.behaviour["old_card"] = "decline";
    const auto sub = h.add("old_card", "2024-01-01");
    h.run_at("2024-01-01T01:00:00Z");
    auto c = charge_of(h, sub, 0);
    REQUIRE(c.state == charge_state::declined);
    const auto old_uid = c.merchant_uid;
    // Not while a request may be in progress, and not for a paid charge.
    const auto floor = std::int64_t{222};
    operations::rekey_evidence ev;
    ev.charge = operations::rekey_precheck(*h.store, c.id, "new_card", ops(h).now, floor);
    ev.lookup = "only failed payments at PortOne";
    const auto calls_before = calls_to(h.gw, "charge:" + old_uid);
    const auto after = operations::rekey_charge(*h.store, ops(h), "new_card", ev, floor);
    CHECK(after.merchant_uid == old_uid + "k1");
    CHECK(after.customer_uid == "new_card");
    CHECK(after.state == charge_state::retry_wait);
    CHECK(h.store->find_subscription(sub)->customer_uid == "new_card");
    h.run_at("2024-01-01T01:00:10Z");
    CHECK(h.state(sub, 0) == charge_state::paid);
    CHECK(h.gw.paid_count(old_uid + "k1") == 1);
    CHECK(h.gw.paid_count(old_uid) == 0);
    // Past the old card's dunning days nothing goes out under the old merchant_uid.
    h.run_at("2024-01-10T01:00:00Z");
    CHECK(calls_to(h.gw, "charge:" + old_uid) == calls_before);
    CHECK(count_rows(h.db_path(), "SELECT count(*) FROM charge_rekeys") == 1);
    // A stale read is refused: the row changed after the evidence was taken.
    CHECK(operation_error([&] {
              operations::rekey_charge(*h.store, ops(h), "third_card", ev, floor);
          }) == "charge-not-rekeyable");
    // The schema refuses a merchant_uid change without a recorded rekey.
    CHECK(exec_rc(h.db_path(), "UPDATE charges SET merchant_uid = 'x' WHERE id = " +
                                   std::to_string(c.id)) == SQLITE_CONSTRAINT);
}

TEST_CASE("a refund whose answer is lost is read back, recorded, and never sent twice") {
    harness h;
    const auto sub = h.add("cust", "2024-01-01");
    h.run_at("2024-01-01T01:00:00Z");
    const auto c = charge_of(h, sub, 0);
    REQUIRE(c.imp_uid);
    h.gw.cancel_script = {"lost_after_apply"};
    auto r = operations::refund_request{.reason = "customer asked"};
    const auto refund = operations::request_refund(*h.store, ops(h), c.id, r);
    CHECK(refund.state == "requested");
    CHECK(refund.checksum == 9900);
    h.run_at("2024-01-02T00:00:00Z");
    storage::change_store changes(h.store->db());
    CHECK(changes.find_refund(refund.id)->state == "unknown");
    h.run_at("2024-01-02T00:01:00Z");  // past the lookup delay: the payment is read
    const auto done = *changes.find_refund(refund.id);
    CHECK(done.state == "refunded");
    CHECK(done.cancellation_id);
    CHECK(calls_to(h.gw, "cancel:" + *c.imp_uid) == 1);
    CHECK(h.gw.cancel_applied == 1);
    CHECK(h.store->find_charge(c.id)->refunded_amount == 9900);
    CHECK(h.store->find_charge(c.id)->state == charge_state::paid);
    CHECK(count_rows(h.db_path(), "SELECT count(*) FROM events WHERE kind = 'charge.refunded'") ==
          1);
    CHECK(count_rows(h.db_path(),
                     "SELECT count(*) FROM refund_attempts WHERE kind = 'cancel' "
                     "AND phase = 'request'") == 1);
    CHECK(count_rows(h.db_path(), "SELECT sum(refunded) FROM revenue_per_day") == 9900);
    // Revenue is net of refunds on the local day PortOne refunded.
    CHECK(count_rows(h.db_path(),
                     "SELECT net FROM revenue_per_day WHERE day_local = '2024-01-02'") == -9900);
    // Nothing is left to refund; the subscription stays active.
    CHECK(operation_error([&] { operations::request_refund(*h.store, ops(h), c.id, r); }) ==
          "refund-exceeds-paid");
    CHECK(h.store->find_subscription(sub)->status == subscription_status::active);
}

TEST_CASE("a refund that did not apply is sent again with the same checksum") {
    harness h;
    const auto sub = h.add("cust", "2024-01-01");
    h.run_at("2024-01-01T01:00:00Z");
    const auto c = charge_of(h, sub, 0);
    h.gw.cancel_script = {"timeout_before"};
    const auto refund = operations::request_refund(*h.store, ops(h), c.id,
                                                   {.amount = 3000, .reason = "late delivery"});
    h.run_at("2024-01-02T00:00:00Z");
    h.run_at("2024-01-02T00:01:00Z");
    storage::change_store changes(h.store->db());
    CHECK(changes.find_refund(refund.id)->state == "refunded");
    CHECK(calls_to(h.gw, "cancel:" + *c.imp_uid) == 2);
    CHECK(h.gw.cancel_applied == 1);
    CHECK(h.store->find_charge(c.id)->refunded_amount == 3000);
}

TEST_CASE(
    "refunds larger than what is left, or beside an open one, are refused without a request") {
    harness h;
    const auto sub = h.add("cust", "2024-01-01");
    h.run_at("2024-01-01T01:00:00Z");
    const auto c = charge_of(h, sub, 0);
    operations::request_refund(*h.store, ops(h), c.id, {.amount = 3000, .reason = "a"});
    CHECK(operation_error([&] {
              operations::request_refund(*h.store, ops(h), c.id, {.amount = 1000, .reason = "b"});
          }) == "refund-in-progress");
    h.run_at("2024-01-02T00:00:00Z");
    CHECK(operation_error([&] {
              operations::request_refund(*h.store, ops(h), c.id, {.amount = 7000, .reason = "c"});
          }) == "refund-exceeds-paid");
    CHECK(calls_to(h.gw, "cancel:" + *c.imp_uid) == 1);
    // The schema backs the rule up: a second open refund cannot be inserted by hand either.
    CHECK(exec_rc(h.db_path(),
                  "INSERT INTO refunds (charge_id, subscription_id, source, state, amount, "
                  "checksum, reason, requested_by, requested_at, updated_at) VALUES (" +
                      std::to_string(c.id) + ", " + std::to_string(sub) +
                      ", 'billingd', 'requested', 1, 6900, 'x', 'y', 0, 0), (" +
                      std::to_string(c.id) + ", " + std::to_string(sub) +
                      ", 'billingd', 'requested', 1, 6900, 'x', 'y', 0, 0)") == SQLITE_CONSTRAINT);
    CHECK(operation_error([&] {
              operations::request_refund(*h.store, ops(h), 999, {.reason = "x"});
          }) == "charge-not-found");
}

TEST_CASE("a refund made in PortOne's console is recorded once by the console check") {
    harness h;
    h.config.console_check_interval = std::chrono::hours{1};
    const auto sub = h.add("cust", "2024-01-01");
    h.run_at("2024-01-01T01:00:00Z");  // the first check runs here: nothing cancelled yet
    const auto c = charge_of(h, sub, 0);
    h.gw.console_cancel(*c.imp_uid, 9900);
    h.run_at("2024-01-01T01:30:00Z");  // within the interval: not checked yet
    CHECK(h.store->find_charge(c.id)->refunded_amount == 0);
    h.run_at("2024-01-01T02:00:00Z");
    CHECK(h.store->find_charge(c.id)->refunded_amount == 9900);
    CHECK(count_rows(h.db_path(),
                     "SELECT count(*) FROM refunds WHERE source = 'console' AND "
                     "state = 'refunded' AND amount = 9900") == 1);
    CHECK(count_rows(h.db_path(),
                     "SELECT count(*) FROM events WHERE kind = 'charge.refunded' "
                     "AND json_extract(data, '$.source') = 'console'") == 1);
    const auto checks = h.gw.cancelled_list_calls;
    h.run_at("2024-01-01T03:00:00Z");  // checked again: nothing new
    CHECK(h.gw.cancelled_list_calls == checks + 1);
    CHECK(count_rows(h.db_path(), "SELECT count(*) FROM refunds") == 1);
}

TEST_CASE("a partial refund made in the console is found by reading paid charges one by one") {
    harness h;
    h.config.console_check_interval = std::chrono::hours{1};
    h.config.console_check_payments = 1;  // one charge per check: the sweep goes round
    const auto a = h.add("cust_a", "2024-01-01");
    const auto b = h.add("cust_b", "2024-01-01");
    h.run_at("2024-01-01T01:00:00Z");
    const auto cb = charge_of(h, b, 0);
    h.gw.console_cancel(*cb.imp_uid, 2000);  // partial: stays paid, not in the cancelled list
    for (const char* at : {"2024-01-01T02:00:00Z", "2024-01-01T03:00:00Z", "2024-01-01T04:00:00Z"})
        h.run_at(at);
    CHECK(h.store->find_charge(cb.id)->refunded_amount == 2000);
    CHECK(h.store->find_charge(charge_of(h, a, 0).id)->refunded_amount == 0);
    CHECK(count_rows(h.db_path(),
                     "SELECT count(*) FROM refunds WHERE source = 'console' AND "
                     "amount = 2000") == 1);
    // Read again on later rounds: recorded once.
    for (const char* at : {"2024-01-01T05:00:00Z", "2024-01-01T06:00:00Z"}) h.run_at(at);
    CHECK(count_rows(h.db_path(), "SELECT count(*) FROM refunds") == 1);
    CHECK(h.gw.payment_calls >= 4);
}

TEST_CASE("refund rows written by hand with the checks bypassed never stop billing") {
    harness h;
    const auto a = h.add("cust_a", "2024-01-01");
    const auto b = h.add("cust_b", "2024-01-01");
    h.run_at("2024-01-01T01:00:00Z");
    const auto ca = charge_of(h, a, 0);
    const auto cb = charge_of(h, b, 0);
    const auto other = h.add("cust_c", "2024-01-02");
    const auto of = [](const storage::charge_record& c) {
        return std::to_string(c.id) + ", " + std::to_string(c.subscription_id);
    };
    // An amount of 0 (PortOne must never see it), a state the schema does not know, and a
    // row left `sending` whose every update the schema refuses (attempt_count -1).
    h.sql(
        "PRAGMA ignore_check_constraints = ON; "
        "INSERT INTO refunds (charge_id, subscription_id, source, state, amount, checksum, "
        "reason, requested_by, requested_at, attempt_count, next_action_at, updated_at) VALUES "
        "(" +
        of(ca) +
        ", 'billingd', 'requested', 0, 0, 'zero', 'x', 0, 0, 0, 0), "
        "(" +
        of(ca) +
        ", 'billingd', 'bogus', 100, 9900, 'odd', 'x', 0, 0, 0, 0), "
        "(" +
        of(cb) +
        ", 'billingd', 'sending', 100, 9900, 'odd', 'x', 0, -1, NULL, 0); "
        "PRAGMA ignore_check_constraints = OFF;");
    h.run_at("2024-01-02T01:00:00Z");
    CHECK(h.state(other, 0) == charge_state::paid);  // everyone else is charged
    CHECK(h.gw.cancel_applied == 0);
    CHECK(calls_to(h.gw, "cancel:" + *ca.imp_uid) == 0);
    CHECK(calls_to(h.gw, "cancel:" + *cb.imp_uid) == 0);
    storage::change_store changes(h.store->db());
    const auto zero = *changes.find_refund(1);
    CHECK(zero.state == "refused");
    CHECK(zero.fail_reason->find("not sent") != std::string::npos);
    CHECK_FALSE(changes.find_refund(2)->next_action_at);
    CHECK(count_rows(h.db_path(), "SELECT count(*) FROM events WHERE kind = 'refund.invalid'") ==
          1);
    h.run_at("2024-01-03T01:00:00Z");  // and again: nothing sent, nothing stuck
    CHECK(calls_to(h.gw, "cancel:" + *cb.imp_uid) == 0);
}
