// Subscription and charge life cycles as pure data: the legal transitions of DESIGN.md.
//
// The scheduler and billingctl consult these before every state change, and storage
// mirrors the vocabulary in CHECK constraints (schema/0001_initial.sql). No I/O here.
#pragma once

#include <optional>
#include <string_view>

namespace billingd::domain {

enum class subscription_status { trialing, active, past_due, unpaid, paused, canceled, ended };

enum class charge_state {
    scheduled,    // materialised, not sent yet
    sending,      // attempt committed; a request may be on the wire
    paid,         // final: PortOne reported the money moved
    declined,     // the card refused; waits for the next dunning day (or final)
    unknown,      // the money may have moved; waits for reconciliation
    reconciling,  // a lookup is on the wire
    retry_wait,   // provably not charged; will be sent again
    parked,       // an operator decides
    skipped,      // final: not charged by policy (catch-up, pause)
    canceled,     // final: given up (subscription canceled, dunning exhausted, operator)
};

std::string_view to_string(subscription_status s);
std::string_view to_string(charge_state s);
std::optional<subscription_status> parse_subscription_status(std::string_view text);
std::optional<charge_state> parse_charge_state(std::string_view text);

bool is_final(charge_state s);
// States in which money may have moved and nothing may be sent: reconcile first.
bool is_in_doubt(charge_state s);

bool charge_transition_allowed(charge_state from, charge_state to);
bool subscription_transition_allowed(subscription_status from, subscription_status to);

// Statuses whose subscriptions are charged when a period starts.
bool is_billable(subscription_status s);

}  // namespace billingd::domain
