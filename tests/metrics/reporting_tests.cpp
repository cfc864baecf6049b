#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "calendar/calendar.hpp"
#include "reporting/reporting.hpp"
#include "storage/sqlite.hpp"
#include "support.hpp"

using namespace billingd;
using billingd::test::add_charge;
using billingd::test::add_subscription;

namespace {

std::int64_t utc(const char* text) {
    return calendar::parse_utc(text)->time_since_epoch().count();
}

// The first column of every row (callers concatenate what they need into it).
std::vector<std::string> column(storage::connection& db, const std::string& sql) {
    storage::statement st(db, sql);
    std::vector<std::string> out;
    while (st.step()) out.push_back(st.text(0));
    return out;
}

std::int64_t scalar(storage::connection& db, const std::string& sql) {
    storage::statement st(db, sql);
    st.step();
    return st.int64(0);
}

void paid(storage::connection& db, int id, std::int64_t at, int amount) {
    add_charge(db, id, 1, id, "paid", amount, ", paid_at", ", " + std::to_string(at));
}

const std::string per_day =
    "SELECT day_local || ' ' || charges || ' ' || amount FROM revenue_per_day";

}  // namespace

TEST_CASE("revenue per day is counted in the reporting zone, not UTC or the reader's zone") {
    test::temp_db tmp;
    storage::connection db(tmp.options());
    add_subscription(db, 1);
    // Before billingd writes the zone, the migration's fixed +09:00 applies already.
    paid(db, 1, utc("2026-11-29T23:30:00Z"), 1000);  // 2026-11-30 08:30 KST
    paid(db, 2, utc("2026-11-29T14:59:59Z"), 200);   // 2026-11-29 23:59:59 KST
    paid(db, 3, utc("2026-11-29T15:00:00Z"), 30);    // 2026-11-30 00:00 KST
    CHECK(column(db, per_day) == std::vector<std::string>{"2026-11-30 2 1030", "2026-11-29 1 200"});

    const auto* seoul = calendar::find_zone("Asia/Seoul");
    CHECK(reporting::write_reporting_zone(db, "Asia/Seoul", seoul, utc("2026-12-01T00:00:00Z")));
    CHECK_FALSE(
        reporting::write_reporting_zone(db, "Asia/Seoul", seoul, utc("2026-12-01T00:00:00Z")));
    CHECK(column(db, per_day) == std::vector<std::string>{"2026-11-30 2 1030", "2026-11-29 1 200"});
    CHECK(column(db, "SELECT month_local || ' ' || amount FROM revenue_per_month") ==
          std::vector<std::string>{"2026-11 1230"});
}

TEST_CASE("a DST zone has 23- and 25-hour days and its own midnights") {
    test::temp_db tmp;
    storage::connection db(tmp.options());
    add_subscription(db, 1);
    const auto* new_york = calendar::find_zone("America/New_York");
    REQUIRE(reporting::write_reporting_zone(db, "America/New_York", new_york, 0));
    CHECK(scalar(db, "SELECT ends_at - starts_at FROM reporting_days WHERE day = '2026-03-08'") ==
          23 * 3600);
    CHECK(scalar(db, "SELECT ends_at - starts_at FROM reporting_days WHERE day = '2026-11-01'") ==
          25 * 3600);
    CHECK(scalar(db, "SELECT starts_at FROM reporting_days WHERE day = '2026-07-01'") ==
          utc("2026-07-01T04:00:00Z"));
    paid(db, 1, utc("2026-11-02T04:30:00Z"), 5);  // 2026-11-01 23:30 EST
    paid(db, 2, utc("2026-11-02T05:00:00Z"), 7);  // 2026-11-02 00:00 EST
    CHECK(column(db, per_day) == std::vector<std::string>{"2026-11-02 1 7", "2026-11-01 1 5"});
    CHECK(column(db, "SELECT at_local FROM (SELECT datetime(" +
                         std::to_string(utc("2026-07-01T16:00:00Z")) +
                         " + (SELECT utc_offset FROM reporting_offsets WHERE valid_from <= " +
                         std::to_string(utc("2026-07-01T16:00:00Z")) +
                         " ORDER BY valid_from DESC LIMIT 1), 'unixepoch') AS at_local)") ==
          std::vector<std::string>{"2026-07-01 12:00:00"});
}

TEST_CASE("the revenue roll-up gives the same answer as counting every paid charge") {
    test::temp_db tmp;
    storage::connection db(tmp.options());
    add_subscription(db, 1);
    const auto* seoul = calendar::find_zone("Asia/Seoul");
    reporting::write_reporting_zone(db, "Asia/Seoul", seoul, 0);
    int id = 1;
    for (std::int64_t t = utc("2026-10-01T00:00:00Z"); t < utc("2026-12-10T00:00:00Z");
         t += 7 * 3600 + 13)
        paid(db, id++, t, 100 + id % 7);
    const auto live = column(db, per_day);
    const auto live_months = column(db, "SELECT month_local || amount FROM revenue_per_month");
    REQUIRE(live.size() > 60);

    const std::int64_t now = utc("2026-12-09T12:00:00Z");  // 21:00 KST on the 9th
    CHECK(reporting::refresh_revenue(db, now) > 0);
    // Rolled up to the start of yesterday (the 8th, Seoul time); the 8th and 9th stay live.
    CHECK(scalar(db, "SELECT rolled_until FROM reporting_state") == utc("2026-12-07T15:00:00Z"));
    CHECK(scalar(db, "SELECT max(day) = '2026-12-07' FROM revenue_daily") == 1);
    CHECK(column(db, per_day) == live);
    CHECK(column(db, "SELECT month_local || amount FROM revenue_per_month") == live_months);
    CHECK(reporting::refresh_revenue(db, now + 60) == 0);  // up to date: nothing recomputed

    // A charge committed late with a paid_at on the newest rolled day is picked up when the
    // roll-up advances (the two newest rolled days are recomputed).
    paid(db, id++, utc("2026-12-07T14:00:00Z"), 100000);  // 23:00 KST on the 7th
    CHECK(reporting::refresh_revenue(db, now + 86400) > 0);
    const auto after = column(db, per_day);
    const std::string seventh = "paid_at >= " + std::to_string(utc("2026-12-06T15:00:00Z")) +
                                " AND paid_at < " + std::to_string(utc("2026-12-07T15:00:00Z"));
    const std::string expected =
        "2026-12-07 " +
        std::to_string(scalar(db, "SELECT count(*) FROM charges WHERE " + seventh)) + " " +
        std::to_string(scalar(db, "SELECT sum(amount) FROM charges WHERE " + seventh));
    CHECK(std::find(after.begin(), after.end(), expected) != after.end());
    CHECK(scalar(db, "SELECT amount FROM revenue_daily WHERE day = '2026-12-07'") ==
          scalar(db, "SELECT sum(amount) FROM charges WHERE " + seventh));

    // Another zone clears the roll-up; the views are right again at once.
    CHECK(reporting::write_reporting_zone(db, "America/New_York",
                                          calendar::find_zone("America/New_York"), now));
    CHECK(scalar(db, "SELECT count(*) FROM revenue_daily") == 0);
    CHECK(scalar(db, "SELECT rolled_until IS NULL FROM reporting_state") == 1);
}

TEST_CASE("subscription totals and monthly changes follow inserts and status changes") {
    test::temp_db tmp;
    storage::connection db(tmp.options());
    add_subscription(db, 1, "active", "month", 10000, utc("2026-10-05T00:00:00Z"));
    add_subscription(db, 2, "active", "year", 120000, utc("2026-10-06T00:00:00Z"));
    add_subscription(db, 3, "active", "week", 3000, utc("2026-11-01T00:00:00Z"));
    add_subscription(db, 4, "trialing", "month", 5000, utc("2026-11-02T00:00:00Z"));
    // 10,000 + 120,000/12 + 3,000*52/12 = 33,000 (trialing does not count).
    CHECK(scalar(db, "SELECT mrr FROM mrr") == 33000);
    db.exec("UPDATE subscriptions SET status = 'canceled', updated_at = " +
            std::to_string(utc("2026-11-20T00:00:00Z")) + " WHERE id = 2");
    db.exec("UPDATE subscriptions SET status = 'unpaid', updated_at = " +
            std::to_string(utc("2026-11-21T00:00:00Z")) + " WHERE id = 3");
    db.exec("UPDATE subscriptions SET next_due_at = 5 WHERE id = 1");  // the charge path: no change
    CHECK(scalar(db, "SELECT mrr FROM mrr") == 10000);
    CHECK(column(db,
                 "SELECT month_local || ' ' || started || ' ' || churned || ' ' || "
                 "active_at_start || ' ' || coalesce(churn_percent, '-') FROM churn_per_month") ==
          std::vector<std::string>{"2026-11 2 2 2 100.0", "2026-10 2 0 0 -"});
    CHECK(scalar(db, "SELECT subscriptions FROM subscriptions_by_status WHERE status = 'active'") ==
          1);
    // A hand-written row above the schema's bound is refused.
    CHECK_THROWS_AS(db.exec("INSERT INTO subscriptions (customer_uid, amount, order_name, "
                            "interval_unit, anchor_date) VALUES ('x', 100000000001, 'P', 'month', "
                            "'2026-01-01')"),
                    storage::constraint_error);
}
