#include <doctest/doctest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "storage/migrations.hpp"
#include "storage/store.hpp"

using namespace billingd;
using namespace billingd::storage;

namespace {

struct temp_db {
    std::filesystem::path dir;
    std::filesystem::path path;
    temp_db() {
        char pattern[] = "/tmp/billingd-storage-XXXXXX";
        dir = mkdtemp(pattern);
        path = dir / "billing.db";
    }
    ~temp_db() { std::filesystem::remove_all(dir); }
    open_options options() const {
        open_options o;
        o.path = path.string();
        return o;
    }
};

subscription_record sample_subscription() {
    subscription_record s;
    s.customer_uid = "cust_1";
    s.amount = 9900;
    s.order_name = "Monthly plan";
    s.interval_unit = "month";
    s.anchor_date = "2024-01-31";
    s.created_at = 1'700'000'000;
    return s;
}

charge_record sample_charge(std::int64_t subscription_id, std::int64_t period) {
    charge_record c;
    c.subscription_id = subscription_id;
    c.period_index = period;
    c.period_start = 1'700'000'000 + period;
    c.merchant_uid = "s" + std::to_string(subscription_id) + "-p" + std::to_string(period);
    c.customer_uid = "cust_1";
    c.amount = 9900;
    c.order_name = "Monthly plan";
    c.next_action_at = 1'700'000'000;
    c.created_at = 1'700'000'000;
    return c;
}

// Runs SQL through a separate raw connection, like an operator in the sqlite3 CLI.
std::string run_raw(const std::filesystem::path& path, const std::string& sql) {
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    std::string message = rc == SQLITE_OK ? "" : (err ? err : "error");
    sqlite3_free(err);
    sqlite3_close(db);
    return message;
}

std::string query_plan(store& s, const std::string& sql) {
    statement st(s.db(), "EXPLAIN QUERY PLAN " + sql);
    std::string plan;
    while (st.step()) plan += st.text(3) + "\n";
    return plan;
}

}  // namespace

TEST_CASE("opening a database applies every migration once and enables WAL") {
    temp_db t;
    {
        store s(t.options());
        CHECK(s.db().schema_version() == static_cast<int>(migrations().size()));
    }
    store again(t.options());  // reopening does not re-run migrations
    CHECK(again.db().schema_version() == static_cast<int>(migrations().size()));
    statement mode(again.db(), "PRAGMA journal_mode");
    REQUIRE(mode.step());
    CHECK(mode.text(0) == "wal");
    statement fk(again.db(), "PRAGMA foreign_keys");
    REQUIRE(fk.step());
    CHECK(fk.int64(0) == 1);
}

TEST_CASE("a database from a newer billingd is refused") {
    temp_db t;
    { store s(t.options()); }
    CHECK(run_raw(t.path, "PRAGMA user_version = 999").empty());
    CHECK_THROWS_AS(store(t.options()), error);
}

TEST_CASE("invalid subscriptions written by hand are rejected by CHECK constraints") {
    temp_db t;
    store s(t.options());
    const std::string cols =
        "INSERT INTO subscriptions (customer_uid, amount, order_name, interval_unit, "
        "anchor_date, charge_time) VALUES ";
    struct row {
        const char* what;
        std::string values;
    };
    const row bad[] = {
        {"amount 0", "('c', 0, 'plan', 'month', '2024-01-31', '10:00')"},
        {"negative amount", "('c', -5, 'plan', 'month', '2024-01-31', '10:00')"},
        {"unknown interval", "('c', 100, 'plan', 'fortnight', '2024-01-31', '10:00')"},
        {"41-char name",
         "('c', 100, '" + std::string(41, 'n') + "', 'month', '2024-01-31', '10:00')"},
        {"empty name", "('c', 100, '', 'month', '2024-01-31', '10:00')"},
        {"Feb 30 anchor", "('c', 100, 'plan', 'month', '2024-02-30', '10:00')"},
        {"not a date", "('c', 100, 'plan', 'month', 'tomorrow', '10:00')"},
        {"25:00 charge time", "('c', 100, 'plan', 'month', '2024-01-31', '25:00')"},
        {"text amount", "('c', 'lots', 'plan', 'month', '2024-01-31', '10:00')"},
        {"81-char customer",
         "('" + std::string(81, 'c') + "', 100, 'plan', 'month', '2024-01-31', '10:00')"},
    };
    for (const auto& r : bad) {
        const std::string what = r.what;
        CAPTURE(what);
        const auto err = run_raw(t.path, cols + r.values);
        CAPTURE(err);
        // STRICT typing rejects a text amount before CHECK runs; both are SQLITE_CONSTRAINT.
        CHECK((err.find("constraint failed") != std::string::npos ||
               err.find("cannot store") != std::string::npos));
    }
    CHECK(run_raw(t.path, cols + "('c', 100, 'plan', 'month', '2024-02-29', '23:59')").empty());
    CHECK(s.list_subscriptions(std::nullopt, 100).size() == 1);
}

TEST_CASE("attempts and events are append-only") {
    temp_db t;
    store s(t.options());
    const auto sub = s.insert_subscription(sample_subscription());
    attempt_record a;
    a.at = 1;
    a.kind = "charge";
    a.phase = "request";
    a.merchant_uid = "s1-p0";
    s.append_attempt(a);
    event_record e;
    e.at = 1;
    e.subscription_id = sub;
    e.kind = "subscription.created";
    s.append_event(e);

    CHECK(run_raw(t.path, "UPDATE attempts SET outcome = 'paid'").find("append-only") !=
          std::string::npos);
    CHECK(run_raw(t.path, "DELETE FROM attempts").find("append-only") != std::string::npos);
    CHECK(run_raw(t.path, "UPDATE events SET kind = 'x'").find("append-only") != std::string::npos);
    CHECK(run_raw(t.path, "DELETE FROM events").find("append-only") != std::string::npos);
}

TEST_CASE("a period has at most one charge row and a paid charge stays paid") {
    temp_db t;
    store s(t.options());
    const auto sub = s.insert_subscription(sample_subscription());
    auto [first, inserted] = s.materialise_charge(sample_charge(sub, 0));
    auto [again, inserted_again] = s.materialise_charge(sample_charge(sub, 0));
    CHECK(inserted);
    CHECK_FALSE(inserted_again);  // even within the same second: no second "created" event
    CHECK(first.id == again.id);
    CHECK(s.charges_of_subscription(sub).size() == 1);

    first.state = domain::charge_state::paid;
    s.update_charge(first);
    auto reverted = first;
    reverted.state = domain::charge_state::sending;
    CHECK_THROWS_AS(s.update_charge(reverted), error);
    CHECK(s.find_charge(first.id)->state == domain::charge_state::paid);

    // A second row for the same period cannot be forced in by hand either.
    const auto err =
        run_raw(t.path,
                "INSERT INTO charges (subscription_id, period_index, period_start, merchant_uid, "
                "customer_uid, amount, currency, order_name, state, created_at, updated_at) "
                "VALUES (" +
                    std::to_string(sub) + ", 0, 0, 'other', 'c', 1, 'KRW', 'n', 'paid', 0, 0)");
    CHECK(err.find("UNIQUE") != std::string::npos);
    CHECK(run_raw(t.path, "UPDATE charges SET amount = 1").find("fixed") != std::string::npos);
}

TEST_CASE("the due queries are index searches, not scans") {
    temp_db t;
    store s(t.options());
    const auto subs = query_plan(
        s,
        "SELECT s.id, c.state FROM subscriptions s LEFT JOIN charges c ON c.subscription_id = "
        "s.id AND c.period_index = s.next_period - 1 WHERE s.next_due_at IS NOT NULL AND "
        "s.next_due_at <= 5 AND s.needs_attention IS NULL AND (status = 'trialing' OR "
        "status = 'active' OR status = 'past_due') ORDER BY s.next_due_at LIMIT 10");
    CAPTURE(subs);
    CHECK(subs.find("USING INDEX subscriptions_due") != std::string::npos);
    CHECK(subs.find("SCAN") == std::string::npos);
    CHECK(subs.find("TEMP B-TREE") == std::string::npos);

    const auto charges = query_plan(
        s,
        "SELECT id FROM charges WHERE next_action_at IS NOT NULL AND next_action_at <= 5 "
        "ORDER BY next_action_at LIMIT 10");
    CAPTURE(charges);
    CHECK(charges.find("INDEX charges_next_action") != std::string::npos);
    CHECK(charges.find("SCAN") == std::string::npos);
    CHECK(charges.find("TEMP B-TREE") == std::string::npos);
}

TEST_CASE("due subscriptions stream in batches in due order") {
    temp_db t;
    store s(t.options());
    for (int i = 0; i < 25; ++i) {
        auto sub = sample_subscription();
        sub.next_due_at = 1000 - i;
        s.insert_subscription(sub);
    }
    auto paused = sample_subscription();
    paused.status = domain::subscription_status::paused;
    paused.next_due_at = 1;
    s.insert_subscription(paused);

    int seen = 0;
    std::int64_t last_due = 0;
    for (;;) {
        auto batch = s.due_subscriptions(1000, 10);
        if (batch.empty()) break;
        CHECK(batch.size() <= 10);
        for (auto& row : batch) {
            CHECK(*row.next_due_at >= last_due);
            last_due = *row.next_due_at;
            s.set_schedule(row.id, row.next_period + 1, std::nullopt, 0);
            ++seen;
        }
    }
    CHECK(seen == 25);
    CHECK_FALSE(s.earliest_wakeup());  // paused rows never wake the daemon
    CHECK(s.unscheduled_subscriptions(0, 100).size() == 25);
}

TEST_CASE("a new database gets a random install id; a configured prefix names it once") {
    temp_db a, b;
    std::string id_a, id_b;
    {
        store s(a.options());
        CHECK_FALSE(s.install().install_id);
        id_a = s.claim_install_id("");
        CHECK(id_a.size() == 8);
        CHECK(s.claim_install_id("") == id_a);  // stable
        CHECK_THROWS_AS(s.claim_install_id("other"), install_mismatch);
        CHECK(s.claim_install_id(id_a) == id_a);  // naming it is fine
    }
    {
        store s(b.options());
        id_b = s.claim_install_id("shop_1");
        CHECK(id_b == "shop_1");
        CHECK_THROWS_AS(s.claim_install_id("shop_2"), install_mismatch);
    }
    CHECK(id_a != id_b);
    // Nor can it be changed or removed by hand.
    CHECK(run_raw(b.path, "UPDATE install SET install_id = 'x'").find("merchant_uid") !=
          std::string::npos);
    CHECK(run_raw(b.path, "DELETE FROM install").find("merchant_uid") != std::string::npos);
}

TEST_CASE("every subscription gets a random uid_key, also when inserted by hand") {
    temp_db t;
    store s(t.options());
    const auto first = s.insert_subscription(sample_subscription());
    const auto second = s.insert_subscription(sample_subscription());
    const auto a = s.find_subscription(first)->uid_key;
    const auto b = s.find_subscription(second)->uid_key;
    CHECK(a.size() == 16);
    CHECK(a != b);
    CHECK(run_raw(t.path,
                  "INSERT INTO subscriptions (customer_uid, amount, order_name, interval_unit, "
                  "anchor_date) VALUES ('c', 1, 'n', 'month', '2024-01-01')")
              .empty());
    const auto by_hand = s.find_subscription(second + 1);
    REQUIRE(by_hand);
    CHECK(by_hand->uid_key.size() == 16);
    // The key is set once: changing it (or copying another row's) would change or share the
    // subscription's merchant_uids.
    CHECK(run_raw(t.path, "UPDATE subscriptions SET uid_key = '" + a +
                              "' WHERE id = " + std::to_string(second))
              .find("uid_key") != std::string::npos);
    CHECK(run_raw(t.path,
                  "INSERT INTO subscriptions (customer_uid, amount, order_name, "
                  "interval_unit, anchor_date, uid_key) VALUES ('c', 1, 'n', 'month', "
                  "'2024-01-01', '" +
                      a + "')")
              .find("UNIQUE") != std::string::npos);
}

TEST_CASE("subscription ids are never reused, and only KRW is accepted") {
    temp_db t;
    store s(t.options());
    const auto first = s.insert_subscription(sample_subscription());
    CHECK(run_raw(t.path, "DELETE FROM subscriptions WHERE id = " + std::to_string(first)).empty());
    const auto second = s.insert_subscription(sample_subscription());
    CHECK(second > first);
    auto dollars = sample_subscription();
    dollars.currency = "USD";
    CHECK_THROWS_AS(s.insert_subscription(dollars), constraint_error);
    CHECK(run_raw(t.path, "UPDATE subscriptions SET next_period = 100000000000000000")
              .find("CHECK") != std::string::npos);
}

TEST_CASE("a version 1 database keeps its charges' merchant_uids and its prefix") {
    temp_db t;
    {
        // Build a version 1 database by hand: the first migration only, with one charge.
        sqlite3* db = nullptr;
        sqlite3_open(t.path.c_str(), &db);
        const auto& v1 = migrations().front();
        REQUIRE(sqlite3_exec(db, std::string{v1.sql}.c_str(), nullptr, nullptr, nullptr) ==
                SQLITE_OK);
        const char* rows =
            "PRAGMA user_version = 1;"
            "INSERT INTO subscriptions (id, customer_uid, amount, currency, order_name, "
            "interval_unit, anchor_date) VALUES (7, 'c', 9900, 'KRW', 'n', 'month', "
            "'2024-01-01'), (8, 'd', 10, 'USD', 'n', 'month', '2024-01-01');"
            "INSERT INTO charges (subscription_id, period_index, period_start, merchant_uid, "
            "customer_uid, amount, currency, order_name, state, created_at, updated_at) VALUES "
            "(7, 0, 0, 'shop-s7-p0', 'c', 9900, 'KRW', 'n', 'paid', 0, 0);"
            "INSERT INTO attempts (at, charge_id, kind, phase) VALUES (1700000000, 1, 'charge', "
            "'request');";
        REQUIRE(sqlite3_exec(db, rows, nullptr, nullptr, nullptr) == SQLITE_OK);
        sqlite3_close(db);
    }
    store s(t.options());
    CHECK(s.db().schema_version() == static_cast<int>(migrations().size()));
    CHECK(s.install().install_id == std::optional<std::string>{"shop"});
    CHECK(s.install().live_since == std::optional<std::int64_t>{1700000000});
    CHECK(s.claim_install_id("shop") == "shop");
    CHECK(s.find_charge(1)->merchant_uid == "shop-s7-p0");
    CHECK(s.find_subscription(7)->uid_key.size() == 16);
    CHECK(s.find_subscription(8)->needs_attention.value_or("").find("KRW") != std::string::npos);
    CHECK(run_raw(t.path, "PRAGMA foreign_key_check").empty());
    const auto next = s.insert_subscription(sample_subscription());
    CHECK(next == 9);
}

TEST_CASE("schema 4 moves a subscription past its charged period and keeps ids and rows") {
    temp_db t;
    {
        // A version 3 database: the first three migrations, one subscription whose period 0
        // is open (next_period pointed at it then), one that was deleted.
        sqlite3* db = nullptr;
        sqlite3_open(t.path.c_str(), &db);
        for (int v = 0; v < 3; ++v)
            REQUIRE(sqlite3_exec(db, std::string{migrations()[v].sql}.c_str(), nullptr, nullptr,
                                 nullptr) == SQLITE_OK);
        const char* rows =
            "PRAGMA user_version = 3;"
            "INSERT INTO subscriptions (id, customer_uid, amount, order_name, interval_unit, "
            "anchor_date, next_period, next_due_at) VALUES (7, 'c', 9900, 'n', 'month', "
            "'2024-01-01', 0, NULL), (8, 'd', 9900, 'n', 'month', '2024-01-01', 2, 1706749200),"
            "(9, 'e', 9900, 'n', 'month', '2024-01-01', 0, NULL);"
            "DELETE FROM subscriptions WHERE id = 9;"
            "INSERT INTO charges (subscription_id, period_index, period_start, merchant_uid, "
            "customer_uid, amount, currency, order_name, state, created_at, updated_at) VALUES "
            "(7, 0, 0, 'shop-a-p0', 'c', 9900, 'KRW', 'n', 'declined', 0, 0),"
            "(8, 1, 0, 'shop-b-p1', 'd', 9900, 'KRW', 'n', 'paid', 0, 0);"
            "INSERT INTO attempts (at, charge_id, kind, phase) VALUES (1, 1, 'charge', 'request');"
            // An operator's view, and a row written with the checks bypassed.
            "CREATE VIEW my_report AS SELECT count(*) AS n FROM charges JOIN subscriptions s "
            "ON s.id = charges.subscription_id;"
            "PRAGMA ignore_check_constraints = ON;"
            "INSERT INTO subscriptions (id, customer_uid, amount, order_name, interval_unit, "
            "anchor_date) VALUES (11, 'f', 0, 'n', 'fortnight', '2024-01-01');"
            "PRAGMA ignore_check_constraints = OFF;";
        REQUIRE(sqlite3_exec(db, rows, nullptr, nullptr, nullptr) == SQLITE_OK);
        sqlite3_close(db);
    }
    store s(t.options());
    CHECK(s.db().schema_version() == static_cast<int>(migrations().size()));
    CHECK(s.find_subscription(11)->amount == 0);  // kept as it was: billingd flags it
    {
        statement view(s.db(), "SELECT n FROM my_report");
        REQUIRE(view.step());
        CHECK(view.int64(0) == 2);
    }
    // The checks are on again for this connection after the migration.
    CHECK_THROWS_AS(s.db().exec("UPDATE subscriptions SET amount = 0 WHERE id = 7"),
                    constraint_error);
    CHECK(s.find_subscription(7)->next_period == 1);  // waits on its open period 0
    CHECK_FALSE(s.find_subscription(7)->next_due_at.has_value());
    CHECK(s.find_subscription(8)->next_period == 2);  // no charge at period 2: unchanged
    CHECK(s.find_subscription(8)->next_due_at == std::optional<std::int64_t>{1706749200});
    CHECK(s.find_charge(1)->merchant_uid == "shop-a-p0");
    CHECK(s.attempts_of_charge(1).size() == 1);
    CHECK(run_raw(t.path, "PRAGMA foreign_key_check").empty());
    CHECK(s.insert_subscription(sample_subscription()) == 12);  // ids are never reused
    // No value list is checked through IN on the charge path (see the migration).
    for (const char* table : {"charges", "attempts", "subscriptions"}) {
        statement sql(s.db(), "SELECT sql FROM sqlite_master WHERE name = ?1");
        sql.bind(1, table);
        REQUIRE(sql.step());
        const auto text = sql.text(0);
        CHECK_MESSAGE(text.find("state IN") == std::string::npos, table);
        CHECK_MESSAGE(text.find("status IN") == std::string::npos, table);
        CHECK_MESSAGE(text.find("kind IN") == std::string::npos, table);
    }
}
