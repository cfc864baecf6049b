// The engine's decisions as pure functions: what to do with a due charge, and what a lookup
// answer means for it. No I/O, no clock, no randomness: the executor (engine.cpp) gathers the
// inputs — the rows as they are inside its write transaction, the time, the journal's
// figures, the breaker and halt state — and carries the action out. Every guard is one row of
// the table in tests/scheduler/decide_tests.cpp.
//
// Money rules decided here (DESIGN.md):
//   * a charge in doubt is only ever looked up, never sent;
//   * a charge is sent only while its subscription is billable and still expects its period;
//     a period the subscription has moved past is looked up (if it was ever sent) and
//     canceled when PortOne has no record;
//   * "no record" is trusted only once the last charge request can no longer be in progress
//     (its write-ahead time + connect and charge timeouts + a margin): the trust floor;
//   * an answer PortOne refused (enveloped code != 0, HTTP 400) whose lookup shows no new
//     record is a refusal: retried a bounded number of times, then parked with its message;
//   * paid means verified: amount, currency, customer_uid and merchant_uid as sent, and one
//     paid record for the merchant_uid.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/types.hpp"
#include "storage/records.hpp"

namespace billingd::scheduler {

// The parts of engine_config the decisions read.
struct decision_policy {
    std::int64_t max_amount_per_charge = 0;  // 0: no limit
    std::int64_t max_charges_per_pass = 0;
    std::int64_t max_charges_per_hour = 0;
    std::int64_t max_attempts_per_charge = 50;
    std::int64_t max_refusals = 5;
    std::int64_t refusal_base_delay = 60;  // seconds; doubles per refusal
    std::int64_t refusal_max_delay = 3600;
    // How long a charge request may still be in progress at PortOne or the PG after it was
    // written ahead (daemon::trust_floor).
    std::int64_t in_progress_floor = 222;
};

// Whether requests may go out now, from the executor's state.
struct gate_state {
    bool stopping = false;
    // A configuration error stopped charging; one probe is allowed from halt_probe_at. Bad
    // credentials hold lookups too (halt_blocks_lookups); a charge-only error (the account's
    // billing module, a charge endpoint that answers 404) does not, and is probed by a charge.
    bool halted = false;
    bool halt_blocks_lookups = false;
    std::int64_t halt_probe_at = 0;
    // The circuit breaker holds new charges (lookups continue); one probe from probe_at.
    bool breaker_open = false;
    std::int64_t breaker_probe_at = 0;
    bool probe_in_flight = false;  // a probe of either kind is on the wire
    std::int64_t charges_this_pass = 0;
    std::int64_t charges_last_hour = 0;  // from the journal, including this pass
    // Set when `now` is inside quiet hours: the instant they end.
    std::optional<std::int64_t> quiet_until;
};

enum class action_kind {
    send,     // write ahead (`sending` + a request row) and charge
    look_up,  // write ahead (`reconciling` + a request row) and findAll
    cancel,   // final: not charged, nothing at PortOne
    park,     // an operator decides
    hold,     // not now: at `at`, or (at == 0) the row stays due behind a gate
    none,     // nothing to do: clear next_action_at
};
std::string_view to_string(action_kind k);

// Which gate a request probes: its answer decides whether that gate opens.
enum class probe_kind { none, halt, breaker };

struct action {
    action_kind kind = action_kind::none;
    std::string reason;
    std::int64_t at = 0;  // hold: when to act next; 0 keeps the row due
    probe_kind probe = probe_kind::none;
    std::string guardrail;          // hold by a count limit: its name, for the guardrail event
    bool end_subscription = false;  // cancel: the subscription was set to cancel at period end
};

// What to do with one due charge. `subscription` is the row read in the same transaction,
// nullptr when it is gone.
action decide_due(const storage::charge_record& charge,
                  const storage::subscription_record* subscription, std::int64_t now,
                  const gate_state& gates, const decision_policy& policy);

// A charge row is in doubt when money may have moved: sending, unknown, reconciling, or a
// retry an operator asked for after it had been in doubt.
bool in_doubt(const storage::charge_record& charge);

// True while the subscription is billable and its next period is this charge's.
bool expects_period(const storage::subscription_record& s, std::int64_t period_index);

// Why a payment reported paid is not the payment asked for, or nullopt when it is.
std::optional<std::string> paid_mismatch(const storage::charge_record& charge,
                                         const gateway::payment& paid);

enum class lookup_kind {
    paid,      // settle as paid with `payment`
    declined,  // a new failed record: a decline (dunning)
    resend,    // no record and nothing in progress: send again (same merchant_uid)
    refused,   // no new record after a refusal: retry at `at` (counted)
    cancel,    // no record, and the subscription no longer expects the period
    park,      // an operator decides
    unknown,   // still in doubt: look again (at `at` when set, else on the unknown schedule)
    halt,      // the lookup was not authorised: stays in doubt, charging halts
};
std::string_view to_string(lookup_kind k);

struct lookup_decision {
    lookup_kind kind = lookup_kind::unknown;
    std::string reason;
    std::int64_t at = 0;
    std::optional<gateway::payment> payment;  // paid: the record; declined: the latest failure
};

// What a findAll answer means for `charge`. `last_sent_at` is the write-ahead time of the
// latest charge request (journal); `unit_random` in [0, 1) jitters the refusal delay.
lookup_decision decide_after_lookup(const storage::charge_record& charge,
                                    const storage::subscription_record* subscription,
                                    const gateway::lookup_result& lookup, std::int64_t now,
                                    std::optional<std::int64_t> last_sent_at,
                                    const decision_policy& policy, double unit_random);

}  // namespace billingd::scheduler
