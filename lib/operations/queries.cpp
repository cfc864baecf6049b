#include "operations/queries.hpp"

#include <fmt/format.h>

#include "domain/states.hpp"
#include "operations/operation.hpp"
#include "outbox/payload.hpp"
#include "storage/sqlite.hpp"
#include "storage/store.hpp"

namespace billingd::operations {

storage::subscription_record subscription(storage::store& store, std::int64_t id) {
    auto s = store.find_subscription(id);
    if (!s)
        throw error(error_kind::not_found, "subscription-not-found",
                    fmt::format("no subscription with id {}", id));
    return *s;
}

storage::charge_record charge(storage::store& store, std::int64_t id) {
    auto c = store.find_charge(id);
    if (!c)
        throw error(error_kind::not_found, "charge-not-found",
                    fmt::format("no charge with id {}", id));
    return *c;
}

std::vector<std::int64_t> page_of_ids(storage::connection& db, const std::string& sql,
                                      const std::function<void(storage::statement&)>& bind,
                                      int after_index, const page& p,
                                      std::optional<std::int64_t>& cut) {
    storage::statement st(db, sql);
    if (bind) bind(st);
    st.bind(after_index, p.after).bind(after_index + 1, p.limit + 1);
    std::vector<std::int64_t> ids;
    while (st.step()) ids.push_back(st.int64(0));
    if (static_cast<std::int64_t>(ids.size()) > p.limit) {
        ids.resize(static_cast<std::size_t>(p.limit));
        cut = ids.back();
    }
    return ids;
}

void check(const subscription_filter& filter, naming names) {
    if (filter.status && !domain::parse_subscription_status(*filter.status))
        refuse_field(names, "status", "invalid-status",
                     fmt::format("{} is not one of trialing, active, past_due, unpaid, paused, "
                                 "canceled, ended",
                                 shown(*filter.status)));
    if (filter.customer_uid) check_text(names, "customer_uid", *filter.customer_uid, 1, 80);
}

subscription_page list_subscriptions(storage::store& store, const subscription_filter& filter,
                                     const page& p, naming names) {
    check(filter, names);
    subscription_page out;
    // By customer: the subscriptions_by_customer index (customer_uid, then id); otherwise the
    // rows in id order.
    const auto ids = page_of_ids(
        store.db(),
        filter.customer_uid
            ? "SELECT id FROM subscriptions WHERE customer_uid = ?2 AND "
              "(?1 IS NULL OR status = ?1) AND id > ?3 ORDER BY id LIMIT ?4"
            : "SELECT id FROM subscriptions WHERE (?1 IS NULL OR status = ?1) AND ?2 IS NULL "
              "AND id > ?3 ORDER BY id LIMIT ?4",
        [&filter](storage::statement& st) {
            st.bind(1, filter.status);
            st.bind(2, filter.customer_uid);
        },
        3, p, out.next_after);
    for (auto id : ids)
        if (auto s = store.find_subscription(id)) out.rows.push_back(std::move(*s));
    return out;
}

event_page merchant_events(storage::store& store, std::int64_t subscription_id, const page& p) {
    const auto install = store.install().install_id.value_or("");
    event_page out;
    for (const auto& e : store.events_of_subscription(subscription_id)) {
        if (e.id <= p.after) continue;
        const auto type = outbox::merchant_type(e);
        if (!type) continue;
        if (static_cast<std::int64_t>(out.events.size()) == p.limit) {
            out.next_after = out.events.back()["event_id"].get<std::int64_t>();
            break;
        }
        auto envelope = nlohmann::json::parse(outbox::payload(e, *type, install));
        envelope["event_id"] = e.id;  // the row's id: the cursor of the next page
        out.events.push_back(std::move(envelope));
    }
    return out;
}

}  // namespace billingd::operations
