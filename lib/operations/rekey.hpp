// A card change on an open period (billingctl charge rekey): the period's charge was declined
// or parked, the customer registered a new card (a new customer_uid), and the period is
// charged again with it.
//
// The old request must be dead before a new one may go out, or the period could be paid
// twice. So the caller runs rekey_precheck (the charge is declined or parked, and every
// request it sent was answered or was written longer than the trust floor ago: none can still
// be in progress), then asks PortOne about the old merchant_uid, and only when PortOne has no
// paid record calls rekey_charge with what it read and learned. rekey_charge refuses if the
// charge changed meanwhile (billingd may have sent a dunning retry), records the old request
// in `charge_rekeys` and moves the row to a new merchant_uid (the old one + "k<n>") and the new
// customer_uid, due at once. The subscription's later periods use the new card too.
#pragma once

#include <cstdint>
#include <string>

#include "operations/operation.hpp"
#include "storage/records.hpp"

namespace billingd::operations {

// The charge as the caller read it before asking PortOne, and PortOne's answer.
struct rekey_evidence {
    storage::charge_record charge;  // from rekey_precheck
    std::string lookup;             // what PortOne said of charge.merchant_uid ("no record", ...)
};

// At most this many card changes per period: the merchant_uid suffix is one digit.
inline constexpr int max_rekeys_per_charge = 9;

// Throws error: not_found, invalid (customer_uid), conflict (state, subscription closed, a
// request that may still be in progress: type "request-may-be-in-progress", too many rekeys).
// `trust_floor` (seconds): how long a request may take before its answer is sure to have come
// (daemon::trust_floor of the configuration).
storage::charge_record rekey_precheck(storage::store& store, std::int64_t charge_id,
                                      const std::string& new_customer_uid, std::int64_t now,
                                      std::int64_t trust_floor);

// Throws error: conflict "charge-changed" when the row is not as `evidence.charge` (run again),
// and everything rekey_precheck throws. Returns the charge after the rekey.
storage::charge_record rekey_charge(storage::store& store, const caller& who,
                                    const std::string& new_customer_uid,
                                    const rekey_evidence& evidence, std::int64_t trust_floor);

}  // namespace billingd::operations
