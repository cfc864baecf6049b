#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

#include "storage/sqlite.hpp"

namespace billingd::test {

// A scratch database migrated to the current schema.
struct temp_db {
    std::filesystem::path dir;
    std::filesystem::path path;
    temp_db() {
        char pattern[] = "/tmp/billingd-metrics-XXXXXX";
        dir = mkdtemp(pattern);
        path = dir / "billing.db";
    }
    ~temp_db() { std::filesystem::remove_all(dir); }
    storage::open_options options() const {
        storage::open_options o;
        o.path = path.string();
        return o;
    }
};

// One subscription row (id `id`) for charges to refer to.
inline void add_subscription(storage::connection& db, int id, const std::string& status = "active",
                             const std::string& unit = "month", int amount = 9900,
                             std::int64_t created_at = 1'790'000'000) {
    db.exec(
        "INSERT INTO subscriptions (id, customer_uid, amount, order_name, interval_unit, "
        "anchor_date, status, created_at, updated_at) VALUES (" +
        std::to_string(id) + ", 'cust_" + std::to_string(id) + "', " + std::to_string(amount) +
        ", 'Plan', '" + unit + "', '2026-01-01', '" + status + "', " + std::to_string(created_at) +
        ", " + std::to_string(created_at) + ")");
}

inline void add_charge(storage::connection& db, int id, int subscription_id, int period,
                       const std::string& state, int amount, const std::string& extra_columns = "",
                       const std::string& extra_values = "") {
    db.exec(
        "INSERT INTO charges (id, subscription_id, period_index, period_start, merchant_uid, "
        "customer_uid, amount, currency, order_name, state, created_at, updated_at" +
        extra_columns + ") VALUES (" + std::to_string(id) + ", " + std::to_string(subscription_id) +
        ", " + std::to_string(period) + ", 0, 'm-" + std::to_string(id) + "', 'c', " +
        std::to_string(amount) + ", 'KRW', 'Plan', '" + state + "', 100, 100" + extra_values + ")");
}

}  // namespace billingd::test
