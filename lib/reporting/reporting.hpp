// The tables behind the operator views of the operator_views migration (README "Views"), kept by billingd:
//
// - the reporting time zone as UTC offset intervals and local days, from the OS tz database
//   (SQLite has none), so that views show the merchant's local dates whatever zone the
//   sqlite3 reader runs in;
// - the revenue roll-up: paid revenue per local day up to the start of yesterday, so that
//   revenue_per_day and revenue_per_month read a few hundred rows instead of every paid charge.
//
// Both write in their own write transaction on the caller's connection, off the charge path
// (the daemon calls them at start and after each pass). Errors: storage::error.
// Thread safety: the connection's. Time is passed in (UNIX seconds), never read here.
#pragma once

#include <cstdint>
#include <string_view>

#include "storage/sqlite.hpp"

namespace date {
class time_zone;
}

namespace billingd::reporting {

// Rewrites reporting_offsets and reporting_days for `zone` when they differ from what the
// database holds (a new zone, or a tz database update), and then clears the revenue roll-up
// (it is rebuilt by the next refresh_revenue). Returns true when it rewrote them.
bool write_reporting_zone(storage::connection& db, std::string_view zone_name,
                          const date::time_zone* zone, std::int64_t now);

// Rolls paid revenue up to the local midnight that starts yesterday (relative to `now`);
// the two newest roll-up days are recomputed each time it advances, so a charge committed
// just after midnight with a paid_at just before it is still counted. Returns the number of
// days recomputed (0 when already up to date; cheap then: two indexed reads).
int refresh_revenue(storage::connection& db, std::int64_t now);

}  // namespace billingd::reporting
