// scheduler::billing_rule_of on a subscription row as the database may hold it (CHECKs
// bypassed, written by hand), then the period maths the engine does with the rule.
//
// Input, one column a line: interval_unit, interval_count (any int64), anchor_date,
// charge_time, time_zone, next_period (any int64), currency, uid_key, and "now" (seconds; the
// engine's clock, brought into 1970..2200).
// Invariants: an error text or a rule, never both and never neither; a rule only for a row
// the engine can use (count 1..1000, next_period 0..max_period_index, KRW, a known zone); with
// a rule, period_start of next_period and next_period + 1 (what materialisation and
// advance_subscription compute) exist without undefined behaviour and in order, and
// last_period_started_by(now) is consistent with them; the period's merchant_uid is valid.
// No crash, no undefined behaviour, no hang (libFuzzer -timeout).
#include <chrono>
#include <exception>
#include <string>

#include "domain/merchant_uid.hpp"
#include "fuzz_support.hpp"
#include "scheduler/engine.hpp"
#include "storage/records.hpp"

namespace cal = billingd::calendar;
using std::chrono::seconds;

namespace {

std::int64_t bounded(std::int64_t value, std::int64_t low, std::int64_t high) {
    const auto span = static_cast<std::uint64_t>(high - low) + 1;
    return low + static_cast<std::int64_t>(static_cast<std::uint64_t>(value) % span);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    billingd::fuzz::text_input in(data, size);
    billingd::storage::subscription_record s;
    s.id = 1;
    s.customer_uid = "cust_1";
    s.amount = 9900;
    s.order_name = "Monthly plan";
    s.interval_unit = std::string(in.line());
    s.interval_count = in.number();
    s.anchor_date = std::string(in.line());
    s.charge_time = std::string(in.line());
    s.time_zone = std::string(in.line());
    s.next_period = in.number();
    s.currency = std::string(in.line());
    s.uid_key = std::string(in.line());
    const cal::sys_seconds now{seconds{bounded(in.number(), 0, 7'258'118'400)}};  // ..2200

    billingd::scheduler::rule_or_error r;
    try {
        r = billingd::scheduler::billing_rule_of(s);
    } catch (const std::exception& e) {
        FUZZ_CHECK(false, e.what());
    }
    FUZZ_CHECK(r.rule.has_value() != !r.error.empty(), "both a rule and an error, or neither");
    if (!r.rule) return 0;

    const cal::billing_rule& rule = *r.rule;
    FUZZ_CHECK(s.interval_count >= 1 && s.interval_count <= 1000 && rule.count == s.interval_count,
               "a rule for an interval_count outside 1..1000");
    FUZZ_CHECK(s.next_period >= 0 && s.next_period <= billingd::domain::max_period_index,
               "a rule for a next_period outside 0..max_period_index");
    FUZZ_CHECK(s.currency == "KRW", "a rule for a currency other than KRW");
    FUZZ_CHECK(rule.zone != nullptr && rule.zone == cal::find_zone(s.time_zone),
               "a rule without the row's zone");
    FUZZ_CHECK(cal::parse_interval_unit(s.interval_unit) == rule.unit, "a rule of another unit");

    const auto due = cal::period_start(rule, s.next_period);
    const auto after = cal::period_start(rule, s.next_period + 1);
    FUZZ_CHECK(due <= after, "the next period starts before this one");
    const auto year = std::chrono::year_month_day{cal::period_date(rule, s.next_period + 1)}.year();
    FUZZ_CHECK(year.ok() && year <= std::chrono::year{9999},
               "a rule whose next period falls after the year 9999");
    FUZZ_CHECK(cal::last_period_started_by(rule, due) >= s.next_period,
               "period next_period has not started at its own start");

    const auto n = cal::last_period_started_by(rule, now);
    if (n >= 0) {
        FUZZ_CHECK(cal::period_start(rule, n) <= now && cal::period_start(rule, n + 1) > now,
                   "last_period_started_by(now) is not the last period started");
    } else {
        FUZZ_CHECK(now < cal::period_start(rule, 0), "-1 although period 0 has started");
    }

    if (auto uid = billingd::domain::make_merchant_uid("inst01", s.uid_key, s.next_period)) {
        FUZZ_CHECK(billingd::domain::is_valid_merchant_uid(*uid) &&
                       uid->size() <= billingd::domain::max_merchant_uid_length,
                   "an invalid merchant_uid for a valid period");
    }
    return 0;
}
