#include "operations/subscriptions.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "calendar/calendar.hpp"
#include "domain/merchant_uid.hpp"
#include "operations/format.hpp"
#include "operations/queries.hpp"
#include "scheduler/engine.hpp"
#include "storage/store.hpp"

namespace billingd::operations {
namespace {

using domain::charge_state;
using domain::subscription_status;

// Anchors accepted at all (the calendar ends in 9999).
constexpr std::chrono::local_days earliest_anchor{std::chrono::year{1900} / 1 / 1};
constexpr std::chrono::local_days latest_anchor{std::chrono::year{9999} / 12 / 31};

std::int64_t to_unix(std::chrono::sys_seconds t) {
    return t.time_since_epoch().count();
}
std::chrono::sys_seconds from_unix(std::int64_t t) {
    return std::chrono::sys_seconds{std::chrono::seconds{t}};
}

void check_range(naming names, std::string_view field, std::int64_t value, std::int64_t min,
                 std::int64_t max) {
    if (value < min || value > max)
        refuse_field(names, field, "number-out-of-range",
                     fmt::format("must be between {} and {}, got {}", min, max, value));
}

std::optional<std::string> optional_text(naming names, std::string_view field,
                                         const std::optional<std::string>& s, std::size_t max) {
    if (!s) return std::nullopt;
    check_text(names, field, *s, 0, max);
    return s->empty() ? std::nullopt : s;
}

[[noreturn]] void conflict(std::string type, const std::string& message) {
    throw error(error_kind::conflict, std::move(type), message);
}

void change_status(storage::store& store, const caller& who, const storage::subscription_record& s,
                   subscription_status to, const std::string& detail) {
    store.set_status(s.id, to, who.now);
    record_event(store, who, s.id, std::nullopt, "subscription.status",
                 std::string{domain::to_string(s.status)}, std::string{domain::to_string(to)},
                 detail,
                 nlohmann::json{{"customer_uid", s.customer_uid}, {"reason", detail}}.dump());
}

// Cancels the charges of `s` that could still be sent (scheduled, retry_wait, declined) and
// returns notes about the ones left alone (in doubt: billingd reconciles them; parked).
std::vector<std::string> cancel_open_charges(storage::store& store, const caller& who,
                                             const storage::subscription_record& s,
                                             const std::string& why) {
    std::vector<std::string> notes;
    for (auto c : store.charges_of_subscription(s.id)) {
        if (domain::is_in_doubt(c.state)) {
            notes.push_back(fmt::format(
                "charge {} ({}) is {}: the money may have moved; billingd will still reconcile "
                "it with PortOne",
                c.id, c.merchant_uid, domain::to_string(c.state)));
            continue;
        }
        if (c.state == charge_state::parked) {
            notes.push_back(
                fmt::format("charge {} ({}) is parked: resolve it with `billingctl "
                            "charge resolve {}`",
                            c.id, c.merchant_uid, c.id));
            continue;
        }
        if (c.state != charge_state::scheduled && c.state != charge_state::retry_wait &&
            c.state != charge_state::declined)
            continue;
        if (!domain::charge_transition_allowed(c.state, charge_state::canceled)) continue;
        const std::string from{domain::to_string(c.state)};
        c.state = charge_state::canceled;
        c.next_action_at.reset();
        c.fail_reason = why;
        c.updated_at = who.now;
        store.update_charge(c);
        record_event(store, who, s.id, c.id, "charge.canceled", from, "canceled", why,
                     nlohmann::json{{"merchant_uid", c.merchant_uid},
                                    {"customer_uid", c.customer_uid},
                                    {"amount", c.amount},
                                    {"currency", c.currency},
                                    {"period_index", c.period_index},
                                    {"reason", why}}
                         .dump());
        notes.push_back(
            fmt::format("charge {} ({}) canceled (was {})", c.id, c.merchant_uid, from));
    }
    return notes;
}

}  // namespace

std::int64_t amount_limit(std::int64_t max_amount_per_charge) {
    return max_amount_per_charge > 0 ? std::min(max_amount_per_charge, domain::max_amount)
                                     : default_amount_limit;
}

validated_subscription validate(const new_subscription& in, const subscription_defaults& defaults,
                                std::int64_t now, naming names) {
    validated_subscription out;
    storage::subscription_record& s = out.row_;
    check_text(names, "customer_uid", in.customer_uid, 1, 80, true);
    s.customer_uid = in.customer_uid;
    check_range(names, "amount", in.amount, 1, domain::max_amount);
    // The per-charge limit is the guardrail billingd would park a larger charge at.
    const std::int64_t limit = amount_limit(defaults.max_amount_per_charge);
    if (in.amount > limit)
        refuse_field(names, "amount", "amount-above-limit",
                     fmt::format("{} is above the limit of {} per charge ([guardrails] "
                                 "max_amount_per_charge{}); billingd would park such a charge",
                                 in.amount, limit,
                                 defaults.max_amount_per_charge > 0 ? "" : ", default 100000000"));
    s.amount = in.amount;
    check_text(names, "order_name", in.order_name, 1, 40);
    s.order_name = in.order_name;
    if (in.currency.size() != 3 ||
        in.currency.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string::npos)
        refuse_field(
            names, "currency", "invalid-currency",
            fmt::format("{} is not a 3-letter upper-case ISO code (e.g. KRW)", shown(in.currency)));
    // Amounts go to PortOne as they are; until they are converted per currency exponent, a
    // $9.99 plan would be charged 999 dollars.
    if (in.currency != "KRW")
        refuse_field(names, "currency", "unsupported-currency",
                     fmt::format("only KRW is supported (got {})", shown(in.currency)));
    s.currency = in.currency;
    if (!calendar::parse_interval_unit(in.interval_unit))
        refuse_field(
            names, "interval_unit", "invalid-interval-unit",
            fmt::format("{} is not one of day, week, month, year", shown(in.interval_unit)));
    s.interval_unit = in.interval_unit;
    check_range(names, "interval_count", in.interval_count, 1, max_interval_count);
    s.interval_count = in.interval_count;

    s.time_zone = in.time_zone.value_or(defaults.time_zone);
    const date::time_zone* zone = calendar::find_zone(s.time_zone);
    if (!zone)
        refuse_field(
            names, "time_zone", "invalid-time-zone",
            fmt::format("{} is not in the tz database (e.g. Asia/Seoul)", shown(s.time_zone)));
    const std::string charge_time = in.charge_time.value_or(defaults.charge_time);
    const auto t = calendar::parse_time_of_day(charge_time);
    if (!t)
        refuse_field(names, "charge_time", "invalid-charge-time",
                     fmt::format("{} is not HH:MM (00:00-23:59)", shown(charge_time)));
    s.charge_time = calendar::to_string(*t);

    const auto today = calendar::local_date_of(from_unix(now), zone);
    if (in.trial_days) {
        if (in.anchor_date)
            refuse_field(names, "trial_days", "trial-excludes-anchor",
                         fmt::format("excludes {}: a trial starts today and period 0 is charged "
                                     "when it ends",
                                     label(names, "anchor_date")));
        check_range(names, "trial_days", *in.trial_days, 1, max_trial_days);
        s.anchor_date = calendar::format_local_date(today + std::chrono::days{*in.trial_days});
        s.status = subscription_status::trialing;
    } else if (in.anchor_date) {
        const auto d = calendar::parse_local_date(*in.anchor_date);
        if (!d)
            refuse_field(names, "anchor_date", "invalid-anchor",
                         fmt::format("{} is not a date (YYYY-MM-DD)", shown(*in.anchor_date)));
        if (*d < earliest_anchor || *d > latest_anchor)
            refuse_field(names, "anchor_date", "invalid-anchor",
                         fmt::format("{} is outside {}..{}", *in.anchor_date,
                                     calendar::format_local_date(earliest_anchor),
                                     calendar::format_local_date(latest_anchor)));
        s.anchor_date = calendar::format_local_date(*d);
    } else {
        s.anchor_date = calendar::format_local_date(today);
    }
    if (in.max_periods) {
        check_range(names, "max_periods", *in.max_periods, 1, domain::max_period_index);
        s.max_periods = in.max_periods;
    }
    s.buyer_name = optional_text(names, "buyer_name", in.buyer_name, 100);
    s.buyer_email = optional_text(names, "buyer_email", in.buyer_email, 200);
    s.buyer_tel = optional_text(names, "buyer_tel", in.buyer_tel, 40);

    const auto rule = scheduler::billing_rule_of(s);
    if (!rule.rule) throw error(error_kind::invalid, "unschedulable", rule.error);
    // Period 1 starting before today means period 0 lies more than one period in the past:
    // billingd would account for every period since (charge the last, skip the others).
    const auto second = calendar::period_date(*rule.rule, 1);
    if (!in.backdate && second < today)
        refuse_field(
            names, "anchor_date", "anchor-too-old",
            fmt::format("{} is more than one billing period (every {} {}) before today ({} in "
                        "{}): period 1 already started on {}, and billingd would account for "
                        "every period since as missed. Check the date; if the subscription "
                        "really started then, add {}",
                        s.anchor_date, s.interval_count, s.interval_unit,
                        calendar::format_local_date(today), s.time_zone,
                        calendar::format_local_date(second),
                        names == naming::options ? "--backdate" : "\"backdate\": true"));
    s.next_period = 0;
    s.next_due_at = to_unix(calendar::period_start(*rule.rule, 0));
    if (s.status == subscription_status::trialing) s.trial_end_at = s.next_due_at;
    return out;
}

storage::subscription_record create(storage::store& store, const caller& who,
                                    const validated_subscription& v) {
    auto s = v.row();
    s.created_at = s.updated_at = who.now;
    change_scope tx(store);
    s.id = store.insert_subscription(s);
    record_event(
        store, who, s.id, std::nullopt, "subscription.created", std::nullopt,
        std::string{domain::to_string(s.status)},
        fmt::format("{} every {} {} from {} {} {}; period 0 due {}",
                    format_amount(s.amount, s.currency), s.interval_count, s.interval_unit,
                    s.anchor_date, s.charge_time, s.time_zone,
                    format_local(s.next_due_at, s.time_zone)),
        nlohmann::json{{"customer_uid", s.customer_uid},
                       {"amount", s.amount},
                       {"currency", s.currency},
                       {"order_name", s.order_name},
                       {"interval_unit", s.interval_unit},
                       {"interval_count", s.interval_count},
                       {"anchor_date", s.anchor_date},
                       {"charge_time", s.charge_time},
                       {"time_zone", s.time_zone},
                       {"trial_end_at", s.trial_end_at ? nlohmann::json(*s.trial_end_at) : nullptr},
                       {"max_periods", s.max_periods ? nlohmann::json(*s.max_periods) : nullptr},
                       {"first_due_at", s.next_due_at ? nlohmann::json(*s.next_due_at) : nullptr}}
            .dump());
    auto stored = *store.find_subscription(s.id);
    tx.commit();
    return stored;
}

status_change pause(storage::store& store, const caller& who, std::int64_t id) {
    change_scope tx(store);
    const auto s = subscription(store, id);
    if (!domain::subscription_transition_allowed(s.status, subscription_status::paused))
        conflict("subscription-not-pausable",
                 fmt::format("subscription {} is {}: only trialing, active or past_due "
                             "subscriptions can be paused",
                             s.id, domain::to_string(s.status)));
    status_change r;
    r.detail = "paused by " + who.role;
    change_status(store, who, s, subscription_status::paused, r.detail);
    r.notes = cancel_open_charges(store, who, s, "subscription paused");
    r.subscription = *store.find_subscription(s.id);
    tx.commit();
    return r;
}

status_change resume(storage::store& store, const caller& who, std::int64_t id) {
    change_scope tx(store);
    const auto s = subscription(store, id);
    if (s.status != subscription_status::paused && s.status != subscription_status::unpaid)
        conflict("subscription-not-resumable",
                 fmt::format("subscription {} is {}: only a paused or unpaid subscription can "
                             "be resumed",
                             s.id, domain::to_string(s.status)));
    const auto rule = scheduler::billing_rule_of(s);
    if (!rule.rule)
        throw error(error_kind::invalid, "subscription-unschedulable",
                    fmt::format("subscription {} cannot be scheduled: {}", s.id, rule.error));
    const auto now = who.now;
    // The first period whose start is at or after now; never move backwards.
    std::int64_t next = calendar::last_period_started_by(*rule.rule, from_unix(now)) + 1;
    if (next > 0 && to_unix(calendar::period_start(*rule.rule, next - 1)) == now) --next;
    next = std::max(next, s.next_period);
    for (const auto& c : store.charges_of_subscription(s.id))
        if (c.period_index == next && domain::is_final(c.state)) ++next;
    const auto to = s.trial_end_at && *s.trial_end_at > now ? subscription_status::trialing
                                                            : subscription_status::active;
    change_status(store, who, s, to, "resumed by " + who.role);
    status_change r;
    std::optional<std::int64_t> due;
    if (s.max_periods && next >= *s.max_periods) {
        r.detail = "no periods left; billingd ends the subscription";
    } else {
        due = to_unix(calendar::period_start(*rule.rule, next));
        r.detail =
            fmt::format("next period {} due {}", next, calendar::format_utc(from_unix(*due)));
    }
    if (next > s.next_period)
        r.detail += next - 1 == s.next_period
                        ? fmt::format("; period {} passed while {} and is not charged",
                                      s.next_period, domain::to_string(s.status))
                        : fmt::format("; periods {}-{} passed while {} and are not charged",
                                      s.next_period, next - 1, domain::to_string(s.status));
    store.set_schedule(s.id, next, due, now);
    record_event(
        store, who, s.id, std::nullopt, "subscription.resumed", std::nullopt, std::nullopt,
        r.detail,
        nlohmann::json{{"customer_uid", s.customer_uid},
                       {"status", domain::to_string(to)},
                       {"next_period", next},
                       {"next_due_at", due ? nlohmann::json(*due) : nlohmann::json(nullptr)}}
            .dump());
    r.subscription = *store.find_subscription(s.id);
    tx.commit();
    return r;
}

status_change cancel(storage::store& store, const caller& who, std::int64_t id,
                     bool at_period_end) {
    change_scope tx(store);
    const auto s = subscription(store, id);
    if (!domain::subscription_transition_allowed(s.status, subscription_status::canceled))
        conflict("subscription-already-ended",
                 fmt::format("subscription {} is already {}", s.id, domain::to_string(s.status)));
    status_change r;
    if (at_period_end) {
        if (s.cancel_at_period_end)
            conflict("subscription-already-canceling",
                     fmt::format("subscription {} is already set to cancel at period end", s.id));
        store.set_cancel_at_period_end(s.id, true, who.now);
        r.detail = fmt::format("cancels when period {} would start ({})", s.next_period,
                               format_local(s.next_due_at, s.time_zone));
        record_event(store, who, s.id, std::nullopt, "subscription.cancel_at_period_end",
                     std::nullopt, std::nullopt, r.detail,
                     nlohmann::json{{"customer_uid", s.customer_uid},
                                    {"cancel_at", s.next_due_at ? nlohmann::json(*s.next_due_at)
                                                                : nlohmann::json(nullptr)},
                                    {"first_uncharged_period", s.next_period}}
                         .dump());
    } else {
        r.detail = "canceled by " + who.role;
        change_status(store, who, s, subscription_status::canceled, r.detail);
        store.set_schedule(s.id, s.next_period, std::nullopt, who.now);
        r.notes = cancel_open_charges(store, who, s, "subscription canceled");
    }
    r.subscription = *store.find_subscription(s.id);
    tx.commit();
    return r;
}

}  // namespace billingd::operations
