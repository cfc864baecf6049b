// Time zones: local-to-UTC resolution across DST gaps and overlaps, and quiet hours.
#include <doctest/doctest.h>

#include <string>

#include "calendar/calendar.hpp"
#include "support.hpp"

namespace billingd::calendar {
namespace {

using test::at;
using test::day;
using test::utc;
using test::zone;

TEST_CASE("zones are found by IANA name and unknown names yield null") {
    const struct {
        const char* name;
        bool known;
    } cases[] = {
        {"Asia/Seoul", true},  {"America/New_York", true},   {"UTC", true},
        {"Etc/UTC", true},     {"Mars/Olympus_Mons", false}, {"", false},
        {"asia/seoul", false}, {"Asia/Seoul ", false},       {"../../etc/passwd", false},
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        CHECK_EQ(find_zone(c.name) != nullptr, c.known);
    }
}

TEST_CASE("a local time resolves to UTC, forward across a gap and to the earlier overlap") {
    const struct {
        const char* why;
        const char* zone;
        const char* date;
        const char* time;
        const char* expected_utc;
    } cases[] = {
        {"Seoul has no DST", "Asia/Seoul", "2024-07-01", "12:00", "2024-07-01T03:00:00Z"},
        {"Seoul midnight on Jan 1 is Dec 31 UTC", "Asia/Seoul", "2025-01-01", "00:00",
         "2024-12-31T15:00:00Z"},
        {"New York winter is EST", "America/New_York", "2024-01-15", "09:00",
         "2024-01-15T14:00:00Z"},
        {"New York summer is EDT", "America/New_York", "2024-07-15", "09:00",
         "2024-07-15T13:00:00Z"},
        {"just before the spring gap", "America/New_York", "2024-03-10", "01:59",
         "2024-03-10T06:59:00Z"},
        {"start of the spring gap moves to 03:00 EDT", "America/New_York", "2024-03-10", "02:00",
         "2024-03-10T07:00:00Z"},
        {"inside the spring gap moves forward by one hour", "America/New_York", "2024-03-10",
         "02:30", "2024-03-10T07:30:00Z"},
        {"end of the spring gap moves to 03:59 EDT", "America/New_York", "2024-03-10", "02:59",
         "2024-03-10T07:59:00Z"},
        {"first time after the spring gap", "America/New_York", "2024-03-10", "03:00",
         "2024-03-10T07:00:00Z"},
        {"just before the autumn overlap", "America/New_York", "2024-11-03", "00:59",
         "2024-11-03T04:59:00Z"},
        {"start of the autumn overlap is the EDT instant", "America/New_York", "2024-11-03",
         "01:00", "2024-11-03T05:00:00Z"},
        {"inside the autumn overlap is the earlier (EDT) instant", "America/New_York", "2024-11-03",
         "01:30", "2024-11-03T05:30:00Z"},
        {"end of the autumn overlap is the earlier instant", "America/New_York", "2024-11-03",
         "01:59", "2024-11-03T05:59:00Z"},
        {"first time after the autumn overlap is EST", "America/New_York", "2024-11-03", "02:00",
         "2024-11-03T07:00:00Z"},
        {"southern hemisphere gap (Sydney, October)", "Australia/Sydney", "2024-10-06", "02:30",
         "2024-10-05T16:30:00Z"},
        {"southern hemisphere overlap (Sydney, April)", "Australia/Sydney", "2024-04-07", "02:30",
         "2024-04-06T15:30:00Z"},
        {"half-hour gap (Lord Howe)", "Australia/Lord_Howe", "2024-10-06", "02:15",
         "2024-10-05T15:45:00Z"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.why);
        CHECK_EQ(format_utc(resolve_local(day(c.date), at(c.time), zone(c.zone))),
                 std::string{c.expected_utc});
    }
}

TEST_CASE("the local date of an instant follows the zone's offset") {
    const struct {
        const char* zone;
        const char* instant;
        const char* expected;
    } cases[] = {
        {"Asia/Seoul", "2024-12-31T14:59:59Z", "2024-12-31"},
        {"Asia/Seoul", "2024-12-31T15:00:00Z", "2025-01-01"},
        {"Asia/Seoul", "2024-02-28T15:00:00Z", "2024-02-29"},
        {"America/New_York", "2025-01-01T04:59:59Z", "2024-12-31"},
        {"America/New_York", "2025-01-01T05:00:00Z", "2025-01-01"},
        {"America/New_York", "2024-07-01T03:59:59Z", "2024-06-30"},
        {"America/New_York", "2024-07-01T04:00:00Z", "2024-07-01"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.instant);
        CHECK_EQ(format_local_date(local_date_of(utc(c.instant), zone(c.zone))),
                 std::string{c.expected});
    }
}

struct quiet_case {
    const char* why;
    const char* zone;
    const char* start;
    const char* end;
    const char* t;
    const char* expected;
};

const quiet_case quiet_cases[] = {
    {"no quiet hours lets everything through", "Asia/Seoul", "00:00", "00:00",
     "2024-06-01T15:00:00Z", "2024-06-01T15:00:00Z"},
    // Seoul 23:50-00:10 wraps past midnight; 23:50 KST = 14:50Z.
    {"just before a wrapping window", "Asia/Seoul", "23:50", "00:10", "2024-12-31T14:49:59Z",
     "2024-12-31T14:49:59Z"},
    {"window start waits for 00:10 the next day", "Asia/Seoul", "23:50", "00:10",
     "2024-12-31T14:50:00Z", "2024-12-31T15:10:00Z"},
    {"before midnight inside a wrapping window waits past the year end", "Asia/Seoul", "23:50",
     "00:10", "2024-12-31T14:59:59Z", "2024-12-31T15:10:00Z"},
    {"after midnight inside a wrapping window waits for the same day's end", "Asia/Seoul", "23:50",
     "00:10", "2024-12-31T15:05:00Z", "2024-12-31T15:10:00Z"},
    {"the window end itself is allowed", "Asia/Seoul", "23:50", "00:10", "2024-12-31T15:10:00Z",
     "2024-12-31T15:10:00Z"},
    {"midday is outside a wrapping window", "Asia/Seoul", "23:50", "00:10", "2024-06-01T03:00:00Z",
     "2024-06-01T03:00:00Z"},
    {"wrapping window crosses Feb 29", "Asia/Seoul", "23:00", "01:00", "2024-02-28T14:30:00Z",
     "2024-02-28T16:00:00Z"},
    // Non-wrapping window.
    {"before a same-day window", "Asia/Seoul", "01:00", "03:00", "2024-06-01T15:59:59Z",
     "2024-06-01T15:59:59Z"},
    {"inside a same-day window waits for its end", "Asia/Seoul", "01:00", "03:00",
     "2024-06-01T16:00:00Z", "2024-06-01T18:00:00Z"},
    {"end of a same-day window is allowed", "Asia/Seoul", "01:00", "03:00", "2024-06-01T18:00:00Z",
     "2024-06-01T18:00:00Z"},
    // DST days in New York.
    {"wrapping window into the spring-forward day ends at 00:10 EST", "America/New_York", "23:50",
     "00:10", "2024-03-10T04:55:00Z", "2024-03-10T05:10:00Z"},
    {"window ending inside the spring gap ends when the gap does", "America/New_York", "01:30",
     "02:30", "2024-03-10T06:45:00Z", "2024-03-10T07:30:00Z"},
    {"window across the spring gap ends at its wall-clock end in EDT", "America/New_York", "01:00",
     "04:00", "2024-03-10T07:30:00Z", "2024-03-10T08:00:00Z"},
    {"first pass through the autumn overlap waits for the EDT end", "America/New_York", "01:00",
     "01:45", "2024-11-03T05:30:00Z", "2024-11-03T05:45:00Z"},
    {"between the passes of the autumn overlap is allowed", "America/New_York", "01:00", "01:45",
     "2024-11-03T05:50:00Z", "2024-11-03T05:50:00Z"},
    {"second pass through the autumn overlap waits for the EST end", "America/New_York", "01:00",
     "01:45", "2024-11-03T06:30:00Z", "2024-11-03T06:45:00Z"},
    {"window across the autumn overlap ends at its wall-clock end in EST", "America/New_York",
     "00:30", "02:30", "2024-11-03T06:50:00Z", "2024-11-03T07:30:00Z"},
    {"wrapping window into the fall-back day ends at 00:10 EDT", "America/New_York", "23:50",
     "00:10", "2024-11-03T03:55:00Z", "2024-11-03T04:10:00Z"},
};

TEST_CASE("a charge inside quiet hours waits until the window closes") {
    for (const auto& c : quiet_cases) {
        CAPTURE(c.why);
        quiet_hours window{at(c.start), at(c.end)};
        CHECK_EQ(format_utc(next_allowed(utc(c.t), window, zone(c.zone))), std::string{c.expected});
    }
}

TEST_CASE("the instant quiet hours allow is never earlier and never inside the window") {
    using namespace std::chrono_literals;
    const struct {
        const char* zone;
        const char* start;
        const char* end;
    } windows[] = {
        {"Asia/Seoul", "23:50", "00:10"},       {"America/New_York", "23:50", "00:10"},
        {"America/New_York", "01:00", "02:30"}, {"America/New_York", "01:30", "01:45"},
        {"America/New_York", "22:00", "03:00"}, {"Australia/Lord_Howe", "01:50", "02:20"},
    };
    const char* days[] = {"2024-03-09", "2024-11-02", "2024-04-06", "2024-10-05"};
    for (const auto& w : windows) {
        quiet_hours window{at(w.start), at(w.end)};
        const auto* tz = zone(w.zone);
        for (const char* d : days) {
            const auto begin = utc(d);
            for (auto t = begin; t < begin + 72h; t += 5min) {
                CAPTURE(w.zone);
                CAPTURE(w.start);
                CAPTURE(format_utc(t));
                const auto allowed = next_allowed(t, window, tz);
                CHECK(allowed >= t);
                CHECK(allowed <= t + 24h);
                CHECK_EQ(next_allowed(allowed, window, tz), allowed);
            }
        }
    }
}

}  // namespace
}  // namespace billingd::calendar
