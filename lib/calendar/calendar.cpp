#include "calendar/calendar.hpp"

#include <date/tz.h>

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <exception>

namespace billingd::calendar {

namespace {

using std::chrono::days;
using std::chrono::minutes;
using std::chrono::months;
using std::chrono::seconds;

// std::chrono::local_days and date::local_days use different clock tags; both count days
// since 1970-01-01, so converting through time_since_epoch is exact.
date::local_seconds to_date_local(local_days day, seconds since_midnight) {
    return date::local_seconds{day.time_since_epoch() + since_midnight};
}

local_days to_std_local_days(date::local_seconds t) {
    return local_days{std::chrono::floor<days>(t.time_since_epoch())};
}

// Reads exactly text.size() decimal digits; no sign, no spaces.
std::optional<int> parse_digits(std::string_view text) {
    if (text.empty()) return std::nullopt;
    int value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + (c - '0');
    }
    return value;
}

// "HH:MM" or "HH:MM:SS" with range checks; the caller has already fixed the length.
std::optional<seconds> parse_clock(std::string_view text, bool with_seconds) {
    if (text[2] != ':' || (with_seconds && text[5] != ':')) return std::nullopt;
    auto h = parse_digits(text.substr(0, 2));
    auto m = parse_digits(text.substr(3, 2));
    auto s = with_seconds ? parse_digits(text.substr(6, 2)) : std::optional<int>{0};
    if (!h || !m || !s || *h > 23 || *m > 59 || *s > 59) return std::nullopt;
    return std::chrono::hours{*h} + minutes{*m} + seconds{*s};
}

// Every wall-clock time maps to at least one instant; an ambiguous one to two. Returns the
// earliest instant >= not_before among them (or the last one if none qualifies), so that a
// caller already past the first occurrence of an overlap gets the second.
sys_seconds resolve_not_before(date::local_seconds local, const date::time_zone* zone,
                               sys_seconds not_before) {
    auto info = zone->get_info(local);
    // For a gap, first is the offset in force before it, which moves the wall-clock time
    // forward by the gap length; for an overlap, first is the earlier of the two offsets.
    sys_seconds earlier{local.time_since_epoch() - info.first.offset};
    if (info.result == date::local_info::ambiguous && earlier < not_before) {
        return sys_seconds{local.time_since_epoch() - info.second.offset};
    }
    return earlier;
}

std::int64_t months_between(local_days from, local_days to) {
    std::chrono::year_month_day a{from};
    std::chrono::year_month_day b{to};
    return (static_cast<std::int64_t>(static_cast<int>(b.year())) - static_cast<int>(a.year())) *
               12 +
           (static_cast<std::int64_t>(static_cast<unsigned>(b.month())) -
            static_cast<unsigned>(a.month()));
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
    std::int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

}  // namespace

std::string_view to_string(interval_unit unit) {
    switch (unit) {
        case interval_unit::day:
            return "day";
        case interval_unit::week:
            return "week";
        case interval_unit::month:
            return "month";
        case interval_unit::year:
            return "year";
    }
    assert(false && "invalid interval_unit");
    return "?";
}

std::optional<interval_unit> parse_interval_unit(std::string_view text) {
    for (auto unit :
         {interval_unit::day, interval_unit::week, interval_unit::month, interval_unit::year}) {
        if (text == to_string(unit)) return unit;
    }
    return std::nullopt;
}

std::optional<time_of_day> parse_time_of_day(std::string_view text) {
    if (text.size() != 5) return std::nullopt;
    auto clock = parse_clock(text, false);
    if (!clock) return std::nullopt;
    return time_of_day{std::chrono::duration_cast<minutes>(*clock)};
}

std::string to_string(time_of_day t) {
    auto total = t.since_midnight.count();
    char buf[16];
    std::snprintf(buf, sizeof buf, "%02d:%02d", static_cast<int>(total / 60),
                  static_cast<int>(total % 60));
    return buf;
}

std::optional<local_days> parse_local_date(std::string_view text) {
    if (text.size() != 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
    auto y = parse_digits(text.substr(0, 4));
    auto m = parse_digits(text.substr(5, 2));
    auto d = parse_digits(text.substr(8, 2));
    if (!y || !m || !d) return std::nullopt;
    std::chrono::year_month_day ymd{std::chrono::year{*y},
                                    std::chrono::month{static_cast<unsigned>(*m)},
                                    std::chrono::day{static_cast<unsigned>(*d)}};
    if (!ymd.ok()) return std::nullopt;
    return local_days{ymd};
}

std::string format_local_date(local_days d) {
    std::chrono::year_month_day ymd{d};
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
    return buf;
}

std::optional<sys_seconds> parse_utc(std::string_view text) {
    std::string_view clock_text;
    if (text.size() == 20 && text[10] == 'T' && text[19] == 'Z') {
        clock_text = text.substr(11, 8);
    } else if (text.size() == 19 && text[10] == ' ') {
        clock_text = text.substr(11, 8);
    } else if (text.size() != 10) {
        return std::nullopt;
    }
    auto day = parse_local_date(text.substr(0, 10));
    if (!day) return std::nullopt;
    seconds since_midnight{0};
    if (!clock_text.empty()) {
        auto clock = parse_clock(clock_text, true);
        if (!clock) return std::nullopt;
        since_midnight = *clock;
    }
    return sys_seconds{day->time_since_epoch() + since_midnight};
}

std::string format_utc(sys_seconds t) {
    auto day = std::chrono::floor<days>(t);
    std::chrono::hh_mm_ss<seconds> clock{t - day};
    char buf[48];
    std::snprintf(buf, sizeof buf, "%sT%02d:%02d:%02dZ",
                  format_local_date(local_days{day.time_since_epoch()}).c_str(),
                  static_cast<int>(clock.hours().count()),
                  static_cast<int>(clock.minutes().count()),
                  static_cast<int>(clock.seconds().count()));
    return buf;
}

const date::time_zone* find_zone(std::string_view name) {
    if (name.empty()) return nullptr;
    try {
        return date::locate_zone(name);
    } catch (const std::exception&) {
        // Unknown name, or no readable tz database: both mean "no such zone" to the caller.
        return nullptr;
    }
}

sys_seconds resolve_local(local_days day, time_of_day at, const date::time_zone* zone) {
    assert(zone != nullptr);
    return resolve_not_before(to_date_local(day, at.since_midnight), zone, sys_seconds::min());
}

local_days local_date_of(sys_seconds t, const date::time_zone* zone) {
    assert(zone != nullptr);
    return to_std_local_days(zone->to_local(t));
}

local_days period_date(const billing_rule& rule, std::int64_t n) {
    assert(rule.count >= 1);
    const std::int64_t steps = (n - rule.first_period) * rule.count;
    switch (rule.unit) {
        case interval_unit::day:
            return rule.anchor + days{steps};
        case interval_unit::week:
            return rule.anchor + days{steps * 7};
        case interval_unit::month:
        case interval_unit::year: {
            const std::chrono::year_month_day anchor{rule.anchor};
            const auto total = rule.unit == interval_unit::year ? steps * 12 : steps;
            const auto target = anchor.year() / anchor.month() + months{total};
            assert(target.ok());
            const auto last = (target / std::chrono::last).day();
            return local_days{target / std::min(anchor.day(), last)};
        }
    }
    assert(false && "invalid interval_unit");
    return rule.anchor;
}

sys_seconds period_start(const billing_rule& rule, std::int64_t n) {
    return resolve_local(period_date(rule, n), rule.charge_time, rule.zone);
}

std::int64_t last_period_started_by(const billing_rule& rule, sys_seconds t) {
    assert(rule.zone != nullptr && rule.count >= 1);
    const std::int64_t first = rule.first_period;
    if (t < period_start(rule, first)) return first - 1;

    // Estimate from the local calendar, then correct. Counting whole units up to t's local
    // date never undershoots (a later unit starts on a later local date) and overshoots by at
    // most one period (period n may start later on t's own date); the upward walk is a guard.
    const auto today = local_date_of(t, rule.zone);
    std::int64_t n = 0;
    switch (rule.unit) {
        case interval_unit::day:
            n = floor_div((today - rule.anchor).count(), rule.count);
            break;
        case interval_unit::week:
            n = floor_div((today - rule.anchor).count(), std::int64_t{7} * rule.count);
            break;
        case interval_unit::month:
            n = floor_div(months_between(rule.anchor, today), rule.count);
            break;
        case interval_unit::year:
            n = floor_div(months_between(rule.anchor, today), std::int64_t{12} * rule.count);
            break;
    }
    n = std::max<std::int64_t>(n, 0) + first;
    // Period starts are non-decreasing in n, so walking to the boundary finds the largest n.
    while (n > first && period_start(rule, n) > t) --n;
    while (period_start(rule, n + 1) <= t) ++n;
    return n;
}

sys_seconds next_allowed(sys_seconds t, const quiet_hours& window, const date::time_zone* zone) {
    assert(zone != nullptr);
    if (window.empty()) return t;
    const auto local = zone->to_local(t);
    const auto local_day = std::chrono::floor<date::days>(local);
    const auto now = std::chrono::duration_cast<seconds>(local - local_day);
    const seconds start = window.start.since_midnight;
    const seconds end = window.end.since_midnight;
    const local_days today = to_std_local_days(local_day);

    local_days closes_on;
    if (start < end) {
        if (now < start || now >= end) return t;
        closes_on = today;
    } else if (now >= start) {
        closes_on = today + days{1};
    } else if (now < end) {
        closes_on = today;
    } else {
        return t;
    }
    return std::max(t, resolve_not_before(to_date_local(closes_on, end), zone, t));
}

}  // namespace billingd::calendar
