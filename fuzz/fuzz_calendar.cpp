// The calendar: its parsers and the period maths a subscription's due times come from.
//
// Input, one value a line: interval unit, count, anchor date, charge time, time zone, an
// instant t (parse_utc text, else seconds after period 0), quiet hours "HH:MM-HH:MM", a period
// index p. Every line is also given to every parser.
// Invariants: whatever parses formats back to the same text (parse_utc: to the same instant);
// with a rule (count bounded to 1..1000, dates within the years 0000..9999):
// n = last_period_started_by(t) has period_start(n) <= t < period_start(n + 1) (or
// t < period_start(0) when n = -1), so n >= p exactly when period_start(p) <= t; period starts
// never go backwards; month-end clamping takes the anchor's day or the month's last; the next
// instant outside the quiet hours is not before t, and is t when t is outside them.
#include <date/tz.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <string>

#include "calendar/calendar.hpp"
#include "fuzz_support.hpp"

namespace cal = billingd::calendar;
using std::chrono::days;
using std::chrono::seconds;

namespace {

void check_parsers(std::string_view text) {
    if (auto d = cal::parse_local_date(text))
        FUZZ_CHECK(cal::format_local_date(*d) == text, "a date does not format back");
    if (auto t = cal::parse_time_of_day(text)) {
        FUZZ_CHECK(t->since_midnight >= std::chrono::minutes{0} &&
                       t->since_midnight < std::chrono::hours{24},
                   "a time of day outside the day");
        FUZZ_CHECK(cal::to_string(*t) == text, "a time of day does not format back");
    }
    if (auto u = cal::parse_interval_unit(text))
        FUZZ_CHECK(cal::to_string(*u) == text, "an interval unit does not format back");
    if (auto t = cal::parse_utc(text)) {
        const std::string formatted = cal::format_utc(*t);
        FUZZ_CHECK(cal::parse_utc(formatted) == t, "a UTC instant does not parse back");
        if (text.size() == 20) FUZZ_CHECK(formatted == text, "a UTC instant does not format back");
        FUZZ_CHECK(cal::parse_local_date(text.substr(0, 10)).has_value(), "no date in an instant");
    }
}

// Seconds of the years 0000..9999: every instant the parsers can produce.
constexpr std::int64_t first_second = -62167219200;  // 0000-01-01T00:00:00Z
constexpr std::int64_t last_second = 253402300799;   // 9999-12-31T23:59:59Z

std::int64_t bounded(std::int64_t value, std::int64_t low, std::int64_t high) {
    const auto span = static_cast<std::uint64_t>(high - low) + 1;
    return low + static_cast<std::int64_t>(static_cast<std::uint64_t>(value) % span);
}

void check_periods(const cal::billing_rule& rule, cal::sys_seconds t, std::int64_t p_input) {
    const auto n = cal::last_period_started_by(rule, t);
    FUZZ_CHECK(n >= -1, "last_period_started_by below -1");
    if (n == -1) {
        FUZZ_CHECK(t < cal::period_start(rule, 0), "-1 although period 0 has started");
    } else {
        FUZZ_CHECK(cal::period_start(rule, n) <= t, "the last period started has not started");
        FUZZ_CHECK(cal::period_start(rule, n + 1) > t, "a later period has started too");
    }
    const std::int64_t p = bounded(p_input, 0, n + 2);
    const auto start = cal::period_start(rule, p);
    FUZZ_CHECK((n >= p) == (start <= t), "n >= p exactly when period_start(p) <= t");
    FUZZ_CHECK(start <= cal::period_start(rule, p + 1), "period starts went backwards");

    const auto date = std::chrono::year_month_day{cal::period_date(rule, p)};
    const std::chrono::year_month_day anchor{rule.anchor};
    FUZZ_CHECK(date.ok(), "a period date that does not exist");
    if (rule.unit == cal::interval_unit::month || rule.unit == cal::interval_unit::year) {
        const auto last =
            std::chrono::year_month_day_last{date.year(), date.month() / std::chrono::last};
        FUZZ_CHECK(date.day() == std::min(anchor.day(), last.day()),
                   "month-end clamping took neither the anchor's day nor the month's last");
    } else {
        const auto step = rule.unit == cal::interval_unit::week ? 7 : 1;
        FUZZ_CHECK(cal::period_date(rule, p) == rule.anchor + days{p * rule.count * step},
                   "a day or week period not a whole number of steps from the anchor");
    }
}

void check_quiet(const cal::quiet_hours& window, cal::sys_seconds t, const date::time_zone* zone) {
    const auto next = cal::next_allowed(t, window, zone);
    FUZZ_CHECK(next >= t, "next_allowed before t");
    FUZZ_CHECK(next - t <= std::chrono::hours{48}, "next_allowed more than two days later");
    const auto local = zone->to_local(t);
    const auto now = std::chrono::duration_cast<seconds>(local - std::chrono::floor<days>(local));
    const seconds start = window.start.since_midnight;
    const seconds end = window.end.since_midnight;
    const bool inside = !window.empty() &&
                        (start < end ? (now >= start && now < end) : (now >= start || now < end));
    if (!inside) FUZZ_CHECK(next == t, "t is outside the quiet hours but was moved");
    if (inside) FUZZ_CHECK(next > t, "t is inside the quiet hours but was not moved");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    billingd::fuzz::text_input in(data, size);
    const auto unit_text = in.line();
    const auto count_text = in.line();
    const auto anchor_text = in.line();
    const auto time_text = in.line();
    const auto zone_text = in.line();
    const auto instant_text = in.line();
    const auto quiet_text = in.line();
    const auto p_text = in.line();
    for (auto text : {unit_text, count_text, anchor_text, time_text, zone_text, instant_text,
                      quiet_text, p_text})
        check_parsers(text);

    const auto unit = cal::parse_interval_unit(unit_text);
    const auto anchor = cal::parse_local_date(anchor_text);
    const auto at = cal::parse_time_of_day(time_text);
    const date::time_zone* zone = nullptr;
    try {
        zone = cal::find_zone(zone_text);
    } catch (const std::exception& e) {
        FUZZ_CHECK(false, e.what());
    }
    if (!zone) return 0;

    cal::sys_seconds t;
    if (auto parsed = cal::parse_utc(instant_text)) {
        t = *parsed;
    } else {
        t = cal::sys_seconds{seconds{bounded(billingd::fuzz::text_input::to_number(instant_text),
                                             first_second, last_second)}};
    }

    const auto dash = quiet_text.find('-');
    if (dash != std::string_view::npos) {
        const auto start = cal::parse_time_of_day(quiet_text.substr(0, dash));
        const auto end = cal::parse_time_of_day(quiet_text.substr(dash + 1));
        if (start && end) check_quiet(cal::quiet_hours{*start, *end}, t, zone);
    }

    if (!unit || !anchor || !at) return 0;
    cal::billing_rule rule;
    rule.unit = *unit;
    rule.count =
        static_cast<int>(bounded(billingd::fuzz::text_input::to_number(count_text), 1, 1000));
    rule.anchor = *anchor;
    rule.charge_time = *at;
    rule.zone = zone;
    check_periods(rule, t, billingd::fuzz::text_input::to_number(p_text));
    return 0;
}
