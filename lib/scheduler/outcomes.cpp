// Applying PortOne's answers to charge rows. Runs inside the group-commit transaction, so a
// state change, its journal row and its events become durable together.
#include <algorithm>

#include "calendar/calendar.hpp"
#include "domain/text.hpp"
#include "scheduler/engine_impl.hpp"

namespace billingd::scheduler {

using domain::charge_state;
using gateway::outcome;

namespace {

std::int64_t saturating_add(std::int64_t a, std::int64_t b) {
    std::int64_t sum = 0;
    if (__builtin_add_overflow(a, b, &sum)) return b > 0 ? INT64_MAX : INT64_MIN;
    return sum;
}

storage::attempt_record answer_row(const job& j, const gateway::exchange& x, std::int64_t at) {
    storage::attempt_record a;
    a.at = at;
    a.charge_id = j.charge.id;
    a.request_id = j.request_attempt_id;
    a.kind = x.kind.empty() ? "charge" : x.kind;
    a.phase = "answer";
    a.merchant_uid = j.charge.merchant_uid;
    a.attempt_number = j.what == job::kind::charge ? j.charge.attempt_count : j.charge.lookup_count;
    a.amount = j.charge.amount;
    a.request_written = x.request_written ? 1 : 0;
    if (x.http_status != 0) a.http_status = x.http_status;
    a.portone_code = x.code;
    if (!x.message.empty()) a.message = x.message;
    a.outcome = std::string{gateway::to_string(x.result)};
    if (!x.imp_uid.empty()) a.imp_uid = x.imp_uid;
    a.latency_ms = x.latency.count();
    if (!x.raw.empty()) a.raw_answer = x.raw.substr(0, gateway::max_journaled_body);
    return a;
}

}  // namespace

void engine::impl::decide(const storage::charge_record& c, std::string what, std::string detail) {
    if (!sink) return;
    decision d{c.subscription_id, c.id, c.merchant_uid, std::move(what), std::move(detail)};
    sink(d);
}

void engine::impl::write(storage::charge_record& c) {
    if (stored.id == c.id)
        store.update_charge(stored, c);
    else
        store.update_charge(c);  // not read through `stored`: every column
    stored = c;
}

void engine::impl::transition(storage::charge_record& c, charge_state to, const std::string& detail,
                              const char* event_kind, std::optional<std::string> data) {
    const auto from = c.state;
    c.state = to;
    c.updated_at = now();
    write(c);
    if (!event_kind) return;
    record_event(store, c.updated_at, c.subscription_id, c.id, event_kind,
                 std::string{domain::to_string(from)}, std::string{domain::to_string(to)}, detail,
                 "billingd", std::move(data));
}

namespace {

// PortOne's messages pass through from the PG and have no length limit; an event's payload
// has one (4 KiB): a reason is cut at a character boundary well below it.
std::string bounded_text(const std::string& text) {
    constexpr std::size_t limit = 1000;
    if (text.size() <= limit) return text;
    return std::string(domain::cut_utf8(text, limit)) + "…";
}

}  // namespace

domain::json_object engine::impl::charge_data(const storage::charge_record& c) {
    domain::json_object data;
    data.add("merchant_uid", c.merchant_uid)
        .add("customer_uid", c.customer_uid)
        .add("amount", c.amount)
        .add("currency", c.currency)
        .add("period_index", c.period_index)
        .add("period_start", c.period_start);
    return data;
}

void engine::impl::apply(job_result& r) {
    // Re-read: the row is ours (no next_action_at while on the wire) unless an operator
    // changed it meanwhile; the job carries what the write-ahead transaction committed.
    auto c = r.done.charge;
    const auto& x = r.charge ? r.charge->journal : r.lookup->journal;
    // The row as this job's write-ahead left it, unless someone changed it since.
    const auto version = store.charge_version(c.id);
    const bool still_ours = version && version->first == c.state && version->second == c.updated_at;
    auto answer = answer_row(r.done, x, now());
    // A paid charge answer that matches the request and settles this row says nothing the
    // columns do not (imp_uid, amount, status): its raw body is not kept. Declines,
    // refusals, unknowns, anomalies, superseded rows and lookups keep theirs.
    if (still_ours && r.charge && x.result == outcome::paid && r.charge->answer &&
        !paid_mismatch(c, *r.charge->answer))
        answer.raw_answer.reset();
    store.append_attempt(answer);
    if (r.customer) {
        auto verify = r.customer->journal;
        verify.kind = "customer";
        auto row = answer_row(r.done, verify, now());
        row.request_summary = verify.request_summary;
        store.append_attempt(row);
    }
    if (still_ours) stored = c;
    if (!still_ours) {
        const auto current = store.find_charge(c.id);
        if (current) stored = *current;
        // Changed by someone else while the request was on the wire: change nothing of what
        // they decided, unless the answer says money moved — that is never only logged.
        const gateway::payment* paid = nullptr;
        if (r.charge && x.result == outcome::paid && r.charge->answer) paid = &*r.charge->answer;
        if (r.lookup && r.lookup->verdict == outcome::paid && r.lookup->settled)
            paid = &*r.lookup->settled;
        decide(c, "superseded",
               "row changed while the request was on the wire; answer journaled: " +
                   std::string{gateway::to_string(x.result)} +
                   (x.imp_uid.empty() ? "" : " imp_uid=" + x.imp_uid));
        if (!paid || !current) return;
        if (current->state == charge_state::paid && current->imp_uid == paid->imp_uid) return;
        auto row = *current;
        const std::string reason = "PortOne reports paid (imp_uid=" + paid->imp_uid +
                                   " amount=" + std::to_string(paid->amount) +
                                   ") for a charge changed while its request was on the wire "
                                   "(it was " +
                                   std::string{domain::to_string(row.state)} +
                                   "); check and resolve";
        if (row.state == charge_state::paid) {
            decide(row, "anomaly", reason);  // a paid row stays paid; a second imp_uid is loud
            return;
        }
        row.imp_uid = paid->imp_uid;
        park(row, reason);
        return;
    }
    if (r.charge)
        apply_charge_answer(c, r);
    else
        apply_lookup_answer(c, r);
}

void engine::impl::apply_charge_answer(storage::charge_record& c, const job_result& r) {
    const auto& answer = *r.charge;
    const auto& x = answer.journal;
    switch (x.result) {
        case outcome::paid:
            if (answer.answer) {
                settle_paid(c, *answer.answer, r.done.period_end);
            } else {
                mark_unknown(c, "paid without a payment object");
            }
            return;
        case outcome::declined:
            settle_declined(c, answer.answer && !answer.answer->fail_reason.empty()
                                   ? answer.answer->fail_reason
                                   : x.message);
            return;
        case outcome::transient: {
            ++summary.transient;
            ++c.transient_count;
            auto delay = domain::transient_delay(
                config.transient, static_cast<int>(c.transient_count), unit_random());
            if (!delay) {
                delay = config.transient.pass_delay;
                c.transient_count = 0;
            }
            c.next_action_at = now() + delay->count();
            transition(c, charge_state::retry_wait, "not sent: " + x.message);
            decide(c, "transient",
                   x.message + "; retry in " + std::to_string(delay->count()) + "s");
            return;
        }
        case outcome::invalid_billing_key:
            if (r.customer && r.customer->journal.result == outcome::not_found) {
                park(c,
                     "invalid billing key: PortOne does not know customer_uid " + c.customer_uid);
                if (auto s = store.find_subscription(c.subscription_id);
                    s && expects_period(*s, c.period_index) &&
                    domain::subscription_transition_allowed(s->status,
                                                            domain::subscription_status::past_due))
                    set_subscription_status(*s, domain::subscription_status::past_due,
                                            "invalid billing key");
            } else {
                // PortOne said "unregistered" but the key lookup did not confirm it: the
                // money is not known to be safe, so reconcile.
                mark_unknown(c, "unregistered customer not confirmed by customer lookup");
            }
            return;
        case outcome::refused:
            // PortOne got the request and answered without a payment. It may be "already
            // paid" under this merchant_uid: look it up now (PortOne has finished with this
            // request); no new record there makes it a counted refusal.
            ++summary.refused;
            c.last_refusal = x.message.empty() ? "refused without a message" : x.message;
            if (!c.unknown_since) c.unknown_since = now();
            c.next_action_at = now();
            transition(c, charge_state::unknown, "refused: " + *c.last_refusal);
            decide(c, "refused", *c.last_refusal + "; lookup now");
            return;
        case outcome::config_error:
            if (x.http_status == 404 || (x.http_status >= 300 && x.http_status < 400)) {
                // Something other than PortOne's charge endpoint answered: base_url is wrong.
                // Whether it forwarded the charge is not known: reconcile once the halt lifts.
                halt("charge endpoint answered " + x.message + " (check [portone] base_url)",
                     false);
                mark_unknown(c, "charge endpoint answered " + x.message, halt_probe_at);
            } else {
                // 401 after a token refresh or a refused TLS certificate (every request will
                // fail the same way), or the account's billing module (charges only): not
                // processed.
                halt("PortOne configuration error: " + x.message,
                     x.http_status == 401 || x.http_status == 0);
                c.next_action_at = halt_probe_at;
                transition(c, charge_state::retry_wait, "not processed: " + x.message);
            }
            return;
        case outcome::unknown:
        case outcome::not_found:
        case outcome::found:
            mark_unknown(c, x.message.empty() ? "no clear answer" : x.message);
            return;
    }
}

void engine::impl::apply_lookup_answer(storage::charge_record& c, const job_result& r) {
    ++summary.reconciled;
    const auto s = store.find_subscription(c.subscription_id);
    const auto d = decide_after_lookup(c, s ? &*s : nullptr, *r.lookup, now(),
                                       store.last_charge_request_at(c.id), policy, unit_random());
    switch (d.kind) {
        case lookup_kind::paid:
            settle_paid(c, *d.payment);
            return;
        case lookup_kind::declined:
            c.last_refusal.reset();
            settle_declined(c, d.reason);
            return;
        case lookup_kind::resend:
            retry_now(c, "reconciled: " + d.reason);
            return;
        case lookup_kind::refused:
            ++c.refusal_count;
            c.last_refusal.reset();
            c.unknown_since.reset();
            c.next_action_at = d.at;
            transition(c, charge_state::retry_wait, d.reason);
            decide(c, "refused", d.reason + "; retry at " + calendar::format_utc(from_unix(d.at)));
            return;
        case lookup_kind::cancel:
            c.last_refusal.reset();
            cancel(c, d.reason);
            return;
        case lookup_kind::park:
            if (c.last_refusal) ++c.refusal_count;
            c.last_refusal.reset();
            park(c, d.reason);
            return;
        case lookup_kind::unknown:
            mark_unknown(c, d.reason, d.at);
            return;
        case lookup_kind::halt:
            mark_unknown(c, d.reason);
            halt("PortOne configuration error on lookup: " + r.lookup->journal.message, true);
            return;
    }
}

void engine::impl::settle_paid(storage::charge_record& c, const gateway::payment& p,
                               std::optional<std::int64_t> period_end) {
    c.unknown_since.reset();
    c.next_action_at.reset();
    c.last_refusal.reset();
    if (auto mismatch = paid_mismatch(c, p)) {
        c.imp_uid = p.imp_uid;
        park(c, "ANOMALY: paid payment differs from the request: " + *mismatch +
                    " (imp_uid=" + p.imp_uid + ")");
        return;
    }
    c.imp_uid = p.imp_uid;
    c.paid_at = p.paid_at > 0 ? p.paid_at : now();
    c.fail_reason.reset();
    // Most answers settle a charge this engine just sent, whose period end it knows: only the
    // subscription's schedule columns are read then.
    auto s = period_end ? store.subscription_schedule(c.subscription_id)
                        : store.find_subscription(c.subscription_id);
    if (!period_end && s)
        if (auto rule = billing_rule_of(*s); rule.rule)
            period_end = to_unix(calendar::period_start(*rule.rule, c.period_index + 1));
    auto data = charge_data(c);
    data.add("period_end", period_end);
    data.add("imp_uid", bounded_text(p.imp_uid)).add("paid_at", *c.paid_at);
    transition(c, charge_state::paid, "imp_uid=" + p.imp_uid, "charge.paid", data.str());
    ++summary.paid;
    summary.paid_amount = saturating_add(summary.paid_amount, c.amount);
    decide(c, "paid", "imp_uid=" + p.imp_uid + " amount=" + std::to_string(c.amount));
    // The subscription's schedule moved on when this charge was created; only a billable
    // subscription still on this period changes (a resume may have moved it on; a canceled or
    // paused one keeps its schedule as the operator left it).
    if (!s || !expects_period(*s, c.period_index)) return;
    if (s->status == domain::subscription_status::trialing ||
        s->status == domain::subscription_status::past_due)
        set_subscription_status(*s, domain::subscription_status::active,
                                "period " + std::to_string(c.period_index) + " paid");
    const auto next = c.period_index + 1;
    if (s->max_periods && next >= *s->max_periods) {
        auto now_active = *s;
        now_active.status = domain::subscription_status::active;
        set_subscription_status(now_active, domain::subscription_status::ended,
                                "all " + std::to_string(*s->max_periods) + " periods settled");
    } else if (!s->next_due_at) {
        // The next period waited for this one: it is due now, or when it starts.
        if (const auto full = store.find_subscription(c.subscription_id))
            if (auto rule = billing_rule_of(*full); rule.rule)
                store.set_schedule(full->id, next, due_at(*full, *rule.rule, next), now());
    }
}

void engine::impl::settle_declined(storage::charge_record& c, const std::string& reason) {
    ++summary.declined;
    ++c.decline_count;
    c.unknown_since.reset();
    c.fail_reason = reason;
    if (!c.first_declined_at) c.first_declined_at = now();
    const auto offset = domain::dunning_offset(config.dunning, static_cast<int>(c.decline_count));
    auto s = store.find_subscription(c.subscription_id);
    const auto declined_data = [&] {
        return charge_data(c)
            .add("reason", bounded_text(reason))
            .add("attempt", c.attempt_count)
            .add("decline_count", c.decline_count)
            .add("next_retry_at", c.next_action_at)
            .str();
    };
    if (offset) {
        // Counted from the first decline, but never sooner than a day after this one: after
        // downtime the missed dunning days are not fired in quick succession.
        c.next_action_at = std::max(*c.first_declined_at + std::chrono::seconds{*offset}.count(),
                                    now() + std::chrono::seconds{std::chrono::days{1}}.count());
        transition(c, charge_state::declined, reason, "charge.declined", declined_data());
        decide(c, "declined",
               reason + "; dunning retry at " + calendar::format_utc(from_unix(*c.next_action_at)));
        if (s && expects_period(*s, c.period_index) &&
            domain::subscription_transition_allowed(s->status,
                                                    domain::subscription_status::past_due))
            set_subscription_status(*s, domain::subscription_status::past_due, reason);
        return;
    }
    c.next_action_at.reset();
    transition(c, charge_state::declined, reason, "charge.declined", declined_data());
    transition(c, charge_state::canceled,
               "dunning exhausted after " + std::to_string(c.decline_count) + " declines",
               "charge.dunning_exhausted",
               charge_data(c)
                   .add("reason", bounded_text(reason))
                   .add("decline_count", c.decline_count)
                   .str());
    decide(c, "dunning_exhausted", reason);
    // A late decline of a period the subscription moved past (paused and resumed meanwhile)
    // closes that charge only: it says nothing about the subscription as it is now.
    if (!s || !expects_period(*s, c.period_index)) return;
    const auto to = config.dunning.when_exhausted == domain::dunning_exhausted_action::cancel
                        ? domain::subscription_status::canceled
                        : domain::subscription_status::unpaid;
    if (domain::subscription_transition_allowed(s->status, to))
        set_subscription_status(*s, to, "dunning exhausted: " + reason);
}

void engine::impl::mark_unknown(storage::charge_record& c, const std::string& why,
                                std::int64_t not_before) {
    ++summary.unknown;
    const auto t = now();
    if (!c.unknown_since) c.unknown_since = t;
    const auto unknown_for = std::chrono::seconds{t - *c.unknown_since};
    std::optional<std::chrono::seconds> delay;
    if (config.settle_unknown_immediately && c.lookup_count == 0)
        delay = std::chrono::seconds{0};
    else
        delay =
            domain::reconcile_delay(config.unknown, static_cast<int>(c.lookup_count), unknown_for);
    if (!delay) {
        c.next_action_at.reset();
        park(c, "still in doubt after " + std::to_string(c.lookup_count) + " lookups over " +
                    std::to_string(unknown_for.count()) + "s: " + why);
        return;
    }
    c.next_action_at = not_before > 0 ? std::max(not_before, t) : t + delay->count();
    transition(c, charge_state::unknown, why);
    decide(c, "unknown", why + "; lookup at " + calendar::format_utc(from_unix(*c.next_action_at)));
}

void engine::impl::retry_now(storage::charge_record& c, const std::string& why) {
    c.unknown_since.reset();
    c.last_refusal.reset();
    c.next_action_at = now();
    transition(c, charge_state::retry_wait, why);
    decide(c, "reconciled", why + "; will resend under the same merchant_uid");
}

void engine::impl::cancel(storage::charge_record& c, const std::string& reason) {
    ++summary.canceled;
    c.next_action_at.reset();
    c.fail_reason = reason;
    transition(c, charge_state::canceled, reason, "charge.canceled",
               charge_data(c).add("reason", bounded_text(reason)).str());
    decide(c, "canceled", reason);
}

void engine::impl::park(storage::charge_record& c, const std::string& reason) {
    ++summary.parked;
    c.park_reason = reason;
    c.next_action_at.reset();
    transition(c, charge_state::parked, reason, "charge.parked",
               charge_data(c).add("reason", bounded_text(reason)).str());
    decide(c, "parked", reason);
}

}  // namespace billingd::scheduler
