// What is due: giving new subscriptions a due time, and turning due periods into charge rows
// under the catch-up policy. Every write here happens in one transaction per batch.
#include <algorithm>
#include <functional>
#include <limits>

#include "domain/merchant_uid.hpp"
#include "domain/text.hpp"
#include "scheduler/engine_impl.hpp"

namespace billingd::scheduler {

using domain::subscription_status;

std::int64_t to_unix(std::chrono::sys_seconds t) {
    return t.time_since_epoch().count();
}
std::chrono::sys_seconds from_unix(std::int64_t t) {
    return std::chrono::sys_seconds{std::chrono::seconds{t}};
}

namespace {

// Whether period `period` of the rule stays within the years date arithmetic handles (it
// wraps beyond); counts are bounded (1..1000, 0..max_period_index) so nothing here overflows.
bool within_calendar(calendar::interval_unit unit, std::int64_t count, calendar::local_days anchor,
                     std::int64_t period) {
    const auto year = static_cast<int>(std::chrono::year_month_day{anchor}.year());
    const std::int64_t intervals = period * count;
    std::int64_t years = 0;
    switch (unit) {
        case calendar::interval_unit::day:
            years = intervals / 365 + 1;
            break;
        case calendar::interval_unit::week:
            years = intervals * 7 / 365 + 1;
            break;
        case calendar::interval_unit::month:
            years = intervals / 12 + 1;
            break;
        case calendar::interval_unit::year:
            years = intervals;
            break;
    }
    return year + years <= 9999;
}

// Buyer fields go into the charge request as they are: they must be text PortOne can read.
std::optional<std::string> check_buyer(const storage::subscription_record& s) {
    if (s.buyer_name)
        if (auto bad = domain::check_text("buyer_name", *s.buyer_name, 0, 100)) return bad;
    if (s.buyer_email)
        if (auto bad = domain::check_text("buyer_email", *s.buyer_email, 0, 200)) return bad;
    if (s.buyer_tel)
        if (auto bad = domain::check_text("buyer_tel", *s.buyer_tel, 0, 40)) return bad;
    return std::nullopt;
}

}  // namespace

rule_or_error billing_rule_of(const storage::subscription_record& s) {
    rule_or_error out;
    const auto unit = calendar::parse_interval_unit(s.interval_unit);
    const auto anchor = calendar::parse_local_date(s.anchor_date);
    const auto at = calendar::parse_time_of_day(s.charge_time);
    const auto* zone = calendar::find_zone(s.time_zone);
    if (!unit)
        out.error = "unknown interval_unit '" + s.interval_unit + "'";
    else if (s.interval_count < 1 || s.interval_count > 1000)
        out.error = "interval_count " + std::to_string(s.interval_count) + " is outside 1..1000";
    else if (!anchor)
        out.error = "anchor_date '" + s.anchor_date + "' is not a date";
    else if (!at)
        out.error = "charge_time '" + s.charge_time + "' is not HH:MM";
    else if (!zone)
        out.error = "unknown time_zone '" + s.time_zone + "'";
    else if (s.next_period < 0 || s.next_period > domain::max_period_index)
        out.error = "next_period " + std::to_string(s.next_period) + " is outside 0.." +
                    std::to_string(domain::max_period_index);
    else if (s.currency != "KRW")
        out.error = "currency " + s.currency + " is not supported (KRW only)";
    else if (s.amount < 1 || s.amount > domain::max_amount)
        out.error = "amount " + std::to_string(s.amount) + " is outside 1.." +
                    std::to_string(domain::max_amount);
    else if (s.max_periods && (*s.max_periods < 1 || *s.max_periods > domain::max_period_index))
        out.error = "max_periods " + std::to_string(*s.max_periods) + " is outside 1.." +
                    std::to_string(domain::max_period_index);
    else if (auto bad = domain::check_text("customer_uid", s.customer_uid, 1, 80))
        out.error = *bad;
    else if (auto bad_name = domain::check_text("order_name", s.order_name, 1, 40))
        out.error = *bad_name;
    else if (auto bad_buyer = check_buyer(s))
        out.error = *bad_buyer;
    else if (!within_calendar(*unit, s.interval_count, *anchor,
                              s.next_period + 1 - s.anchor_period))
        out.error = "period " + std::to_string(s.next_period) + " falls after the year 9999";
    else if (s.anchor_period < 0 || s.anchor_period > s.next_period)
        out.error = "anchor_period " + std::to_string(s.anchor_period) + " is outside 0.." +
                    std::to_string(s.next_period) + " (next_period)";
    else
        out.rule = calendar::billing_rule{
            *unit, static_cast<int>(s.interval_count), *anchor, *at, zone, s.anchor_period};
    return out;
}

void record_event(storage::store& store, std::int64_t now,
                  std::optional<std::int64_t> subscription_id,
                  std::optional<std::int64_t> charge_id, std::string kind,
                  std::optional<std::string> from, std::optional<std::string> to,
                  std::string detail, const std::string& actor, std::optional<std::string> data) {
    storage::event_record e;
    e.at = now;
    e.subscription_id = subscription_id;
    e.charge_id = charge_id;
    e.kind = std::move(kind);
    e.from_state = std::move(from);
    e.to_state = std::move(to);
    e.detail = std::move(detail);
    e.actor = actor;
    e.data = std::move(data);
    store.append_event(e);
}

namespace {

void change_status(storage::store& store, const storage::subscription_record& s,
                   subscription_status to, std::int64_t now, const std::string& detail,
                   const std::string& actor) {
    if (s.status == to) return;
    store.set_status(s.id, to, now);
    record_event(store, now, s.id, std::nullopt, "subscription.status",
                 std::string{domain::to_string(s.status)}, std::string{domain::to_string(to)},
                 detail, actor);
}

}  // namespace

void advance_subscription(storage::store& store, const storage::subscription_record& s,
                          std::int64_t settled_period, bool paid, std::int64_t now,
                          const std::string& actor) {
    const std::int64_t next = settled_period + 1;
    if (paid &&
        (s.status == subscription_status::trialing || s.status == subscription_status::past_due))
        change_status(store, s, subscription_status::active, now,
                      "period " + std::to_string(settled_period) + " paid", actor);
    if (s.max_periods && next >= *s.max_periods) {
        store.set_schedule(s.id, next, std::nullopt, now);
        auto current = s;
        if (paid) current.status = subscription_status::active;
        change_status(store, current, subscription_status::ended, now,
                      "all " + std::to_string(*s.max_periods) + " periods settled", actor);
        return;
    }
    const auto rule = billing_rule_of(s);
    if (!rule.rule) {
        store.set_schedule(s.id, next, std::nullopt, now);
        store.set_needs_attention(s.id, rule.error, now);
        return;
    }
    auto due = to_unix(calendar::period_start(*rule.rule, next));
    if (s.trial_end_at) due = std::max(due, *s.trial_end_at);  // nothing is charged in a trial
    store.set_schedule(s.id, next, due, now);
    record_event(
        store, now, s.id, std::nullopt, "subscription.scheduled", std::nullopt, std::nullopt,
        "period " + std::to_string(next) + " due " + calendar::format_utc(from_unix(due)), actor);
}

// Runs one subscription's scheduling work inside a savepoint. A row the engine cannot use —
// refused by billing_rule_of, or by the schema when its charge is written (a value written by
// hand with the checks bypassed) — is flagged needs_attention with the reason and skipped; it
// never fails the pass, and every other subscription is charged. `work` and this return false
// when even the flag could not be written (the caller then steps past the row for this pass).
bool engine::impl::isolated(const storage::subscription_record& s,
                            const std::function<bool()>& work) {
    std::optional<std::string> refused;
    bool flagged_or_done = true;
    {
        storage::savepoint row(store.db());
        try {
            flagged_or_done = work();
            row.release();
        } catch (const storage::constraint_error& e) {
            refused = e.what();
        }
    }  // not released: everything the row wrote is undone
    if (!refused) return flagged_or_done;
    return flag(s, "the database refused this row: " + *refused);
}

bool engine::impl::flag(const storage::subscription_record& s, const std::string& reason) {
    try {
        storage::savepoint row(store.db());
        store.flag_subscription(s.id, reason, now());
        subscription_event(s.id, "subscription.invalid", std::nullopt, std::nullopt, reason);
        row.release();
    } catch (const storage::constraint_error&) {
        decision d{s.id, 0, "", "needs_attention", reason + " (could not be flagged)"};
        if (sink) sink(d);
        return false;
    }
    decision d{s.id, 0, "", "needs_attention", reason};
    if (sink) sink(d);
    return true;
}

void engine::impl::schedule_new_subscriptions() {
    std::int64_t after = 0;
    for (;;) {
        auto tx = store.begin();  // read inside: see operators' latest changes
        auto rows = store.unscheduled_subscriptions(after, config.batch_size);
        if (rows.empty()) return;
        for (const auto& s : rows) {
            after = s.id;  // a row that cannot even be flagged is passed over
            isolated(s, [&] { return schedule_one(s); });
        }
        tx.commit();
    }
}

bool engine::impl::schedule_one(storage::subscription_record s) {
    const auto t = now();
    const auto rule = billing_rule_of(s);
    if (!rule.rule) {
        return flag(s, rule.error);
    }
    // The period's charge was closed (canceled, skipped, paid) while the subscription was not
    // billable, and it was made billable again by hand: go on from the next period instead of
    // leaving it unscheduled for ever.
    // A period that waited for an earlier one to settle (or a row from before charges were
    // created as they were sent) also arrives here once that charge is paid.
    if (const auto existing = store.find_charge_by_period(s.id, s.next_period)) {
        const auto closed = s.next_period;
        s.next_period = std::min(closed + 1, domain::max_period_index);
        if (existing->state != domain::charge_state::paid)
            subscription_event(s.id, "subscription.rescheduled", std::nullopt, std::nullopt,
                               "period " + std::to_string(closed) + " is already " +
                                   std::string{domain::to_string(existing->state)} +
                                   "; scheduling from period " + std::to_string(s.next_period));
    }
    if (s.max_periods && s.next_period >= *s.max_periods) {
        store.set_schedule(s.id, s.next_period, std::nullopt, t);
        set_subscription_status(s, subscription_status::ended, "no periods left");
        return true;
    }
    // No event: the row's next_period and next_due_at say it.
    store.set_schedule(s.id, s.next_period, due_at(s, *rule.rule, s.next_period), t);
    ++summary.scheduled;
    return true;
}

bool engine::impl::materialise_one(const storage::subscription_record& s, gate_state& g,
                                   std::optional<job>& sent, bool& held) {
    const auto t = now();
    const auto rule = billing_rule_of(s);
    if (!rule.rule) {
        return flag(s, rule.error);
    }
    if (s.previous_charge && !domain::is_final(*s.previous_charge)) {
        // Due while the previous period is still open (in dunning, in doubt, parked): it
        // waits, unscheduled, until that charge settles; settling it reschedules this one.
        store.set_schedule(s.id, s.next_period, std::nullopt, t);
        return true;
    }
    const std::int64_t base = s.next_period;
    if (s.max_periods && base >= *s.max_periods) {
        // max_periods was lowered (by hand) below the next period: nothing is left.
        store.set_schedule(s.id, s.next_period, std::nullopt, t);
        set_subscription_status(s, subscription_status::ended, "no periods left");
        return true;
    }
    if (base > domain::max_period_index)
        return flag(s, "period " + std::to_string(base) +
                           " is beyond the last period billingd "
                           "counts to");
    if (s.trial_end_at && *s.trial_end_at > t) {
        // trial_end_at moved later by hand after scheduling: no charge before it.
        store.set_schedule(s.id, s.next_period, *s.trial_end_at, t);
        return true;
    }
    if (s.cancel_at_period_end) {
        store.set_schedule(s.id, s.next_period, std::nullopt, t);
        set_subscription_status(s, subscription_status::canceled, "canceled at period end");
        ++summary.canceled;
        return true;
    }
    std::int64_t last_due = calendar::last_period_started_by(*rule.rule, from_unix(t));
    if (s.max_periods) last_due = std::min(last_due, *s.max_periods - 1);
    if (last_due < base) {
        // next_due_at was ahead of the calendar (edited by hand): put it back. If the calendar
        // says it is not due yet, that time is in the future.
        const auto due = to_unix(calendar::period_start(*rule.rule, base));
        if (due <= t)
            return flag(s, "cannot place period " + std::to_string(base) + " on the calendar");
        store.set_schedule(s.id, s.next_period, due, t);
        return true;
    }
    const std::int64_t keep = std::max(1, config.max_catch_up_periods);
    const std::int64_t first_charged =
        std::min(std::max(base, last_due - keep + 1), domain::max_period_index);
    if (first_charged >= domain::max_period_index)
        return flag(s, "period " + std::to_string(first_charged) +
                           " is the last period billingd counts to");
    // The price schedule (schema/0007) is read only when an entry is due by this period.
    std::int64_t amount = s.amount;
    std::string order_name = s.order_name;
    bool price_entry_due = false;
    if (s.price_change_period && *s.price_change_period <= first_charged)
        if (const auto entry = changes.price_at(s.id, first_charged); entry) {
            price_entry_due = true;
            amount = entry->amount;
            order_name = entry->order_name;
        }
    if (config.require_consent || s.consent_period) {
        const bool trial_conversion = s.status == subscription_status::trialing;
        if (held_for_consent(s, first_charged, trial_conversion, amount, order_name)) return true;
    }
    const auto uid = domain::make_merchant_uid(install_id, s.uid_key, first_charged);
    if (!uid) {
        return flag(s, "cannot build a merchant_uid from uid_key '" + s.uid_key + "'");
    }
    storage::charge_record c;
    c.subscription_id = s.id;
    c.period_index = first_charged;
    c.period_start = to_unix(calendar::period_start(*rule.rule, first_charged));
    c.merchant_uid = *uid;
    c.customer_uid = s.customer_uid;
    c.amount = amount;
    c.currency = s.currency;
    c.order_name = order_name;
    c.created_at = t;
    c.updated_at = t;
    c.state = domain::charge_state::scheduled;
    // Decided as the row it would be, for the subscription as it would be.
    auto moved_on = s;
    moved_on.next_period = first_charged + 1;
    const auto a = decide_due(c, &moved_on, t, g, policy);
    switch (a.kind) {
        case action_kind::send:
        case action_kind::park:
            break;
        case action_kind::hold:
            if (a.at > t) {  // quiet hours: due again when they end
                store.set_schedule(s.id, s.next_period, a.at, t);
                return true;
            }
            // Behind a gate that holds every new charge (halt, breaker, caps): stays due.
            held = true;
            summary.work_left = true;
            if (!a.guardrail.empty()) guardrail_event(a.guardrail, a.reason);
            return true;
        case action_kind::cancel:
        case action_kind::look_up:
        case action_kind::none:
            return flag(s,
                        "cannot start period " + std::to_string(first_charged) + ": " + a.reason);
    }
    if (a.kind == action_kind::park) {
        c.state = domain::charge_state::parked;
        c.park_reason = a.reason;
    } else {
        // Written ahead as it is sent: the row is born `sending`, in this group commit.
        c.state = domain::charge_state::sending;
        c.attempt_count = 1;
    }
    std::optional<std::int64_t> next_due;
    if (!s.max_periods || first_charged + 1 < *s.max_periods)
        next_due = due_at(s, *rule.rule, first_charged + 1);
    const auto id = store.insert_charge(c);
    if (!id) {
        // The period has a row already (written by hand): that row is the period's charge and
        // is decided as such; the subscription moves on past it.
        store.set_schedule(s.id, first_charged + 1, next_due, t);
        return true;
    }
    c.id = *id;
    if (price_entry_due) {
        // The schedule's entry becomes the subscription's price with the period that uses it.
        if (amount != s.amount || order_name != s.order_name) {
            changes.set_price(s.id, amount, order_name, t);
            domain::json_object data;
            data.add("period_index", first_charged)
                .add("amount_before", s.amount)
                .add("amount", amount)
                .add("order_name", order_name)
                .add("currency", s.currency);
            record_event(store, t, s.id, c.id, "subscription.price_changed",
                         std::to_string(s.amount), std::to_string(amount),
                         "from period " + std::to_string(first_charged) + ": " +
                             std::to_string(s.amount) + " -> " + std::to_string(amount) + " KRW",
                         "billingd", data.str());
        }
        changes.mark_prices_applied(s.id, first_charged, t);
        changes.set_price_change_period(s.id, changes.next_price_period(s.id, first_charged), t);
    }
    if (first_charged > base) {
        // Missed periods beyond the catch-up policy: one event for the whole range (a typo in
        // an anchor must not write a row per missed day).
        const std::string detail =
            "missed " +
            (first_charged - 1 == base
                 ? "period " + std::to_string(base)
                 : "periods " + std::to_string(base) + ".." + std::to_string(first_charged - 1)) +
            " beyond max_catch_up_periods=" + std::to_string(keep) + "; not charged";
        subscription_event(s.id, "charge.skipped", std::nullopt, "skipped", detail);
        summary.skipped += static_cast<int>(std::min<std::int64_t>(
            first_charged - base, std::numeric_limits<int>::max() - summary.skipped));
        decision d{s.id, 0, "", "skipped", detail};
        if (sink) sink(d);
    }
    std::optional<job> j;
    if (a.kind == action_kind::park) {
        ++summary.parked;
        record_event(store, t, c.subscription_id, c.id, "charge.parked", std::nullopt, "parked",
                     a.reason, "billingd", charge_data(c).add("reason", a.reason).str());
        decide(c, "parked", a.reason);
    } else {
        j = charge_job(c, s, a.probe,
                       to_unix(calendar::period_start(*rule.rule, first_charged + 1)));
    }
    // One write moves the schedule on: the next period and when it is due (none after the
    // last). The paid answer does not touch the subscription again.
    store.set_schedule(s.id, first_charged + 1, next_due, t);
    ++summary.materialised;
    sent = std::move(j);
    return true;
}

bool engine::impl::held_for_consent(const storage::subscription_record& s, std::int64_t period,
                                    bool trial_conversion, std::int64_t& amount,
                                    std::string& order_name) {
    const auto t = now();
    const bool rise = amount > s.amount;
    const bool needed =
        config.require_consent && (rise || trial_conversion) && !changes.has_consent(s.id, period);
    if (!needed) {
        // Consent given (or no longer required): a hold left on the row is lifted.
        if (s.consent_period) changes.set_consent_hold(s.id, std::nullopt, std::nullopt, t);
        return false;
    }
    const auto timeout = config.consent_timeout.count();
    const std::string why = rise ? "price_rise" : "trial_conversion";
    if (s.consent_period != period || !s.consent_since) {
        changes.set_consent_hold(s.id, period, t, t);
        store.set_schedule(s.id, s.next_period, t + timeout, t);
        domain::json_object data;
        data.add("period_index", period)
            .add("reason", why)
            .add("amount_before", s.amount)
            .add("amount", amount)
            .add("currency", s.currency)
            .add("deadline", t + timeout)
            .add("on_timeout",
                 config.consent_timeout_charges_old_price ? "charge_old_price" : "cancel");
        record_event(store, t, s.id, std::nullopt, "subscription.consent_required", std::nullopt,
                     std::nullopt,
                     "period " + std::to_string(period) + " held for the customer's consent (" +
                         why + ": " + std::to_string(amount) + " KRW)",
                     "billingd", data.str());
        ++summary.held_for_consent;
        decision d{s.id, 0, "", "held_for_consent", why};
        if (sink) sink(d);
        return true;
    }
    const auto deadline = *s.consent_since + timeout;
    if (t < deadline) {
        store.set_schedule(s.id, s.next_period, deadline, t);
        return true;
    }
    changes.set_consent_hold(s.id, std::nullopt, std::nullopt, t);
    domain::json_object data;
    data.add("period_index", period).add("reason", why);
    if (!config.consent_timeout_charges_old_price) {
        data.add("action", "cancel");
        record_event(store, t, s.id, std::nullopt, "subscription.consent_timed_out", std::nullopt,
                     std::nullopt, "no consent for period " + std::to_string(period) + ": canceled",
                     "billingd", data.str());
        store.set_schedule(s.id, s.next_period, std::nullopt, t);
        set_subscription_status(s, subscription_status::canceled,
                                "no consent to " + why + " for period " + std::to_string(period));
        ++summary.canceled;
        return true;
    }
    // charge_old_price: the rise is dropped (its entries are marked applied without taking
    // effect) and this period is charged at the price before it.
    data.add("action", "charge_old_price").add("amount", s.amount);
    record_event(store, t, s.id, std::nullopt, "subscription.consent_timed_out", std::nullopt,
                 std::nullopt,
                 "no consent for period " + std::to_string(period) + ": charged at " +
                     std::to_string(s.amount) + " KRW",
                 "billingd", data.str());
    if (rise) {
        changes.mark_prices_applied(s.id, period, t);
        changes.set_price_change_period(s.id, changes.next_price_period(s.id, period), t);
        amount = s.amount;
        order_name = s.order_name;
    }
    // Recorded as given by the timeout, so that the next look at this period goes on.
    changes.insert_consent(s.id, period, t, "billingd (consent timeout)");
    return false;
}

std::int64_t engine::impl::due_at(const storage::subscription_record& s,
                                  const calendar::billing_rule& rule, std::int64_t period) const {
    const auto start = to_unix(calendar::period_start(rule, period));
    // No period is charged before the trial ends: one that starts during it waits for it.
    return s.trial_end_at ? std::max(start, *s.trial_end_at) : start;
}

void engine::impl::subscription_event(std::int64_t subscription_id, std::string kind,
                                      std::optional<std::string> from,
                                      std::optional<std::string> to, std::string detail) {
    record_event(store, now(), subscription_id, std::nullopt, std::move(kind), std::move(from),
                 std::move(to), std::move(detail), "billingd");
}

void engine::impl::set_subscription_status(const storage::subscription_record& s,
                                           subscription_status to, const std::string& detail) {
    change_status(store, s, to, now(), detail, "billingd");
}

}  // namespace billingd::scheduler
