// Shared fixtures for the outbox tests: a temporary database and event rows.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

#include "storage/store.hpp"

namespace outbox_test {

struct temp_db {
    std::filesystem::path dir;
    std::filesystem::path path;
    temp_db() {
        char pattern[] = "/tmp/billingd-outbox-XXXXXX";
        dir = mkdtemp(pattern);
        path = dir / "billing.db";
    }
    ~temp_db() { std::filesystem::remove_all(dir); }
    billingd::storage::open_options options() const {
        billingd::storage::open_options o;
        o.path = path.string();
        return o;
    }
};

inline std::int64_t add_subscription(billingd::storage::store& store, std::string unit = "month",
                                     std::string status = "active") {
    billingd::storage::subscription_record s;
    s.customer_uid = "cust_1";
    s.amount = 9900;
    s.order_name = "Plan";
    s.interval_unit = unit;
    s.anchor_date = "2026-01-01";
    s.status = *billingd::domain::parse_subscription_status(status);
    s.created_at = 1'700'000'000;
    return store.insert_subscription(s);
}

inline std::int64_t add_event(billingd::storage::store& store, std::int64_t subscription_id,
                              std::string kind, std::string data = "{}") {
    billingd::storage::event_record e;
    e.at = 1'767'225'600;
    e.subscription_id = subscription_id;
    e.kind = std::move(kind);
    e.data = std::move(data);
    return store.append_event(e);
}

}  // namespace outbox_test
