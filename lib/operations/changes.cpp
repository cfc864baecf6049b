// Subscription changes: see changes.hpp. Each operation is one BEGIN IMMEDIATE transaction
// that re-reads the subscription, so billingd starting a period at the same moment either
// sees the change or has already created that period's charge (then the change is refused
// for that period, or lands on the next one when the caller let it default).
#include "operations/changes.hpp"

#include <fmt/format.h>

#include "calendar/calendar.hpp"
#include "domain/json_object.hpp"
#include "domain/merchant_uid.hpp"
#include "domain/text.hpp"
#include "scheduler/engine.hpp"
#include "storage/change_store.hpp"
#include "storage/store.hpp"

namespace billingd::operations {
namespace {

using domain::subscription_status;

[[noreturn]] void invalid(std::string type, const std::string& message) {
    throw error(error_kind::invalid, std::move(type), message);
}

storage::subscription_record changeable(storage::store& store, std::int64_t id) {
    auto s = store.find_subscription(id);
    if (!s)
        throw error(error_kind::not_found, "subscription-not-found",
                    fmt::format("no subscription with id {}", id));
    if (s->status == subscription_status::canceled || s->status == subscription_status::ended)
        throw error(error_kind::conflict, "subscription-closed",
                    fmt::format("subscription {} is {}: it has no periods to change", id,
                                domain::to_string(s->status)));
    return *s;
}

void check_values(const subscription_update& c) {
    if (!c.amount && !c.order_name && !c.charge_time && !c.interval_unit && !c.interval_count &&
        !c.customer_uid)
        invalid("nothing-to-change",
                "nothing to change: give an amount, order name, charge time, interval or "
                "customer_uid");
    if (c.amount && (*c.amount < 1 || *c.amount > c.amount_limit))
        invalid("invalid-amount", fmt::format("amount: {} is outside 1..{} (KRW per charge)",
                                              *c.amount, c.amount_limit));
    if (c.order_name)
        if (auto bad = domain::check_text("order name", *c.order_name, 1, 40))
            invalid("invalid-order-name", *bad);
    if (c.charge_time && !calendar::parse_time_of_day(*c.charge_time))
        invalid("invalid-charge-time",
                fmt::format("charge time: '{}' is not HH:MM (00:00..23:59)", *c.charge_time));
    if (c.interval_unit && !calendar::parse_interval_unit(*c.interval_unit))
        invalid(
            "invalid-interval",
            fmt::format("interval: '{}' is not one of day, week, month, year", *c.interval_unit));
    if (c.interval_count && (*c.interval_count < 1 || *c.interval_count > 1000))
        invalid("invalid-interval",
                fmt::format("interval count: {} is outside 1..1000", *c.interval_count));
    if (c.customer_uid)
        if (auto bad = domain::check_text("customer_uid", *c.customer_uid, 1, 80))
            invalid("invalid-customer-uid", *bad);
    if (c.from_period && (*c.from_period < 0 || *c.from_period > domain::max_period_index))
        invalid("invalid-period", fmt::format("period {} is outside 0..{}", *c.from_period,
                                              domain::max_period_index));
}

// The amount and name in effect at `period`: the schedule's latest entry at or before it,
// else the subscription's current price.
std::pair<std::int64_t, std::string> price_in_effect(storage::change_store& changes,
                                                     const storage::subscription_record& s,
                                                     std::int64_t period) {
    if (s.price_change_period && *s.price_change_period <= period)
        if (auto e = changes.price_at(s.id, period); e && !e->applied_at)
            return {e->amount, e->order_name};
    return {s.amount, s.order_name};
}

}  // namespace

update_result update_subscription(storage::store& store, const caller& who,
                                  std::int64_t subscription_id, const subscription_update& change) {
    check_values(change);
    storage::change_store changes(store.db());
    change_scope tx(store);
    auto s = changeable(store, subscription_id);
    const std::int64_t next = s.next_period;
    const std::int64_t from = change.from_period.value_or(next);
    if (from < next)
        invalid("period-has-charge",
                fmt::format("period {} of subscription {} already has a charge, whose request is "
                            "fixed; the earliest period a change can start is {}",
                            from, s.id, next));
    const bool calendar_change =
        change.charge_time || change.interval_unit || change.interval_count;
    if ((calendar_change || change.customer_uid) && from != next)
        invalid("change-starts-next-period",
                fmt::format("charge time, interval and card changes start with the next period "
                            "({}), not period {}",
                            next, from));
    update_result out;
    out.from_period = from;

    if (change.amount || change.order_name) {
        const auto [amount_before, name_before] = price_in_effect(changes, s, from);
        storage::price_entry e;
        e.subscription_id = s.id;
        e.from_period = from;
        e.amount = change.amount.value_or(amount_before);
        e.order_name = change.order_name.value_or(name_before);
        e.created_by = who.actor;
        e.created_at = who.now;
        if (!changes.put_price_entry(e))
            throw error(error_kind::conflict, "period-has-charge",
                        fmt::format("the price of period {} was already used by a charge", from));
        if (!s.price_change_period || from < *s.price_change_period)
            changes.set_price_change_period(s.id, from, who.now);
        domain::json_object data;
        data.add("from_period", from)
            .add("amount_before", amount_before)
            .add("amount", e.amount)
            .add("order_name", e.order_name)
            .add("currency", s.currency);
        out.event_ids.push_back(
            record_event(store, who, s.id, std::nullopt, "subscription.price_scheduled",
                         std::to_string(amount_before), std::to_string(e.amount),
                         fmt::format("from period {}: {} -> {} KRW, '{}'", from, amount_before,
                                     e.amount, e.order_name),
                         data.str()));
    }

    if (change.customer_uid && *change.customer_uid != s.customer_uid) {
        changes.set_customer_uid(s.id, *change.customer_uid, who.now);
        domain::json_object data;
        data.add("customer_uid_before", s.customer_uid)
            .add("customer_uid", *change.customer_uid)
            .add("from_period", from);
        out.event_ids.push_back(record_event(
            store, who, s.id, std::nullopt, "subscription.card_changed", s.customer_uid,
            *change.customer_uid,
            fmt::format("customer_uid for period {} on: {}", from, *change.customer_uid),
            data.str()));
    }

    if (calendar_change) {
        const auto old_rule = scheduler::billing_rule_of(s);
        if (!old_rule.rule)
            throw error(error_kind::conflict, "subscription-invalid",
                        fmt::format("subscription {} cannot be placed on the calendar ({}); fix "
                                    "it before changing its schedule",
                                    s.id, old_rule.error));
        // Re-anchor: the next period starts on the local date it would have started on, at
        // the new charge time; later periods follow the new interval from there.
        const auto start = calendar::period_start(*old_rule.rule, next);
        auto changed = s;
        changed.anchor_date =
            calendar::format_local_date(calendar::local_date_of(start, old_rule.rule->zone));
        changed.anchor_period = next;
        if (change.charge_time)
            changed.charge_time =
                calendar::to_string(*calendar::parse_time_of_day(*change.charge_time));
        if (change.interval_unit) changed.interval_unit = *change.interval_unit;
        if (change.interval_count) changed.interval_count = *change.interval_count;
        const auto rule = scheduler::billing_rule_of(changed);
        if (!rule.rule) invalid("invalid-schedule", rule.error);
        std::optional<std::int64_t> due;
        if (s.next_due_at) {  // a period waiting for the one before stays unscheduled
            due = calendar::period_start(*rule.rule, next).time_since_epoch().count();
            if (s.trial_end_at) due = std::max(*due, *s.trial_end_at);
        }
        changes.set_calendar(s.id, changed.anchor_date, changed.charge_time, changed.interval_unit,
                             changed.interval_count, next, due, who.now);
        domain::json_object data;
        data.add("from_period", next)
            .add("anchor_date", changed.anchor_date)
            .add("charge_time", changed.charge_time)
            .add("interval_unit", changed.interval_unit)
            .add("interval_count", changed.interval_count);
        if (due) data.add("next_due_at", *due);
        out.event_ids.push_back(record_event(
            store, who, s.id, std::nullopt, "subscription.schedule_changed", std::nullopt,
            std::nullopt,
            fmt::format("from period {}: every {} {} at {} from {}", next, changed.interval_count,
                        changed.interval_unit, changed.charge_time, changed.anchor_date),
            data.str()));
    }
    tx.commit();
    out.subscription = *store.find_subscription(s.id);
    return out;
}

std::vector<storage::price_entry> price_schedule(storage::store& store,
                                                 std::int64_t subscription_id) {
    if (!store.find_subscription(subscription_id))
        throw error(error_kind::not_found, "subscription-not-found",
                    fmt::format("no subscription with id {}", subscription_id));
    return storage::change_store(store.db()).price_entries(subscription_id);
}

std::int64_t record_consent(storage::store& store, const caller& who, std::int64_t subscription_id,
                            std::optional<std::int64_t> period) {
    storage::change_store changes(store.db());
    change_scope tx(store);
    auto s = changeable(store, subscription_id);
    std::int64_t p = 0;
    if (period) {
        p = *period;
        if (p < s.next_period && s.consent_period != p)
            invalid("period-has-charge",
                    fmt::format("period {} of subscription {} already has a charge", p, s.id));
    } else if (s.consent_period) {
        p = *s.consent_period;
    } else if (s.price_change_period) {
        p = *s.price_change_period;
    } else {
        throw error(error_kind::conflict, "nothing-awaits-consent",
                    fmt::format("subscription {} has no period held for consent and no price "
                                "change scheduled; give --period N to record consent ahead",
                                s.id));
    }
    changes.insert_consent(s.id, p, who.now, who.actor);
    const bool was_held = s.consent_period && *s.consent_period == p;
    if (was_held) {
        // Due again at once: billingd starts the period in its next pass.
        changes.set_consent_hold(s.id, std::nullopt, std::nullopt, who.now);
        store.set_schedule(s.id, s.next_period, who.now, who.now);
    }
    domain::json_object data;
    data.add("period_index", p).add("was_held", std::int64_t{was_held});
    const auto id =
        record_event(store, who, s.id, std::nullopt, "subscription.consent_given", std::nullopt,
                     std::nullopt, fmt::format("consent recorded for period {}", p), data.str());
    tx.commit();
    return id;
}

}  // namespace billingd::operations
