#include "operations/operation.hpp"

#include "storage/store.hpp"

namespace billingd::operations {

std::int64_t record_event(storage::store& store, const caller& who,
                          std::optional<std::int64_t> subscription_id,
                          std::optional<std::int64_t> charge_id, std::string kind,
                          std::optional<std::string> from, std::optional<std::string> to,
                          std::string detail, std::optional<std::string> data) {
    storage::event_record e;
    e.at = who.now;
    e.subscription_id = subscription_id;
    e.charge_id = charge_id;
    e.kind = std::move(kind);
    e.from_state = std::move(from);
    e.to_state = std::move(to);
    e.detail = std::move(detail);
    e.actor = who.actor;
    e.data = std::move(data);
    return store.append_event(e);
}

}  // namespace billingd::operations
