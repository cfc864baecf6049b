// Notices ahead of time: when they are written, and that each is written once per period.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "outbox/notices.hpp"
#include "outbox/payload.hpp"
#include "support.hpp"

using namespace billingd;
using namespace outbox_test;

namespace {

constexpr std::int64_t day = 86400;
constexpr std::int64_t t0 = 1'767'225'600;  // 2026-01-01T00:00:00Z

std::int64_t count(storage::store& store, const std::string& kind) {
    storage::statement st(store.db(), "SELECT count(*) FROM events WHERE kind = ?1");
    st.bind(1, kind);
    st.step();
    const auto n = st.int64(0);
    st.reset();
    return n;
}

}  // namespace

TEST_CASE("charge.upcoming is written the configured days before a charge, once per period") {
    temp_db tmp;
    storage::store store(tmp.options());
    const auto monthly = add_subscription(store, "month");
    const auto yearly = add_subscription(store, "year");
    const auto daily = add_subscription(store, "day");
    store.set_schedule(monthly, 4, t0 + 10 * day, t0);
    store.set_schedule(yearly, 1, t0 + 10 * day, t0);
    store.set_schedule(daily, 7, t0 + day / 2, t0);
    const outbox::notice_leads leads;  // day 0, week 1, month 3, year 7

    auto pass = outbox::produce_notices(store.db(), t0, leads);
    CHECK(pass.written == 0);
    REQUIRE(pass.next_at);
    CHECK(*pass.next_at == t0 + 3 * day);  // the yearly plan's notice: 7 days before day 10

    pass = outbox::produce_notices(store.db(), t0 + 3 * day, leads);
    CHECK(pass.written == 1);
    CHECK(*pass.next_at == t0 + 7 * day);  // the monthly plan's: 3 days before
    pass = outbox::produce_notices(store.db(), t0 + 8 * day, leads);
    CHECK(pass.written == 1);
    // Again, and after a "restart": nothing new.
    CHECK(outbox::produce_notices(store.db(), t0 + 8 * day, leads).written == 0);
    CHECK(outbox::produce_notices(store.db(), t0 + 9 * day, leads).written == 0);
    CHECK(count(store, "charge.upcoming") == 2);

    storage::statement st(store.db(),
                          "SELECT data FROM events WHERE kind = 'charge.upcoming' AND "
                          "subscription_id = ?1");
    st.bind(1, monthly);
    REQUIRE(st.step());
    const auto data = nlohmann::json::parse(st.text(0));
    st.reset();
    CHECK(data["period_index"] == 4);
    CHECK(data["due_at"] == t0 + 10 * day);
    CHECK(data["amount"] == 9900);
    CHECK(outbox::merchant_type("charge.upcoming", {}, {}) == "charge.upcoming");

    // The next period gets its own notice.
    store.set_schedule(monthly, 5, t0 + 41 * day, t0 + 10 * day);
    CHECK(outbox::produce_notices(store.db(), t0 + 38 * day, leads).written == 1);
    CHECK(count(store, "charge.upcoming") == 3);
}

TEST_CASE("a charge already due (catch-up after downtime) gets no notice") {
    temp_db tmp;
    storage::store store(tmp.options());
    const auto sub = add_subscription(store, "month");
    store.set_schedule(sub, 2, t0, t0 - 40 * day);
    CHECK(outbox::produce_notices(store.db(), t0 + day, outbox::notice_leads{}).written == 0);
    CHECK(count(store, "charge.upcoming") == 0);
}

TEST_CASE("a trialing subscription is told before its trial turns paid, once") {
    temp_db tmp;
    storage::store store(tmp.options());
    const auto sub = add_subscription(store, "month", "trialing");
    store.set_schedule(sub, 0, t0 + 14 * day, t0);
    storage::statement set_trial(store.db(), "UPDATE subscriptions SET trial_end_at = ?1");
    set_trial.bind(1, t0 + 14 * day).run();
    CHECK(outbox::produce_notices(store.db(), t0 + 10 * day, outbox::notice_leads{}).written == 0);
    CHECK(outbox::produce_notices(store.db(), t0 + 11 * day, outbox::notice_leads{}).written == 2);
    CHECK(outbox::produce_notices(store.db(), t0 + 12 * day, outbox::notice_leads{}).written == 0);
    CHECK(count(store, "subscription.trial_will_end") == 1);
    CHECK(count(store, "charge.upcoming") == 1);
}

TEST_CASE("when next_period's charge exists, next_due_at is the following period's") {
    temp_db tmp;
    storage::store store(tmp.options());
    const auto sub = add_subscription(store, "month");
    storage::charge_record c;
    c.subscription_id = sub;
    c.period_index = 3;
    c.period_start = t0;
    c.merchant_uid = "x-abc-p3";
    c.customer_uid = "cust_1";
    c.amount = 9900;
    c.currency = "KRW";
    c.order_name = "Plan";
    c.created_at = c.updated_at = t0;
    store.materialise_charge(c);
    store.set_schedule(sub, 3, t0 + 31 * day, t0);
    CHECK(outbox::produce_notices(store.db(), t0 + 29 * day, outbox::notice_leads{}).written == 1);
    storage::statement st(store.db(), "SELECT period_index FROM outbox_notices");
    REQUIRE(st.step());
    CHECK(st.int64(0) == 4);
    st.reset();
}
