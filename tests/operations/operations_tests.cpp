// The operations layer's own rules: how a change is made atomic alone and in a group commit,
// what validation refuses and how its messages name a field, idempotency keys.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "operations/idempotency.hpp"
#include "operations/input.hpp"
#include "operations/operation.hpp"
#include "operations/subscriptions.hpp"
#include "storage/store.hpp"

using namespace billingd;
using operations::error;
using operations::error_kind;
using operations::naming;

namespace {

struct temp_store {
    std::filesystem::path dir;
    std::unique_ptr<storage::store> store;
    temp_store() {
        char pattern[] = "/tmp/billingd-operations-XXXXXX";
        dir = mkdtemp(pattern);
        storage::open_options o;
        o.path = (dir / "billing.db").string();
        store = std::make_unique<storage::store>(o);
        store->claim_install_id("t");
    }
    ~temp_store() {
        store.reset();
        std::filesystem::remove_all(dir);
    }
    std::int64_t count(const char* sql) {
        storage::statement st(store->db(), sql);
        st.step();
        return st.int64(0);
    }
};

constexpr std::int64_t now = 1'767'225'600;  // 2026-01-01T00:00:00Z
const operations::caller alice{"alice", now};

operations::new_subscription plan(std::string customer = "cust_1") {
    operations::new_subscription s;
    s.customer_uid = std::move(customer);
    s.amount = 9900;
    s.order_name = "Pro plan";
    return s;
}

storage::subscription_record create(temp_store& t, std::string customer = "cust_1") {
    return operations::create(
        *t.store, alice, operations::validate(plan(std::move(customer)), {}, now, naming::json));
}

// The message and type of the refusal `f` throws.
template <typename F>
std::pair<std::string, std::string> refusal(F f) {
    try {
        f();
    } catch (const error& e) {
        return {e.type(), e.what()};
    }
    return {"", "nothing refused"};
}

}  // namespace

TEST_CASE("a refused change in a group commit rolls back alone; the others commit together") {
    temp_store t;
    const auto paused = create(t, "cust_p");
    operations::pause(*t.store, alice, paused.id);
    {
        operations::group_commit group(*t.store);
        create(t, "cust_a");
        const auto [type, message] =
            refusal([&] { operations::pause(*t.store, alice, paused.id); });
        CHECK(type == "subscription-not-pausable");
        create(t, "cust_b");
        group.commit();
    }
    CHECK(t.count("SELECT count(*) FROM subscriptions") == 3);
    // The refused pause wrote no event: created x3, paused x1.
    CHECK(t.count("SELECT count(*) FROM events") == 4);
}

TEST_CASE("a group commit that is not committed keeps nothing of its changes") {
    temp_store t;
    {
        operations::group_commit group(*t.store);
        create(t, "cust_a");
        create(t, "cust_b");
    }
    CHECK(t.count("SELECT count(*) FROM subscriptions") == 0);
    CHECK(t.count("SELECT count(*) FROM events") == 0);
    // And the connection is usable on its own again.
    create(t, "cust_c");
    CHECK(t.count("SELECT count(*) FROM subscriptions") == 1);
}

TEST_CASE("a change_scope inside another is a savepoint of it: both or neither") {
    temp_store t;
    {
        operations::change_scope outer(*t.store);
        create(t, "cust_inner");  // its own scope, committed (released) inside the outer one
    }                             // the outer one is not committed
    CHECK(t.count("SELECT count(*) FROM subscriptions") == 0);
    {
        operations::change_scope outer(*t.store);
        create(t, "cust_inner");
        outer.commit();
    }
    CHECK(t.count("SELECT count(*) FROM subscriptions") == 1);
}

TEST_CASE("validation names the field as the caller does, with the same message") {
    auto s = plan();
    s.amount = 0;
    const auto [type, api] = refusal([&] { operations::validate(s, {}, now, naming::json); });
    const auto [same_type, ctl] =
        refusal([&] { operations::validate(s, {}, now, naming::options); });
    CHECK(type == "number-out-of-range");
    CHECK(same_type == type);
    CHECK(api == "amount: must be between 1 and 100000000000, got 0");
    CHECK(ctl == "--amount: must be between 1 and 100000000000, got 0");
    s = plan();
    s.order_name = std::string(41, 'x');
    CHECK(refusal([&] { operations::validate(s, {}, now, naming::options); }).second ==
          "--name: must be 1 to 40 characters, got 41");
    s = plan();
    s.interval_unit = "fortnight";
    CHECK(refusal([&] { operations::validate(s, {}, now, naming::json); }).second ==
          "interval_unit: 'fortnight' is not one of day, week, month, year");
    s = plan();
    s.amount = 200'000'000;
    CHECK(refusal([&] { operations::validate(s, {}, now, naming::json); }).first ==
          "amount-above-limit");
    operations::subscription_defaults limited;
    limited.max_amount_per_charge = 5000;
    s = plan();
    CHECK(refusal([&] {
              operations::validate(s, limited, now, naming::json);
          }).second.find("above the limit of 5000") != std::string::npos);
    s = plan();
    s.customer_uid = "cust\n1";
    CHECK(refusal([&] { operations::validate(s, {}, now, naming::json); }).second ==
          "customer_uid: 'cust\\x0A1' holds a control character (CR, LF, TAB, ESC and the like "
          "are not allowed)");
}

TEST_CASE("a new subscription is scheduled for period 0 from the defaults") {
    operations::subscription_defaults d;
    d.time_zone = "America/New_York";
    d.charge_time = "09:30";
    const auto v = operations::validate(plan(), d, now, naming::json);
    CHECK(v.row().time_zone == "America/New_York");
    CHECK(v.row().charge_time == "09:30");
    CHECK(v.row().anchor_date == "2025-12-31");  // 2026-01-01T00:00Z is still the 31st there
    CHECK(v.row().next_period == 0);
    REQUIRE(v.row().next_due_at);
    CHECK(*v.row().next_due_at == 1'767'191'400);  // 2025-12-31 09:30 EST
}

TEST_CASE("an idempotency key remembers the first answer; old keys are forgotten") {
    temp_store t;
    operations::idempotency_keys keys(t.store->db());
    CHECK_FALSE(keys.find("k1"));
    const std::string fingerprint(64, 'a');
    keys.remember("k1", {fingerprint, 201, "{\"subscription\":{}}"}, "shop", std::nullopt, now);
    const auto found = keys.find("k1");
    REQUIRE(found);
    CHECK(found->status == 201);
    CHECK(found->fingerprint == fingerprint);
    CHECK(found->body == "{\"subscription\":{}}");
    CHECK_THROWS_AS(keys.remember("k1", {fingerprint, 201, "{}"}, "shop", std::nullopt, now),
                    storage::constraint_error);
    keys.remember("k2", {fingerprint, 201, "{}"}, "shop", std::nullopt, now + 100);
    CHECK(keys.forget_before(now + 50, 10) == 1);
    CHECK_FALSE(keys.find("k1"));
    CHECK(keys.find("k2"));
}
