#include "scheduler/decide.hpp"

#include <algorithm>

#include "domain/states.hpp"
#include "gateway/wire.hpp"

namespace billingd::scheduler {

using domain::charge_state;

std::string_view to_string(action_kind k) {
    switch (k) {
        case action_kind::send:
            return "send";
        case action_kind::look_up:
            return "look_up";
        case action_kind::cancel:
            return "cancel";
        case action_kind::park:
            return "park";
        case action_kind::hold:
            return "hold";
        case action_kind::none:
            return "none";
    }
    return "none";
}

std::string_view to_string(lookup_kind k) {
    switch (k) {
        case lookup_kind::paid:
            return "paid";
        case lookup_kind::declined:
            return "declined";
        case lookup_kind::resend:
            return "resend";
        case lookup_kind::refused:
            return "refused";
        case lookup_kind::cancel:
            return "cancel";
        case lookup_kind::park:
            return "park";
        case lookup_kind::unknown:
            return "unknown";
        case lookup_kind::halt:
            return "halt";
    }
    return "unknown";
}

bool in_doubt(const storage::charge_record& c) {
    return domain::is_in_doubt(c.state) ||
           (c.state == charge_state::retry_wait && c.unknown_since.has_value());
}

bool expects_period(const storage::subscription_record& s, std::int64_t period_index) {
    // next_period moves on when a period's charge is created: the period the subscription
    // waits on is the one before it.
    return domain::is_billable(s.status) && s.next_period == period_index + 1;
}

std::optional<std::string> paid_mismatch(const storage::charge_record& c,
                                         const gateway::payment& p) {
    // The one paid check (wire::paid_anomaly), for the request this charge row sends.
    gateway::charge_request asked;
    asked.merchant_uid = c.merchant_uid;
    asked.customer_uid = c.customer_uid;
    asked.amount = c.amount;
    asked.currency = c.currency;
    return gateway::wire::paid_anomaly(asked, p);
}

namespace {

action make(action_kind kind, std::string reason, std::int64_t at = 0,
            probe_kind probe = probe_kind::none) {
    action a;
    a.kind = kind;
    a.reason = std::move(reason);
    a.at = at;
    a.probe = probe;
    return a;
}

action count_limit(std::string name, std::string reason) {
    auto a = make(action_kind::hold, std::move(reason));
    a.guardrail = std::move(name);
    return a;
}

}  // namespace

action decide_due(const storage::charge_record& c, const storage::subscription_record* s,
                  std::int64_t now, const gate_state& g, const decision_policy& p) {
    if (g.stopping) return make(action_kind::hold, "stopping");
    if (domain::is_final(c.state)) return make(action_kind::none, "final");
    if (c.state == charge_state::parked) return make(action_kind::none, "parked");

    // A halt (configuration error) closes the way to PortOne until its probe time; then
    // exactly one request goes as the probe: any request when the credentials were refused,
    // a charge when only charging was (lookups go on meanwhile).
    const bool halt_closed = g.halted && (g.probe_in_flight || now < g.halt_probe_at);
    const bool lookups_closed = halt_closed && g.halt_blocks_lookups;
    const auto lookup_probe =
        g.halted && g.halt_blocks_lookups && !halt_closed ? probe_kind::halt : probe_kind::none;

    if (in_doubt(c)) {
        if (lookups_closed) return make(action_kind::hold, "charging halted");
        return make(action_kind::look_up, "money may have moved: look up before any resend", 0,
                    lookup_probe);
    }
    if (c.state != charge_state::scheduled && c.state != charge_state::retry_wait &&
        c.state != charge_state::declined)
        return make(action_kind::none, "not sendable");

    // Still billable and still this period, read in the transaction that would write ahead:
    // a pause, cancel or resume committed a moment ago wins over the queue.
    std::string moved;
    if (!s)
        moved = "subscription is gone";
    else if (!domain::is_billable(s->status))
        moved = "subscription is " + std::string{domain::to_string(s->status)};
    else if (s->next_period != c.period_index + 1)
        moved = "subscription has moved on (next period " + std::to_string(s->next_period) + ")";
    if (!moved.empty()) {
        // Never sent: nothing can be at PortOne. Sent before (declined, refused): look it up
        // so a payment that did go through is recorded, and cancel only on "no record".
        if (c.attempt_count == 0) return make(action_kind::cancel, moved);
        if (lookups_closed) return make(action_kind::hold, "charging halted");
        return make(action_kind::look_up, moved + ": look up, then cancel", 0, lookup_probe);
    }
    if (s->cancel_at_period_end && c.attempt_count == 0) {
        // Canceled at the end of the previous period while this one waited (quiet hours, a
        // trial, a gate): it is not charged, and the subscription ends now.
        auto a = make(action_kind::cancel, "subscription canceled at period end");
        a.end_subscription = true;
        return a;
    }
    if (s->trial_end_at && *s->trial_end_at > now)
        return make(action_kind::hold, "in trial until the trial ends", *s->trial_end_at);
    if (c.currency != "KRW")
        return make(action_kind::park,
                    "currency " + c.currency + " is not supported (amounts are sent as KRW)");
    if (p.max_amount_per_charge > 0 && c.amount > p.max_amount_per_charge)
        return make(action_kind::park, "guardrail: amount " + std::to_string(c.amount) +
                                           " exceeds max_amount_per_charge " +
                                           std::to_string(p.max_amount_per_charge));
    if (c.attempt_count >= p.max_attempts_per_charge)
        return make(action_kind::park, "sent " + std::to_string(c.attempt_count) +
                                           " times without settling (max_attempts_per_charge)");

    if (halt_closed) return make(action_kind::hold, "charging halted");
    auto probe = g.halted ? probe_kind::halt : probe_kind::none;
    if (probe == probe_kind::none && g.breaker_open) {
        if (g.probe_in_flight || now < g.breaker_probe_at)
            return make(action_kind::hold, "circuit breaker open");
        probe = probe_kind::breaker;
    }
    if (p.max_charges_per_pass > 0 && g.charges_this_pass >= p.max_charges_per_pass)
        return count_limit("max_charges_per_pass",
                           std::to_string(p.max_charges_per_pass) +
                               " charges sent in this pass; the rest wait for the next");
    if (p.max_charges_per_hour > 0 && g.charges_last_hour >= p.max_charges_per_hour)
        return count_limit("max_charges_per_hour",
                           std::to_string(p.max_charges_per_hour) +
                               " charges sent in the last hour; the rest wait");
    if (g.quiet_until && *g.quiet_until > now)
        return make(action_kind::hold, "quiet hours", *g.quiet_until);
    return make(action_kind::send, "attempt " + std::to_string(c.attempt_count + 1), 0, probe);
}

lookup_decision decide_after_lookup(const storage::charge_record& c,
                                    const storage::subscription_record* s,
                                    const gateway::lookup_result& l, std::int64_t now,
                                    std::optional<std::int64_t> last_sent_at,
                                    const decision_policy& p, double unit_random) {
    lookup_decision d;
    const auto count = [&](std::string_view status) {
        return std::count_if(l.payments.begin(), l.payments.end(),
                             [&](const gateway::payment& x) { return x.status == status; });
    };
    switch (l.verdict) {
        case gateway::outcome::config_error:
            d.kind = lookup_kind::halt;
            d.reason = "lookup not authorised: " + l.journal.message;
            return d;
        case gateway::outcome::paid: {
            const auto paid_records = count("paid");
            if (paid_records > 1) {
                d.kind = lookup_kind::park;
                d.reason = "ANOMALY: PortOne reports " + std::to_string(paid_records) +
                           " paid payments for merchant_uid " + c.merchant_uid;
                return d;
            }
            if (!l.settled) {
                d.kind = lookup_kind::unknown;
                d.reason = "lookup said paid without a payment";
                return d;
            }
            if (auto m = paid_mismatch(c, *l.settled)) {
                d.kind = lookup_kind::park;
                d.reason = "ANOMALY: paid payment differs from the request: " + *m +
                           " (imp_uid=" + l.settled->imp_uid + ")";
                return d;
            }
            d.kind = lookup_kind::paid;
            d.payment = l.settled;
            return d;
        }
        case gateway::outcome::declined:
        case gateway::outcome::not_found:
            break;
        default:
            d.kind = lookup_kind::unknown;
            d.reason = l.journal.message.empty() ? "still in doubt" : l.journal.message;
            return d;
    }

    for (const auto& x : l.payments) {
        if (x.status != "cancelled") continue;
        // Paid and then cancelled at PortOne (a refund): PortOne refuses the merchant_uid from
        // now on, and whether to charge again is a business decision.
        d.kind = lookup_kind::park;
        d.reason = "PortOne reports this period's payment cancelled (imp_uid=" + x.imp_uid +
                   "); decide whether to charge again";
        return d;
    }
    // A failed record is one decline. More of them than this charge has counted: the latest
    // attempt was declined.
    if (count("failed") > c.decline_count) {
        d.kind = lookup_kind::declined;
        d.payment = l.settled;
        d.reason = l.settled && !l.settled->fail_reason.empty() ? l.settled->fail_reason
                                                                : "declined (found by lookup)";
        return d;
    }

    // No new record at PortOne.
    if (c.last_refusal) {
        // PortOne answered the latest request and said no; the PG leg of a "communication
        // failure" may still run, so the retry never comes before the trust floor either.
        const auto refusals = c.refusal_count + 1;
        if (refusals >= p.max_refusals) {
            d.kind = lookup_kind::park;
            d.reason = "PortOne refused the charge " + std::to_string(refusals) +
                       " times: " + *c.last_refusal;
            return d;
        }
        const auto shift = std::min<std::int64_t>(refusals - 1, 20);
        const auto full = std::min(p.refusal_max_delay, p.refusal_base_delay << shift);
        // Half fixed, half jitter: never a burst, never immediately.
        const auto delay =
            full / 2 + static_cast<std::int64_t>(unit_random * static_cast<double>(full / 2));
        d.kind = lookup_kind::refused;
        d.at = now + std::max<std::int64_t>(1, delay);
        if (last_sent_at) d.at = std::max(d.at, *last_sent_at + p.in_progress_floor);
        d.reason = "PortOne refused the charge (" + *c.last_refusal + "); refusal " +
                   std::to_string(refusals) + " of " + std::to_string(p.max_refusals);
        return d;
    }
    if (last_sent_at && now < *last_sent_at + p.in_progress_floor) {
        // The request may still be at PortOne or the PG (a disconnect does not cancel it): a
        // resend now could be a second concurrent request for this merchant_uid.
        d.kind = lookup_kind::unknown;
        d.at = *last_sent_at + p.in_progress_floor;
        d.reason = "no record yet; the request sent at " + std::to_string(*last_sent_at) +
                   " may still be in progress";
        return d;
    }
    if (!s || !expects_period(*s, c.period_index)) {
        d.kind = lookup_kind::cancel;
        d.reason = !s ? "no payment at PortOne and the subscription is gone"
                      : "no payment at PortOne and the subscription no longer expects period " +
                            std::to_string(c.period_index);
        return d;
    }
    d.kind = lookup_kind::resend;
    d.reason = l.verdict == gateway::outcome::not_found
                   ? "no payment at PortOne"
                   : "no record of the latest attempt at PortOne";
    return d;
}

}  // namespace billingd::scheduler
