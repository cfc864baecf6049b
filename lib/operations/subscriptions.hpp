// Creating a subscription and changing its status: billingctl subscription add|pause|resume|
// cancel and the API's POST /subscriptions, POST /subscriptions/{id}/pause|resume|cancel.
//
// Creating is two steps so that a bad value changes nothing, not even a database file:
// validate() checks every value against the rules and the configuration's defaults and
// limits, without a store; create() inserts the validated row, already scheduled for period 0,
// with its subscription.created event. pause/resume/cancel re-read the row in their
// transaction (operation.hpp) and write one event per change.
//
// Errors (operations::error): validate() invalid, with the field named as `names` says (see
// input.hpp); pause/resume/cancel not_found ("subscription-not-found") or conflict (a
// transition the subscription's status does not allow).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "operations/input.hpp"
#include "operations/operation.hpp"
#include "storage/records.hpp"

namespace billingd::operations {

// The ranges of the numbers a new subscription takes (billingctl reads its options with them).
inline constexpr std::int64_t max_interval_count = 1000;  // as the schema's CHECK
inline constexpr std::int64_t max_trial_days = 3660;      // ten years
// A charge's amount when [guardrails] max_amount_per_charge is not set.
inline constexpr std::int64_t default_amount_limit = 100'000'000;

// What the caller asks for. Absent optionals take the defaults below.
struct new_subscription {
    std::string customer_uid;  // PortOne's billing key name, 1..80, no white space at the ends
    std::int64_t amount = 0;   // minor units (KRW: won), 1..the amount limit
    std::string order_name;    // 1..40 characters
    std::string currency = "KRW";
    std::string interval_unit = "month";      // day | week | month | year
    std::int64_t interval_count = 1;          // 1..max_interval_count
    std::optional<std::string> anchor_date;   // YYYY-MM-DD; excludes trial_days
    std::optional<std::string> charge_time;   // HH:MM
    std::optional<std::string> time_zone;     // IANA
    std::optional<std::int64_t> trial_days;   // 1..max_trial_days: trialing, anchored then
    std::optional<std::int64_t> max_periods;  // 1..domain::max_period_index
    // An anchor more than one period before today is refused unless this is set: a typo such
    // as 0000-01-01 must not make billingd account for centuries of periods.
    bool backdate = false;
    std::optional<std::string> buyer_name;   // <= 100
    std::optional<std::string> buyer_email;  // <= 200
    std::optional<std::string> buyer_tel;    // <= 40
};

// The largest amount one charge may ask for: [guardrails] max_amount_per_charge when set (at
// most the schema's bound), else default_amount_limit. billingd parks a larger charge.
std::int64_t amount_limit(std::int64_t max_amount_per_charge);

// What the configuration decides for a new subscription.
struct subscription_defaults {
    std::string time_zone = "Asia/Seoul";
    std::string charge_time = "10:00";
    std::int64_t max_amount_per_charge = 0;  // [guardrails]; 0: default_amount_limit
};

// A row that passed validate(), scheduled for period 0 (only validate() makes one).
class validated_subscription {
  public:
    const storage::subscription_record& row() const { return row_; }

  private:
    friend validated_subscription validate(const new_subscription&, const subscription_defaults&,
                                           std::int64_t, naming);
    storage::subscription_record row_;
};

// Checks every value of `s` at `now` (UNIX s: "today" in the subscription's zone). Throws
// error(invalid) naming the field; never touches a database.
validated_subscription validate(const new_subscription& s, const subscription_defaults& defaults,
                                std::int64_t now, naming names);

// Inserts the row with its subscription.created event (change_scope); returns it as stored
// (id, uid_key).
storage::subscription_record create(storage::store& store, const caller& who,
                                    const validated_subscription& s);

// After a status change: the row as it is now and notes on its charges ("charge 7 (...) is
// unknown: billingd will still reconcile it").
struct status_change {
    storage::subscription_record subscription;
    std::vector<std::string> notes;
    std::string detail;  // what the event row says (resume: the next period and its due time)
};

// Pauses a trialing, active or past_due subscription and cancels its charges that could
// still be sent (scheduled, retry_wait, declined); charges in doubt and parked ones are left
// alone (notes say so). Conflict type "subscription-not-pausable".
status_change pause(storage::store& store, const caller& who, std::int64_t id);

// Resumes a paused or unpaid subscription on its calendar: the next period charged is the
// first starting at or after now; periods that started meanwhile are not charged. Becomes
// active (trialing while the trial runs). Conflict "subscription-not-resumable"; invalid
// "subscription-unschedulable" (a row written by hand that has no calendar).
status_change resume(storage::store& store, const caller& who, std::int64_t id);

// Cancels now (status canceled, no further period, open charges as pause does) or, with
// `at_period_end`, when the next period would start. Conflicts "subscription-already-ended"
// (canceled or ended) and "subscription-already-canceling".
status_change cancel(storage::store& store, const caller& who, std::int64_t id, bool at_period_end);

}  // namespace billingd::operations
