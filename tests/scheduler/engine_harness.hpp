// The engine test harness: a fresh database, the scripted gateway, a manual clock, and
// passes run to completion on a private io_context. Shared by the scheduler's test files.
#pragma once

#include <doctest/doctest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <filesystem>
#include <map>

#include "domain/merchant_uid.hpp"
#include "fake_gateway.hpp"
#include "scheduler/engine.hpp"

namespace billingd::testing {

namespace asio = boost::asio;
using domain::charge_state;
using domain::subscription_status;

inline std::chrono::sys_seconds utc(const char* text) {
    return *calendar::parse_utc(text);
}

struct harness {
    std::filesystem::path dir;
    std::unique_ptr<storage::store> store;
    fake_gateway gw;
    scheduler::manual_clock clock{utc("2024-01-01T00:00:00Z")};
    scheduler::engine_config config;
    std::unique_ptr<scheduler::engine> engine;

    harness() {
        char pattern[] = "/tmp/billingd-engine-XXXXXX";
        dir = mkdtemp(pattern);
        storage::open_options o;
        o.path = (dir / "billing.db").string();
        store = std::make_unique<storage::store>(o);
        config.max_in_flight = 4;
        config.batch_size = 8;
    }
    ~harness() {
        engine.reset();
        store.reset();
        std::filesystem::remove_all(dir);
    }
    std::string db_path() const { return (dir / "billing.db").string(); }

    // The first time the engine reaches `step`, a storage failure is thrown there.
    void fail_once_at(std::string step) {
        config.at_step = [step, armed = true](std::string_view at) mutable {
            if (armed && at == step) {
                armed = false;
                throw storage::error("disk I/O error");
            }
        };
    }

    scheduler::engine& eng() {
        if (!engine) engine = std::make_unique<scheduler::engine>(*store, gw, clock, config);
        return *engine;
    }

    std::int64_t add(const std::string& customer, const std::string& anchor,
                     std::int64_t amount = 9900, const std::string& unit = "month") {
        storage::subscription_record s;
        s.customer_uid = customer;
        s.amount = amount;
        s.order_name = "plan";
        s.interval_unit = unit;
        s.anchor_date = anchor;
        s.charge_time = "10:00";
        s.time_zone = "Asia/Seoul";
        s.created_at = clock.now().time_since_epoch().count();
        return store->insert_subscription(s);
    }

    scheduler::pass_summary run_at(const char* when) {
        clock.set(utc(when));
        asio::io_context io;
        auto f = asio::co_spawn(io, eng().run_until_idle(), asio::use_future);
        io.run();
        return f.get();
    }

    // Runs SQL through another connection, as an operator (billingctl, sqlite3) would.
    void sql(const std::string& text) const {
        sqlite3* db = nullptr;
        sqlite3_open(db_path().c_str(), &db);
        char* error = nullptr;
        const int rc = sqlite3_exec(db, text.c_str(), nullptr, nullptr, &error);
        const std::string message = error ? error : "";
        sqlite3_free(error);
        sqlite3_close(db);
        REQUIRE_MESSAGE(rc == SQLITE_OK, message);
    }

    // The merchant_uid of a period: the database's install id and the subscription's key.
    std::string uid(std::int64_t sub, std::int64_t period) {
        const auto s = store->find_subscription(sub);
        REQUIRE(s);
        return *domain::make_merchant_uid(eng().install_id(), s->uid_key, period);
    }

    charge_state state(std::int64_t sub, std::int64_t period) {
        for (const auto& c : store->charges_of_subscription(sub))
            if (c.period_index == period) return c.state;
        FAIL("no charge for period " << period);
        return charge_state::canceled;
    }
};

// Reads through a separate connection, like another process would after a crash.
inline std::int64_t count_rows(const std::string& path, const std::string& sql) {
    sqlite3* db = nullptr;
    sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr);
    std::int64_t n = -1;
    if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

}  // namespace billingd::testing
