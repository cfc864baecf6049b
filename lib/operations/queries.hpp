// Reads that billingctl and the API share: one row or a not_found error, lists cut into pages
// by id (cursor pagination: "after" is the last id of the previous page), and the merchant
// events of a subscription as the outbox delivers them.
//
// Reads take no write lock: on billingd's own connection they see its last commit, elsewhere
// a WAL snapshot per statement. Errors: operations::error not_found
// ("subscription-not-found", "charge-not-found") or invalid ("invalid-status");
// storage::error for the database.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "operations/input.hpp"
#include "storage/records.hpp"

namespace billingd::storage {
class connection;
class statement;
class store;
}  // namespace billingd::storage

namespace billingd::operations {

storage::subscription_record subscription(storage::store& store, std::int64_t id);
storage::charge_record charge(storage::store& store, std::int64_t id);

// Rows with an id larger than `after`, at most `limit`, in id order.
struct page {
    std::int64_t limit = 1000;
    std::int64_t after = 0;
};

// Ids from `sql` whose parameters ?1.. are bound by `bind`, and whose last two parameters are
// the page's after id and its limit + 1 (to tell whether more follow); `cut` is set to the
// last id returned when more follow.
std::vector<std::int64_t> page_of_ids(storage::connection& db, const std::string& sql,
                                      const std::function<void(storage::statement&)>& bind,
                                      int after_index, const page& p,
                                      std::optional<std::int64_t>& cut);

struct subscription_filter {
    std::optional<std::string> status;        // one of the subscription statuses
    std::optional<std::string> customer_uid;  // exact
};

struct subscription_page {
    std::vector<storage::subscription_record> rows;
    std::optional<std::int64_t> next_after;  // set when more rows follow
};

// Throws invalid ("invalid-status") for a status that is none of the statuses, or a
// customer_uid that could not be one.
void check(const subscription_filter& filter, naming names);

// check(filter), then the page.
subscription_page list_subscriptions(storage::store& store, const subscription_filter& filter,
                                     const page& p, naming names);

// The merchant events of a subscription (those the outbox delivers), each the envelope a
// webhook receives (outbox/payload.hpp), oldest first.
struct event_page {
    std::vector<nlohmann::json> events;
    std::optional<std::int64_t> next_after;
};
event_page merchant_events(storage::store& store, std::int64_t subscription_id, const page& p);

}  // namespace billingd::operations
