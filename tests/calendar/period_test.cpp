// Period dates and instants: month-end clamping from the anchor, intervals, and the search for
// the last started period.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "calendar/calendar.hpp"
#include "support.hpp"

namespace billingd::calendar {
namespace {

using test::at;
using test::day;
using test::utc;
using test::zone;

struct date_case {
    const char* why;
    interval_unit unit;
    int count;
    const char* anchor;
    std::int64_t n;
    const char* expected;
};

// Each row is one period of one rule; expected is the local date of period n.
const date_case date_cases[] = {
    // Jan 31 anchor: clamps to the month end and comes back to the 31st.
    {"period 0 is the anchor", interval_unit::month, 1, "2024-01-31", 0, "2024-01-31"},
    {"31st clamps to Feb 29 in a leap year", interval_unit::month, 1, "2024-01-31", 1,
     "2024-02-29"},
    {"31st returns to Mar 31 after Feb 29, not Mar 29 (no drift)", interval_unit::month, 1,
     "2024-01-31", 2, "2024-03-31"},
    {"31st clamps to Apr 30", interval_unit::month, 1, "2024-01-31", 3, "2024-04-30"},
    {"31st returns to May 31 after Apr 30", interval_unit::month, 1, "2024-01-31", 4, "2024-05-31"},
    {"n = 12 is the anchor day one year later", interval_unit::month, 1, "2024-01-31", 12,
     "2025-01-31"},
    {"31st clamps to Feb 28 in a common year", interval_unit::month, 1, "2024-01-31", 13,
     "2025-02-28"},
    {"n = 24 is the anchor day two years later", interval_unit::month, 1, "2024-01-31", 24,
     "2026-01-31"},
    {"31st reaches Feb 29 again four years later", interval_unit::month, 1, "2024-01-31", 49,
     "2028-02-29"},
    {"31st in a common year clamps to Feb 28", interval_unit::month, 1, "2025-01-31", 1,
     "2025-02-28"},
    {"31st returns to Mar 31 after Feb 28", interval_unit::month, 1, "2025-01-31", 2, "2025-03-31"},
    // 30th, 29th, 28th anchors.
    {"30th clamps to Feb 29 in a leap year", interval_unit::month, 1, "2024-01-30", 1,
     "2024-02-29"},
    {"30th clamps to Feb 28 in a common year", interval_unit::month, 1, "2025-01-30", 1,
     "2025-02-28"},
    {"30th returns to Mar 30 after February", interval_unit::month, 1, "2025-01-30", 2,
     "2025-03-30"},
    {"30th stays on Apr 30", interval_unit::month, 1, "2024-01-30", 3, "2024-04-30"},
    {"29th is Feb 29 in a leap year", interval_unit::month, 1, "2024-01-29", 1, "2024-02-29"},
    {"29th clamps to Feb 28 in a common year", interval_unit::month, 1, "2025-01-29", 1,
     "2025-02-28"},
    {"29th returns to Mar 29 after Feb 28", interval_unit::month, 1, "2025-01-29", 2, "2025-03-29"},
    {"28th never clamps in a leap year", interval_unit::month, 1, "2024-01-28", 1, "2024-02-28"},
    {"28th never clamps in a common year", interval_unit::month, 1, "2025-01-28", 1, "2025-02-28"},
    {"28th stays on the 28th a year later", interval_unit::month, 1, "2024-01-28", 12,
     "2025-01-28"},
    // Feb 29 anchors.
    {"monthly Feb 29 moves to Mar 29", interval_unit::month, 1, "2024-02-29", 1, "2024-03-29"},
    {"monthly Feb 29 clamps to Feb 28 in a common year", interval_unit::month, 1, "2024-02-29", 12,
     "2025-02-28"},
    {"monthly Feb 29 is Feb 29 again in the next leap year", interval_unit::month, 1, "2024-02-29",
     48, "2028-02-29"},
    {"yearly Feb 29 clamps to Feb 28 in a common year", interval_unit::year, 1, "2024-02-29", 1,
     "2025-02-28"},
    {"yearly Feb 29 stays Feb 28 in the third common year", interval_unit::year, 1, "2024-02-29", 3,
     "2027-02-28"},
    {"yearly Feb 29 returns to Feb 29 in a leap year", interval_unit::year, 1, "2024-02-29", 4,
     "2028-02-29"},
    {"yearly Feb 29 clamps in a century common year", interval_unit::year, 1, "2024-02-29", 76,
     "2100-02-28"},
    {"yearly Feb 29 keeps Feb 29 in a 400-year leap year", interval_unit::year, 1, "2396-02-29", 4,
     "2400-02-29"},
    // Year boundaries.
    {"Dec 31 monthly crosses into January", interval_unit::month, 1, "2024-12-31", 1, "2025-01-31"},
    {"Dec 31 monthly clamps to Feb 28", interval_unit::month, 1, "2024-12-31", 2, "2025-02-28"},
    {"Dec 31 monthly is Dec 31 after 12 periods", interval_unit::month, 1, "2024-12-31", 12,
     "2025-12-31"},
    {"Dec 31 yearly stays on Dec 31", interval_unit::year, 1, "2024-12-31", 1, "2025-12-31"},
    {"Dec 31 daily moves to Jan 1", interval_unit::day, 1, "2024-12-31", 1, "2025-01-01"},
    {"weekly crosses the year boundary", interval_unit::week, 1, "2024-12-28", 1, "2025-01-04"},
    // Every 3 months.
    {"quarterly Nov 30 clamps to Feb 28", interval_unit::month, 3, "2024-11-30", 1, "2025-02-28"},
    {"quarterly Nov 30 returns to May 30", interval_unit::month, 3, "2024-11-30", 2, "2025-05-30"},
    {"quarterly Nov 30 is Nov 30 after four periods", interval_unit::month, 3, "2024-11-30", 4,
     "2025-11-30"},
    {"quarterly Aug 31 clamps to Nov 30", interval_unit::month, 3, "2023-08-31", 1, "2023-11-30"},
    {"quarterly Aug 31 clamps to Feb 29 in a leap year", interval_unit::month, 3, "2023-08-31", 2,
     "2024-02-29"},
    {"quarterly Aug 31 returns to May 31", interval_unit::month, 3, "2023-08-31", 3, "2024-05-31"},
    // Days and weeks are plain day counts.
    {"daily reaches Feb 29 in a leap year", interval_unit::day, 1, "2024-02-28", 1, "2024-02-29"},
    {"daily skips to Mar 1 in a common year", interval_unit::day, 1, "2025-02-28", 1, "2025-03-01"},
    {"every 10 days counts plain days", interval_unit::day, 10, "2024-02-25", 1, "2024-03-06"},
    {"daily 366 periods span a leap year", interval_unit::day, 1, "2024-01-01", 366, "2025-01-01"},
    {"weekly crosses Feb 29", interval_unit::week, 1, "2024-02-26", 1, "2024-03-04"},
    {"every 2 weeks is 14 days", interval_unit::week, 2, "2024-01-31", 3, "2024-03-13"},
    {"weekly 52 periods are 364 days", interval_unit::week, 1, "2025-01-01", 52, "2025-12-31"},
    {"every 2 years from the 31st", interval_unit::year, 2, "2023-12-31", 3, "2029-12-31"},
};

TEST_CASE("a period date is the anchor plus n intervals, clamped to the month end") {
    for (const auto& c : date_cases) {
        CAPTURE(c.why);
        CAPTURE(c.anchor);
        CAPTURE(c.n);
        billing_rule rule{c.unit, c.count, day(c.anchor), at("10:00"), zone("Asia/Seoul")};
        CHECK_EQ(format_local_date(period_date(rule, c.n)), std::string{c.expected});
    }
}

TEST_CASE("every twelfth monthly period falls on the anchor day k years later") {
    const struct {
        const char* anchor;
        int year;
        int k_step;
    } anchors[] = {{"2024-01-31", 2024, 1},
                   {"2024-03-31", 2024, 1},
                   {"2023-12-31", 2023, 7},
                   {"2024-01-29", 2024, 3},
                   {"2000-01-30", 2000, 5}};
    for (const auto& a : anchors) {
        billing_rule rule{interval_unit::month, 1, day(a.anchor), at("00:00"), zone("Asia/Seoul")};
        for (int k = 0; k <= 400; k += a.k_step) {
            CAPTURE(a.anchor);
            CAPTURE(k);
            std::string expected = std::to_string(a.year + k) + std::string{a.anchor + 4};
            CHECK_EQ(format_local_date(period_date(rule, 12 * std::int64_t{k})), expected);
        }
    }
}

struct instant_case {
    const char* why;
    const char* zone;
    interval_unit unit;
    const char* anchor;
    const char* charge_time;
    std::int64_t n;
    const char* expected_utc;
};

const instant_case instant_cases[] = {
    {"Seoul is UTC+9 at the charge time", "Asia/Seoul", interval_unit::month, "2024-01-31", "10:00",
     0, "2024-01-31T01:00:00Z"},
    {"Seoul clamps to Feb 29 before converting", "Asia/Seoul", interval_unit::month, "2024-01-31",
     "10:00", 1, "2024-02-29T01:00:00Z"},
    {"Seoul midnight is the previous UTC day", "Asia/Seoul", interval_unit::month, "2024-12-01",
     "00:00", 1, "2024-12-31T15:00:00Z"},
    {"Seoul 08:59 is still the previous UTC day", "Asia/Seoul", interval_unit::day, "2024-12-31",
     "08:59", 1, "2024-12-31T23:59:00Z"},
    {"Seoul 09:00 is UTC midnight", "Asia/Seoul", interval_unit::year, "2024-01-01", "09:00", 1,
     "2025-01-01T00:00:00Z"},
    {"New York before spring forward is EST", "America/New_York", interval_unit::day, "2024-03-08",
     "02:30", 1, "2024-03-09T07:30:00Z"},
    {"New York charge time inside the spring gap shifts forward by the gap", "America/New_York",
     interval_unit::day, "2024-03-08", "02:30", 2, "2024-03-10T07:30:00Z"},
    {"New York after spring forward is EDT", "America/New_York", interval_unit::day, "2024-03-08",
     "02:30", 3, "2024-03-11T06:30:00Z"},
    {"New York before fall back is EDT", "America/New_York", interval_unit::day, "2024-11-01",
     "01:30", 1, "2024-11-02T05:30:00Z"},
    {"New York charge time inside the autumn overlap takes the earlier instant", "America/New_York",
     interval_unit::day, "2024-11-01", "01:30", 2, "2024-11-03T05:30:00Z"},
    {"New York after fall back is EST", "America/New_York", interval_unit::day, "2024-11-01",
     "01:30", 3, "2024-11-04T06:30:00Z"},
    {"New York monthly anchored on the gap day resolves each month anew", "America/New_York",
     interval_unit::month, "2024-03-10", "02:30", 8, "2024-11-10T07:30:00Z"},
    {"New York weekly lands in the 2025 spring gap", "America/New_York", interval_unit::week,
     "2025-03-02", "02:15", 1, "2025-03-09T07:15:00Z"},
    {"New York yearly overlap date is EST in a year DST ended earlier", "America/New_York",
     interval_unit::year, "2024-11-03", "01:30", 1, "2025-11-03T06:30:00Z"},
};

TEST_CASE("a period starts at the charge time on its local date, converted to UTC") {
    for (const auto& c : instant_cases) {
        CAPTURE(c.why);
        billing_rule rule{c.unit, 1, day(c.anchor), at(c.charge_time), zone(c.zone)};
        CHECK_EQ(format_utc(period_start(rule, c.n)), std::string{c.expected_utc});
    }
}

// Brute force: the number of precomputed starts <= t, minus one.
std::int64_t scan_last_started(const std::vector<sys_seconds>& starts, sys_seconds t) {
    std::int64_t n = -1;
    while (n + 1 < static_cast<std::int64_t>(starts.size()) &&
           starts[static_cast<std::size_t>(n + 1)] <= t) {
        ++n;
    }
    return n;
}

struct search_rule {
    const char* why;
    const char* zone;
    interval_unit unit;
    int count;
    const char* anchor;
    const char* charge_time;
};

const search_rule search_rules[] = {
    {"monthly from Jan 31 in Seoul", "Asia/Seoul", interval_unit::month, 1, "2024-01-31", "10:00"},
    {"monthly at midnight in Seoul", "Asia/Seoul", interval_unit::month, 1, "2024-12-31", "00:00"},
    {"quarterly from Aug 31", "Asia/Seoul", interval_unit::month, 3, "2023-08-31", "23:59"},
    {"yearly from Feb 29", "Asia/Seoul", interval_unit::year, 1, "2024-02-29", "09:00"},
    {"every 2 years from Dec 31", "Asia/Seoul", interval_unit::year, 2, "2023-12-31", "12:00"},
    {"weekly across DST in New York", "America/New_York", interval_unit::week, 1, "2024-01-07",
     "02:30"},
    {"daily inside the gap and overlap in New York", "America/New_York", interval_unit::day, 1,
     "2024-03-01", "02:30"},
    {"daily inside the overlap in New York", "America/New_York", interval_unit::day, 1,
     "2024-10-20", "01:30"},
    {"every 10 days in New York", "America/New_York", interval_unit::day, 10, "2024-01-31",
     "01:59"},
    {"monthly from Jan 31 in New York", "America/New_York", interval_unit::month, 1, "2024-01-31",
     "02:30"},
};

TEST_CASE("the last started period agrees with a brute-force scan around every boundary") {
    using namespace std::chrono_literals;
    const std::chrono::seconds offsets[] = {-25h, -2h, -1h, -1s, 0s, 1s, 1h, 2h, 25h};
    constexpr std::int64_t periods = 120;
    for (const auto& r : search_rules) {
        CAPTURE(r.why);
        billing_rule rule{r.unit, r.count, day(r.anchor), at(r.charge_time), zone(r.zone)};
        std::vector<sys_seconds> starts;
        for (std::int64_t n = 0; n < periods + 2; ++n) starts.push_back(period_start(rule, n));
        REQUIRE(std::is_sorted(starts.begin(), starts.end()));
        for (std::int64_t n = 0; n < periods; ++n) {
            for (auto offset : offsets) {
                const auto t = starts[static_cast<std::size_t>(n)] + offset;
                CAPTURE(format_utc(t));
                CHECK_EQ(last_period_started_by(rule, t), scan_last_started(starts, t));
            }
        }
    }
}

TEST_CASE("the last started period agrees with a brute-force scan at pseudo-random instants") {
    using namespace std::chrono_literals;
    for (const auto& r : search_rules) {
        CAPTURE(r.why);
        billing_rule rule{r.unit, r.count, day(r.anchor), at(r.charge_time), zone(r.zone)};
        std::vector<sys_seconds> starts;
        // Enough periods to cover 12 years for every rule in the table.
        for (std::int64_t n = 0; n < 4500; ++n) starts.push_back(period_start(rule, n));
        const auto first = starts.front() - 30 * 24h;
        const auto span = std::chrono::duration_cast<std::chrono::seconds>(12 * 365 * 24h);
        std::uint64_t state = 0x9e3779b97f4a7c15u;
        for (int i = 0; i < 2000; ++i) {
            state = state * 6364136223846793005u + 1442695040888963407u;
            const auto t = first + std::chrono::seconds{static_cast<std::int64_t>(
                                       (state >> 17) % static_cast<std::uint64_t>(span.count()))};
            CAPTURE(format_utc(t));
            CHECK_EQ(last_period_started_by(rule, t), scan_last_started(starts, t));
        }
    }
}

TEST_CASE("the last started period is -1 before the anchor and exact far from it") {
    const struct {
        const char* why;
        interval_unit unit;
        const char* anchor;
        const char* t;
        std::int64_t expected;
    } cases[] = {
        {"one second before period 0", interval_unit::month, "2024-01-31", "2024-01-31T00:59:59Z",
         -1},
        {"years before period 0", interval_unit::month, "2024-01-31", "1990-06-01T00:00:00Z", -1},
        {"exactly at period 0", interval_unit::month, "2024-01-31", "2024-01-31T01:00:00Z", 0},
        {"a century of monthly periods", interval_unit::month, "2024-01-31", "2124-01-31T01:00:00Z",
         1200},
        {"one second before the 1200th monthly period", interval_unit::month, "2024-01-31",
         "2124-01-31T00:59:59Z", 1199},
        {"a century of daily periods (24 leap days, 2100 is common)", interval_unit::day,
         "2024-01-01", "2124-01-01T01:00:00Z", 36524},
        {"a century of weekly periods", interval_unit::week, "2024-01-01", "2124-01-01T01:00:00Z",
         5217},
        {"four centuries of yearly Feb 29 periods", interval_unit::year, "2024-02-29",
         "2424-02-29T01:00:00Z", 400},
        {"one second before the 400th yearly period", interval_unit::year, "2024-02-29",
         "2424-02-29T00:59:59Z", 399},
    };
    for (const auto& c : cases) {
        CAPTURE(c.why);
        billing_rule rule{c.unit, 1, day(c.anchor), at("10:00"), zone("Asia/Seoul")};
        CHECK_EQ(last_period_started_by(rule, utc(c.t)), c.expected);
    }
}

TEST_CASE("the last started period is found without scanning from the anchor") {
    // A linear scan would need millions of zone lookups per query here and time out.
    using namespace std::chrono_literals;
    const char* zones[] = {"Asia/Seoul", "America/New_York"};
    for (const char* name : zones) {
        CAPTURE(name);
        billing_rule rule{interval_unit::day, 1, day("2024-01-01"), at("02:30"), zone(name)};
        std::uint64_t state = 12345;
        for (int i = 0; i < 500; ++i) {
            state = state * 6364136223846793005u + 1442695040888963407u;
            const auto target = day("2100-01-01") + std::chrono::days{(state >> 20) % 2'900'000};
            const auto expected = (target - rule.anchor).count();
            const auto start = resolve_local(target, rule.charge_time, rule.zone);
            CAPTURE(format_utc(start));
            CHECK_EQ(last_period_started_by(rule, start), expected);
            CHECK_EQ(last_period_started_by(rule, start - 1s), expected - 1);
        }
    }
}

}  // namespace
}  // namespace billingd::calendar
