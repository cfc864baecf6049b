// The outbox's gauges for /metrics and `billingctl metrics` (a metrics::gauge_provider):
//   billingd_event_deliveries{channel,status="pending"|"dead"}   undelivered events with a row
//   billingd_event_delivery_backlog{channel}   events written after the channel's cursor
//   billingd_oldest_pending_delivery_age_seconds{channel}   since the oldest pending row began
// Reads only the delivery tables (rows exist only for failing, waiting or dead deliveries)
// and max(events.id): cheap at any size. Errors: storage::error.
#pragma once

#include <cstdint>

#include "metrics/exposition.hpp"
#include "storage/sqlite.hpp"

namespace billingd::outbox {

void delivery_gauges(storage::connection& db, std::int64_t now, metrics::exposition& out);

}  // namespace billingd::outbox
