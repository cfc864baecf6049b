#include "operations/deliveries.hpp"

#include <fmt/format.h>

#include "outbox/outbox_store.hpp"
#include "outbox/payload.hpp"
#include "storage/store.hpp"

namespace billingd::operations {
namespace {

void require_channel(outbox::outbox_store& deliveries) {
    if (deliveries.channels().empty())
        throw error(error_kind::conflict, "no-delivery-channel",
                    "no delivery channel has been configured ([events] webhook_url or exec)");
}

}  // namespace

int redeliver_event(storage::store& store, const caller& who, std::int64_t event_id) {
    outbox::outbox_store deliveries(store.db());
    change_scope tx(store);
    require_channel(deliveries);
    const auto e = deliveries.event(event_id);
    if (!e)
        throw error(error_kind::not_found, "event-not-found",
                    fmt::format("no event with id {}", event_id));
    if (!outbox::merchant_type(*e))
        throw error(error_kind::invalid, "event-not-delivered",
                    fmt::format("event {} ({}) is internal to billingd and is not delivered",
                                event_id, e->kind));
    const int rows = deliveries.redeliver(event_id, who.now);
    if (rows == 0)
        throw error(error_kind::conflict, "event-not-sent-yet",
                    fmt::format("event {} has not been sent yet on any channel: it is "
                                "delivered anyway",
                                event_id));
    tx.commit();
    return rows;
}

int redeliver_dead(storage::store& store, const caller& who) {
    outbox::outbox_store deliveries(store.db());
    change_scope tx(store);
    require_channel(deliveries);
    const int rows = deliveries.redeliver_all_dead(who.now);
    tx.commit();
    return rows;
}

}  // namespace billingd::operations
