// An operator's decisions about a parked charge (billingctl charge retry|resolve), and what a
// look-up at PortOne means for them.
//
// Each change runs in one change_scope (operation.hpp) that re-reads the charge, checks the
// transition with domain::charge_transition_allowed, and writes the charge, its events and
// (resolve) the subscription's next period via scheduler::advance_subscription.
// Operations do not talk to PortOne: billingctl asks (findAll), records the exchange with
// record_lookup, and hands the answer to paid_at_portone before resolving.
//
// Errors (operations::error): not_found "charge-not-found"; conflict "charge-not-retryable",
// "charge-not-resolvable", "charge-changed" (it moved while the caller was checking),
// "charge-not-paid-at-portone", "charge-differs-at-portone"; invalid text (input.hpp);
// unavailable "portone-unavailable" (no clear answer).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "domain/states.hpp"
#include "gateway/types.hpp"
#include "operations/input.hpp"
#include "operations/operation.hpp"
#include "storage/records.hpp"

namespace billingd::operations {

inline constexpr std::size_t max_resolution_text = 200;  // imp_uid, reason

// After a decision: the charge as it is now and notes (the subscription's next period).
struct charge_change {
    storage::charge_record charge;
    std::vector<std::string> notes;
};

// A parked charge of a billable subscription becomes retry_wait, due now, with its refusal
// count reset: billingd sends it again under the same merchant_uid.
charge_change retry(storage::store& store, const caller& who, std::int64_t charge_id);

// How an operator settles a charge by hand.
struct resolution {
    bool paid = false;                    // true: paid with imp_uid; false: given up for `reason`
    std::string imp_uid;                  // paid: 1..200, no white space at the ends
    std::string reason;                   // given up: 1..200
    bool checked = false;                 // paid: confirmed at PortOne (paid_at_portone) before
    std::optional<std::int64_t> paid_at;  // PortOne's, when checked
};

// Checks the resolution's text (imp_uid or reason) before anything is read.
void check_resolution(const resolution& r, naming names);

// Throws conflict "charge-not-resolvable" unless `c` may be resolved as `r` says: paid from
// parked or unknown, given up from parked only.
void check_resolvable(const storage::charge_record& c, const resolution& r);

// Paid: the charge becomes paid with the imp_uid (from unknown through parked); given up: it
// becomes canceled and the period is settled as not paid. Either way the subscription moves
// on unless it already did or is over. `expected`: the state the caller saw while it checked
// at PortOne; a charge that moved since is refused ("charge-changed").
charge_change resolve(storage::store& store, const caller& who, std::int64_t charge_id,
                      const resolution& r, std::optional<domain::charge_state> expected);

// Appends a look-up's request and answer to the charge's journal (its own change_scope: the
// exchange happened whatever the caller decides next).
void record_lookup(storage::store& store, const caller& who, const storage::charge_record& c,
                   const gateway::exchange& j, const std::string& note);

// What PortOne's findAll answer means for resolving `c` as paid with `imp_uid`: PortOne's
// paid_at (or nullopt: it gave none), or a refusal. The caller handles a config_error answer
// (credentials) before.
std::optional<std::int64_t> paid_at_portone(const storage::charge_record& c,
                                            const gateway::lookup_result& r,
                                            const std::string& imp_uid);

}  // namespace billingd::operations
