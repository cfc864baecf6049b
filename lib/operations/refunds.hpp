// Refunds of paid charges (billingctl charge refund, API POST /charges/{id}/refunds).
//
// request_refund only records the request, written ahead like a charge: in one transaction it
// checks that the charge is paid, that no other refund of it is open, and that the amount does
// not exceed what was paid minus what was refunded, then inserts a `requested` refund row with
// PortOne's checksum (the cancellable amount before it) and a `refund.requested` event.
// billingd sends it (POST /payments/cancel), reconciles an unknown outcome by reading the
// payment before anything is sent again, and records the result (refunds.state,
// charges.refunded_amount, a charge.refunded event). Two concurrent requests cannot both be
// recorded: the second finds the first open (and a partial UNIQUE index backs that up).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "operations/operation.hpp"
#include "storage/records.hpp"

namespace billingd::operations {

struct refund_request {
    std::optional<std::int64_t> amount;  // none: everything not yet refunded
    std::string reason;                  // 1..200 characters, sent to PortOne
};

// Throws error: not_found (charge), invalid (amount <= 0, reason), conflict (not paid, a refund
// of this charge is open, amount larger than what is left: type "refund-exceeds-paid").
storage::refund_record request_refund(storage::store& store, const caller& who,
                                      std::int64_t charge_id, const refund_request& request);

// The refunds of a charge, oldest first (billingd's and the console's).
std::vector<storage::refund_record> refunds_of_charge(storage::store& store,
                                                      std::int64_t charge_id);

}  // namespace billingd::operations
