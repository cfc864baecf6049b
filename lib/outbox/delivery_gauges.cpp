#include "outbox/delivery_gauges.hpp"

#include <map>
#include <string>
#include <utility>

namespace billingd::outbox {

void delivery_gauges(storage::connection& db, std::int64_t now, metrics::exposition& out) {
    struct per_channel {
        std::int64_t pending = 0;
        std::int64_t dead = 0;
        std::int64_t backlog = 0;
        std::int64_t oldest_pending = 0;
    };
    std::map<std::string, per_channel> channels;
    storage::statement cursors(
        db,
        "SELECT channel, max(0, coalesce((SELECT max(id) FROM events), 0) - cursor) "
        "FROM outbox_channels");
    while (cursors.step()) channels[cursors.text(0)].backlog = cursors.int64(1);
    storage::statement rows(db,
                            "SELECT channel, state, count(*), min(created_at) FROM "
                            "outbox_deliveries GROUP BY channel, state");
    while (rows.step()) {
        auto& c = channels[rows.text(0)];
        if (rows.text(1) == "dead") {
            c.dead = rows.int64(2);
        } else {
            c.pending = rows.int64(2);
            c.oldest_pending = std::max<std::int64_t>(0, now - rows.int64(3));
        }
    }
    out.family("billingd_event_deliveries", "gauge",
               "Events not delivered yet (pending: failing or waiting; dead: given up).");
    for (const auto& [name, c] : channels) {
        out.sample("billingd_event_deliveries", {{"channel", name}, {"status", "pending"}},
                   static_cast<double>(c.pending));
        out.sample("billingd_event_deliveries", {{"channel", name}, {"status", "dead"}},
                   static_cast<double>(c.dead));
    }
    out.family("billingd_event_delivery_backlog", "gauge",
               "Events written after the channel's cursor (not looked at yet).");
    for (const auto& [name, c] : channels)
        out.sample("billingd_event_delivery_backlog", {{"channel", name}},
                   static_cast<double>(c.backlog));
    out.family("billingd_oldest_pending_delivery_age_seconds", "gauge",
               "Age of the oldest pending delivery row (0 when none).");
    for (const auto& [name, c] : channels)
        out.sample("billingd_oldest_pending_delivery_age_seconds", {{"channel", name}},
                   static_cast<double>(c.oldest_pending));
}

}  // namespace billingd::outbox
