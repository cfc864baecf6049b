// Applying PortOne's answers to charge rows. Runs inside the group-commit transaction, so a
// state change, its journal row and its events become durable together.
#include <algorithm>

#include "scheduler/engine_impl.hpp"

namespace billingd::scheduler {

using domain::charge_state;
using gateway::outcome;

namespace {

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
    a.request_summary = x.request_summary;
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

void engine::impl::transition(storage::charge_record& c, charge_state to, const std::string& detail,
                              const std::string& event_kind) {
    const auto from = c.state;
    c.state = to;
    c.updated_at = now();
    store.update_charge(c);
    record_event(store, c.updated_at, c.subscription_id, c.id, event_kind,
                 std::string{domain::to_string(from)}, std::string{domain::to_string(to)}, detail,
                 "billingd");
}

void engine::impl::apply(job_result& r) {
    // Re-read: the row is ours (no next_action_at while on the wire), but counters written by
    // the write-ahead transaction are what the job carries.
    auto c = r.done.charge;
    const auto current = store.find_charge(c.id);
    const bool still_ours =
        current && current->state == c.state && current->updated_at == c.updated_at;
    if (!still_ours) {
        // Changed by someone else (an operator) while the request was on the wire: journal
        // the answer, change nothing, and say so loudly if it reports money.
        const auto& x = r.charge ? r.charge->journal : r.lookup->journal;
        store.append_attempt(answer_row(r.done, x, now()));
        decide(c, "superseded",
               "row changed while the request was on the wire; answer journaled only: " +
                   std::string{gateway::to_string(x.result)} +
                   (x.imp_uid.empty() ? "" : " imp_uid=" + x.imp_uid));
        return;
    }
    if (r.not_sent) {
        const auto& x = r.charge ? r.charge->journal : r.lookup->journal;
        store.append_attempt(answer_row(r.done, x, now()));
        if (r.lookup) {
            --c.lookup_count;  // it was never asked
            c.next_action_at = now();
            transition(c, charge_state::unknown, x.message);
        } else {
            c.next_action_at = halted         ? now() + config.transient.pass_delay.count()
                               : breaker_open ? std::max(now(), breaker_probe_at)
                                              : now();
            transition(c, charge_state::retry_wait, x.message);
        }
        return;
    }
    if (r.charge) {
        store.append_attempt(answer_row(r.done, r.charge->journal, now()));
        if (r.customer) {
            auto verify = r.customer->journal;
            verify.kind = "customer";
            store.append_attempt(answer_row(r.done, verify, now()));
        }
        apply_charge_answer(c, r);
    } else if (r.lookup) {
        store.append_attempt(answer_row(r.done, r.lookup->journal, now()));
        apply_lookup_answer(c, r);
    }
}

void engine::impl::apply_charge_answer(storage::charge_record& c, const job_result& r) {
    const auto& answer = *r.charge;
    const auto& x = answer.journal;
    switch (x.result) {
        case outcome::paid:
            if (answer.answer) {
                settle_paid(c, *answer.answer);
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
            const double u = std::uniform_real_distribution<double>(0.0, 1.0)(random);
            auto delay =
                domain::transient_delay(config.transient, static_cast<int>(c.transient_count), u);
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
                c.next_action_at.reset();
                c.park_reason =
                    "invalid billing key: PortOne does not know customer_uid " + c.customer_uid;
                park(c, *c.park_reason);
                if (auto s = store.find_subscription(c.subscription_id);
                    s && domain::subscription_transition_allowed(
                             s->status, domain::subscription_status::past_due))
                    set_subscription_status(*s, domain::subscription_status::past_due,
                                            "invalid billing key");
            } else {
                // PortOne said "unregistered" but the key lookup did not confirm it: the
                // money is not known to be safe, so reconcile.
                mark_unknown(c, "unregistered customer not confirmed by customer lookup");
            }
            return;
        case outcome::config_error:
            if (x.http_status == 400) {
                // PortOne refused this request's parameters: nothing was charged.
                c.next_action_at.reset();
                park(c, "PortOne rejected the request (HTTP 400): " + x.message);
            } else {
                c.next_action_at = now() + config.transient.pass_delay.count();
                transition(c, charge_state::retry_wait, "not processed: " + x.message);
                halt("PortOne configuration error: " + x.message);
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
    const auto& l = *r.lookup;
    ++summary.reconciled;
    switch (l.verdict) {
        case outcome::paid:
            if (l.settled)
                settle_paid(c, *l.settled);
            else
                mark_unknown(c, "lookup said paid without a payment");
            return;
        case outcome::declined: {
            // A failed record is one decline. If PortOne holds no more of them than this
            // charge has already counted, the latest attempt never reached it: resend.
            const auto failures =
                std::count_if(l.payments.begin(), l.payments.end(),
                              [](const gateway::payment& p) { return p.status == "failed"; });
            const bool cancelled =
                std::any_of(l.payments.begin(), l.payments.end(),
                            [](const gateway::payment& p) { return p.status == "cancelled"; });
            if (!cancelled && failures <= c.decline_count) {
                c.unknown_since.reset();
                c.next_action_at = now();
                transition(c, charge_state::retry_wait,
                           "reconciled: no record of the latest attempt at PortOne");
                decide(c, "reconciled", "latest attempt never reached PortOne; will resend");
                return;
            }
        }
            for (const auto& p : l.payments) {
                if (p.status != "cancelled") continue;
                // Paid and then cancelled at PortOne (a refund): PortOne refuses the
                // merchant_uid from now on, and whether to charge again is a business decision.
                park(c, "PortOne reports this period's payment cancelled (imp_uid=" + p.imp_uid +
                            "); decide whether to charge again");
                return;
            }
            settle_declined(c, l.settled && !l.settled->fail_reason.empty()
                                   ? l.settled->fail_reason
                                   : "declined (found by reconciliation)");
            return;
        case outcome::not_found:
            // PortOne has no record: the request never reached it. Resend (same merchant_uid).
            c.unknown_since.reset();
            c.next_action_at = now();
            transition(c, charge_state::retry_wait, "reconciled: no payment at PortOne");
            decide(c, "reconciled", "no payment at PortOne; will resend");
            return;
        case outcome::config_error:
            c.state = charge_state::reconciling;
            mark_unknown(c, "lookup not authorised: " + l.journal.message);
            halt("PortOne configuration error on lookup: " + l.journal.message);
            return;
        default:
            mark_unknown(c, l.journal.message.empty() ? "still in doubt" : l.journal.message);
            return;
    }
}

void engine::impl::settle_paid(storage::charge_record& c, const gateway::payment& p) {
    const bool amount_ok = p.amount == c.amount;
    const bool customer_ok = p.customer_uid.empty() || p.customer_uid == c.customer_uid;
    const bool merchant_ok = p.merchant_uid.empty() || p.merchant_uid == c.merchant_uid;
    const bool currency_ok = p.currency.empty() || p.currency == c.currency;
    c.imp_uid = p.imp_uid;
    c.unknown_since.reset();
    c.next_action_at.reset();
    if (!(amount_ok && customer_ok && merchant_ok && currency_ok)) {
        park(c, "ANOMALY: paid answer differs from the request: asked amount=" +
                    std::to_string(c.amount) + " " + c.currency + " customer_uid=" +
                    c.customer_uid + ", PortOne reports amount=" + std::to_string(p.amount) + " " +
                    p.currency + " customer_uid=" + p.customer_uid +
                    " merchant_uid=" + p.merchant_uid + " imp_uid=" + p.imp_uid);
        return;
    }
    c.paid_at = p.paid_at > 0 ? p.paid_at : now();
    c.fail_reason.reset();
    transition(c, charge_state::paid, "imp_uid=" + p.imp_uid);
    ++summary.paid;
    summary.paid_amount += c.amount;
    decide(c, "paid", "imp_uid=" + p.imp_uid + " amount=" + std::to_string(c.amount));
    // Advance only a billable subscription still on this period (a resume may have moved it
    // on; a canceled or paused one keeps its schedule as the operator left it).
    if (auto s = store.find_subscription(c.subscription_id);
        s && s->next_period == c.period_index && domain::is_billable(s->status))
        advance_subscription(store, *s, c.period_index, true, now(), "billingd");
}

void engine::impl::settle_declined(storage::charge_record& c, const std::string& reason) {
    ++summary.declined;
    ++c.decline_count;
    c.unknown_since.reset();
    c.fail_reason = reason;
    if (!c.first_declined_at) c.first_declined_at = now();
    const auto offset = domain::dunning_offset(config.dunning, static_cast<int>(c.decline_count));
    auto s = store.find_subscription(c.subscription_id);
    if (offset) {
        // Counted from the first decline, but never sooner than a day after this one: after
        // downtime the missed dunning days are not fired in quick succession.
        c.next_action_at = std::max(*c.first_declined_at + std::chrono::seconds{*offset}.count(),
                                    now() + std::chrono::seconds{std::chrono::days{1}}.count());
        transition(c, charge_state::declined, reason);
        decide(c, "declined",
               reason + "; dunning retry at " + calendar::format_utc(from_unix(*c.next_action_at)));
        if (s && domain::subscription_transition_allowed(s->status,
                                                         domain::subscription_status::past_due))
            set_subscription_status(*s, domain::subscription_status::past_due, reason);
        return;
    }
    c.next_action_at.reset();
    transition(c, charge_state::declined, reason);
    transition(c, charge_state::canceled,
               "dunning exhausted after " + std::to_string(c.decline_count) + " declines");
    decide(c, "dunning_exhausted", reason);
    if (!s) return;
    const auto to = config.dunning.when_exhausted == domain::dunning_exhausted_action::cancel
                        ? domain::subscription_status::canceled
                        : domain::subscription_status::unpaid;
    if (domain::subscription_transition_allowed(s->status, to))
        set_subscription_status(*s, to, "dunning exhausted: " + reason);
}

void engine::impl::mark_unknown(storage::charge_record& c, const std::string& why) {
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
        if (c.state != charge_state::unknown) transition(c, charge_state::unknown, why);
        park(c, "still in doubt after " + std::to_string(c.lookup_count) + " lookups over " +
                    std::to_string(unknown_for.count()) + "s: " + why);
        return;
    }
    c.next_action_at = t + delay->count();
    transition(c, charge_state::unknown, why);
    decide(c, "unknown", why + "; lookup at " + calendar::format_utc(from_unix(*c.next_action_at)));
}

void engine::impl::park(storage::charge_record& c, const std::string& reason) {
    ++summary.parked;
    c.park_reason = reason;
    c.next_action_at.reset();
    transition(c, charge_state::parked, reason, "charge.parked");
    decide(c, "parked", reason);
}

void engine::impl::halt(const std::string& reason) {
    if (!halted) {
        halted = true;
        halt_reason = reason;
        summary.halted = true;
        summary.halt_reason = reason;
        storage::charge_record none;
        decide(none, "halted", reason);
    }
}

}  // namespace billingd::scheduler
