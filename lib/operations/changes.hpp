// Changes to a subscription (billingctl subscription update|consent, API PATCH): the price
// schedule, the order name, the charge time, the interval and the card (customer_uid).
//
// A change takes effect at a period boundary: from the next period that has no charge yet
// (the default) or from a given later period. A charge that exists keeps its frozen request;
// nothing is prorated. Amount and name changes are entries of the price schedule, applied
// when that period's charge is created. Charge time and interval changes re-anchor the
// calendar at the start of the next period (see README "Change a price, a card, a schedule").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "operations/operation.hpp"
#include "storage/records.hpp"

namespace billingd::operations {

struct subscription_update {
    std::optional<std::int64_t> amount;          // KRW, 1..100,000,000
    std::optional<std::string> order_name;       // 1..40 characters
    std::optional<std::string> charge_time;      // "HH:MM", local
    std::optional<std::string> interval_unit;    // day | week | month | year
    std::optional<std::int64_t> interval_count;  // 1..
    std::optional<std::string> customer_uid;     // a new card for the periods to come
    // First period the change applies to; none: the next period without a charge.
    std::optional<std::int64_t> from_period;
    // The largest amount one charge may ask for: [guardrails] max_amount_per_charge when the
    // caller has the configuration (billingd would park a larger charge).
    std::int64_t amount_limit = 100'000'000;
};

struct update_result {
    storage::subscription_record subscription;  // after the change
    std::int64_t from_period = 0;               // where it takes effect
    std::vector<std::int64_t> event_ids;
};

// Throws error: not_found, invalid (bad value, nothing to change, a period that already has
// a charge), conflict (a canceled or ended subscription).
update_result update_subscription(storage::store& store, const caller& who,
                                  std::int64_t subscription_id, const subscription_update& change);

// The subscription's price schedule, oldest entry first.
std::vector<storage::price_entry> price_schedule(storage::store& store,
                                                 std::int64_t subscription_id);

// Records the customer's consent to the change taking effect at `period` (none: the period
// held for consent now, else the next scheduled rise). Throws not_found, conflict (nothing
// waits for consent).
std::int64_t record_consent(storage::store& store, const caller& who, std::int64_t subscription_id,
                            std::optional<std::int64_t> period);

}  // namespace billingd::operations
