// Sending events again (billingctl events redeliver): the outbox's delivery rows of an event,
// or every dead one, become pending; billingd's delivery worker sends them.
//
// Errors (operations::error): conflict "no-delivery-channel" (nothing is configured to
// deliver), not_found "event-not-found", invalid "event-not-delivered" (an internal event),
// conflict "event-not-sent-yet" (it goes out anyway).
#pragma once

#include <cstdint>

#include "operations/operation.hpp"

namespace billingd::operations {

// Returns how many deliveries became pending again.
int redeliver_event(storage::store& store, const caller& who, std::int64_t event_id);
int redeliver_dead(storage::store& store, const caller& who);

}  // namespace billingd::operations
