// Billing calendar: pure date math, no I/O.
//
// A billing rule turns a period index n (0, 1, 2, ...) into the UTC instant at which
// period n starts and its charge becomes due. Periods are always computed from the
// anchor, never from the previous period, so month-end clamping never drifts:
// anchored on Jan 31, monthly periods fall on Jan 31, Feb 29 (leap year), Mar 31, Apr 30.
//
// Local dates are resolved in an IANA time zone at a local time of day:
// - a local time inside a DST gap (does not exist) resolves to the same wall-clock time
//   shifted forward by the gap, i.e. the first instant after the gap plus the offset into it;
// - a local time inside a DST overlap (exists twice) resolves to the earlier instant.
//
// Thread safety: all functions are pure; time zones come from the OS tz database.
// Errors: parse_* return std::nullopt on malformed input; find_zone returns nullptr for
// an unknown zone name. Nothing here throws for valid rules.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace date {
class time_zone;
}

namespace billingd::calendar {

using sys_seconds = std::chrono::sys_seconds;
using local_days = std::chrono::local_days;

enum class interval_unit { day, week, month, year };

std::string_view to_string(interval_unit unit);
std::optional<interval_unit> parse_interval_unit(std::string_view text);

// Local time of day at which a charge is due, "HH:MM" (00:00..23:59).
struct time_of_day {
    std::chrono::minutes since_midnight{0};
};
std::optional<time_of_day> parse_time_of_day(std::string_view text);
std::string to_string(time_of_day t);

// Local calendar date "YYYY-MM-DD".
std::optional<local_days> parse_local_date(std::string_view text);
std::string format_local_date(local_days d);

// UTC instant "YYYY-MM-DDTHH:MM:SSZ" and back. Also accepts "YYYY-MM-DD HH:MM:SS" (UTC),
// and a bare "YYYY-MM-DD" (midnight UTC).
std::optional<sys_seconds> parse_utc(std::string_view text);
std::string format_utc(sys_seconds t);

// nullptr when the name is not in the OS tz database.
const date::time_zone* find_zone(std::string_view name);

// Resolve a local wall-clock date and time in `zone` to UTC using the gap/overlap rules above.
sys_seconds resolve_local(local_days day, time_of_day at, const date::time_zone* zone);

// Local date of a UTC instant in `zone`.
local_days local_date_of(sys_seconds t, const date::time_zone* zone);

struct billing_rule {
    interval_unit unit = interval_unit::month;
    int count = 1;                          // >= 1: every `count` units
    local_days anchor{};                    // local date of period `first_period`
    time_of_day charge_time{};              // local time of day of every period start
    const date::time_zone* zone = nullptr;  // required
    // The period that starts on `anchor` (0 unless the calendar was re-anchored by a change of
    // interval or charge time). Periods before it are counted backwards from the anchor.
    std::int64_t first_period = 0;
};

// Local date on which period n starts, month-end clamped from the anchor.
local_days period_date(const billing_rule& rule, std::int64_t n);

// UTC instant at which period n starts (its charge is due).
sys_seconds period_start(const billing_rule& rule, std::int64_t n);

// The last period index whose start is <= t, or first_period - 1 when the anchor period is
// still in the future.
// Equivalent to scanning period_start, but O(1)-ish for any distance from the anchor.
std::int64_t last_period_started_by(const billing_rule& rule, sys_seconds t);

// A daily window of local time during which no charge is sent (e.g. card-company maintenance
// 23:50-00:10). start == end means "no quiet hours". The window may wrap past midnight.
struct quiet_hours {
    time_of_day start{};
    time_of_day end{};
    bool empty() const { return start.since_midnight == end.since_midnight; }
};

// t itself when t is outside the window, else the instant the window closes (local `end`
// on the right day, resolved with resolve_local). "Inside" compares t's local wall-clock
// time with the window, so during an autumn overlap the window applies on both passes; when t
// is already past the first occurrence of an ambiguous `end`, the second one is returned.
// The result is never earlier than t.
sys_seconds next_allowed(sys_seconds t, const quiet_hours& window, const date::time_zone* zone);

}  // namespace billingd::calendar
