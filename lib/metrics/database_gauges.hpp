// Gauges read from the database, the same for the daemon's /metrics and `billingctl metrics`
// (node-exporter's textfile collector): due backlog and the age of the oldest due item,
// charges in doubt and parked (count, amount, oldest), subscriptions needing attention.
//
// Every query is an index search over rows in rare states (the partial indexes of the schema),
// so a scrape costs microseconds at a million subscriptions, except the due backlog, which
// counts the due rows themselves (normally few; a backlog of a million costs ~0.1 s).
//
// Extension point: a gauge_provider adds families of its own (the event outbox's deliveries
// pending/dead are added this way by the daemon and billingctl when the outbox exists).
// Providers must read only (a read-only connection may be passed) and stay as cheap.
// Errors: storage::error from the queries (the caller answers the scrape with 500).
// Thread safety: the connection's.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "metrics/exposition.hpp"
#include "storage/sqlite.hpp"

namespace billingd::metrics {

using gauge_provider =
    std::function<void(storage::connection& db, std::int64_t now, exposition& out)>;

// The numbers behind the gauges, for tests and for billingctl's other outputs.
struct database_snapshot {
    std::int64_t due_subscriptions = 0;
    std::int64_t due_charges = 0;
    std::int64_t oldest_due_age_seconds = 0;  // 0 when nothing is due
    std::int64_t in_doubt = 0;
    std::int64_t in_doubt_amount = 0;
    std::int64_t oldest_in_doubt_age_seconds = 0;
    std::int64_t parked = 0;
    std::int64_t parked_amount = 0;
    std::int64_t needs_attention = 0;
};

database_snapshot read_database(storage::connection& db, std::int64_t now);

// Writes the database gauges as of `now` (UNIX seconds), then each provider's.
void render_database(storage::connection& db, std::int64_t now, exposition& out,
                     std::span<const gauge_provider> providers = {});

}  // namespace billingd::metrics
