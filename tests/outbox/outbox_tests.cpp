// The outbox: the merchant type table, the envelope, signatures, backoff, and the delivery
// worker's at-least-once, in-order delivery against a scripted channel on a manual clock.
#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "outbox/outbox_store.hpp"
#include "outbox/payload.hpp"
#include "outbox/retry.hpp"
#include "outbox/signature.hpp"
#include "outbox/worker.hpp"
#include "support.hpp"

using namespace billingd;
using namespace billingd::outbox;
using namespace outbox_test;
namespace asio = boost::asio;
using std::chrono::seconds;

namespace {

// Delivers or fails as the test says; `hang` keeps attempts open until the io_context dies.
class scripted_channel final : public channel {
  public:
    explicit scripted_channel(std::string name = "webhook") : name_(std::move(name)) {}
    std::string_view name() const override { return name_; }
    asio::awaitable<attempt_result> deliver(outgoing m) override {
        ++attempts;
        attempted.push_back(m.event_id);
        if (hang) {
            asio::steady_timer t(co_await asio::this_coro::executor,
                                 asio::steady_timer::time_point::max());
            boost::system::error_code ec;
            co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
        if (down) co_return attempt_result{false, "connection refused"};
        delivered.push_back(m);
        co_return attempt_result{true, {}};
    }

    std::string name_;
    bool down = false;
    bool hang = false;
    int attempts = 0;
    std::vector<std::int64_t> attempted;
    std::vector<outgoing> delivered;
};

struct fixture {
    temp_db tmp;
    storage::store store{tmp.options()};
    outbox_store outbox{store.db()};
    scheduler::manual_clock clock{std::chrono::sys_seconds{seconds{1'767'225'600}}};

    std::unique_ptr<worker> make(scripted_channel*& out, worker_config cfg = {}) {
        auto ch = std::make_unique<scripted_channel>();
        out = ch.get();
        std::vector<std::unique_ptr<channel>> channels;
        channels.push_back(std::move(ch));
        cfg.install_id = "test";
        auto w =
            std::make_unique<worker>(outbox, clock, cfg, std::move(channels), [] { return 0.5; });
        w->open();
        return w;
    }

    void once(worker& w) {
        asio::io_context io;
        asio::co_spawn(io, w.run_until_idle(), [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
        io.run();
    }
};

}  // namespace

TEST_CASE("the type table delivers merchant events and keeps internal kinds in") {
    using opt = std::optional<std::string>;
    CHECK(merchant_type("charge.paid", opt{"sending"}, opt{"paid"}) == "charge.paid");
    CHECK(merchant_type("charge.declined", {}, {}) == "charge.declined");
    CHECK(merchant_type("subscription.status", opt{"trialing"}, opt{"active"}) ==
          "subscription.activated");
    CHECK(merchant_type("subscription.status", opt{"past_due"}, opt{"active"}) ==
          "subscription.activated");
    // A resume writes subscription.resumed as well: one merchant event, not two.
    CHECK_FALSE(merchant_type("subscription.status", opt{"paused"}, opt{"active"}));
    CHECK(merchant_type("subscription.status", opt{"active"}, opt{"past_due"}) ==
          "subscription.past_due");
    CHECK(merchant_type("subscription.status", opt{"past_due"}, opt{"unpaid"}) ==
          "subscription.unpaid");
    CHECK(merchant_type("subscription.status", opt{"active"}, opt{"ended"}) ==
          "subscription.ended");
    CHECK(merchant_type("subscription.resumed", {}, {}) == "subscription.resumed");
    CHECK(merchant_type("charge.upcoming", {}, {}) == "charge.upcoming");
    for (const char* internal :
         {"charge.state", "charge.recovered", "subscription.invalid", "subscription.rescheduled",
          "charge.skipped", "guardrail.max_charges_per_pass"})
        CHECK_FALSE(merchant_type(internal, {}, {}));
}

TEST_CASE("the envelope carries a stable id, the type, the version and the event's data") {
    storage::event_record e;
    e.id = 42;
    e.at = 1'767'225'600;
    e.subscription_id = 7;
    e.charge_id = 9;
    e.kind = "charge.paid";
    e.data = R"({"amount":9900,"currency":"KRW","imp_uid":"imp_1"})";
    const auto body = payload(e, "charge.paid", "inst1");
    CHECK(body == payload(e, "charge.paid", "inst1"));  // every retry sends the same bytes
    const auto j = nlohmann::json::parse(body);
    CHECK(j["id"] == "evt_inst1_42");
    CHECK(j["type"] == "charge.paid");
    CHECK(j["version"] == payload_version);
    CHECK(j["created_at"] == 1'767'225'600);
    CHECK(j["subscription_id"] == 7);
    CHECK(j["charge_id"] == 9);
    CHECK(j["data"]["imp_uid"] == "imp_1");

    e.kind = "subscription.status";
    e.from_state = "active";
    e.to_state = "past_due";
    e.data.reset();
    e.charge_id.reset();
    const auto s = nlohmann::json::parse(payload(e, "subscription.past_due", "inst1"));
    CHECK(s["charge_id"].is_null());
    CHECK(s["data"]["status"] == "past_due");
    CHECK(s["data"]["previous_status"] == "active");
}

TEST_CASE("a hand-written payload nested 100,000 deep is delivered without its deep part") {
    storage::event_record e;
    e.id = 9;
    e.at = 1'700'000'000;
    e.kind = "charge.paid";
    e.data = "{\"a\":" + std::string(100'000, '[') + std::string(100'000, ']') + "}";
    const auto body = payload(e, "charge.paid", "inst1");  // writing it out must not recurse
    const auto j = nlohmann::json::parse(body);
    CHECK(j["id"] == "evt_inst1_9");
    CHECK(j["data"].is_object());
}

TEST_CASE("signatures match the Standard Webhooks reference vector") {
    // From the standard-webhooks libraries' tests.
    auto key = parse_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    REQUIRE(is_key(key));
    CHECK(sign(std::get<0>(key), "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
               R"({"test": 2432232314})") == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    auto other = parse_secret("whsec_" + base64_encode(std::string(32, 'k')));
    REQUIRE(is_key(other));
    const auto header = signature_header({std::get<0>(key), std::get<0>(other)}, "id", 1, "{}");
    CHECK(header ==
          sign(std::get<0>(key), "id", 1, "{}") + " " + sign(std::get<0>(other), "id", 1, "{}"));
}

TEST_CASE("malformed signing secrets are refused without echoing them") {
    for (const char* bad : {"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_not base64!",
                            "whsec_c2hvcnQ=", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS"}) {
        auto r = parse_secret(bad);
        REQUIRE_FALSE(is_key(r));
        if (std::string(bad).size() > 8) CHECK(std::get<1>(r).find(bad) == std::string::npos);
    }
}

TEST_CASE("retry delays grow exponentially with jitter and stop at the cap") {
    retry_policy p;
    p.base = seconds{5};
    p.cap = seconds{3600};
    CHECK(retry_delay(p, 1, 0.999) <= seconds{5});
    CHECK(retry_delay(p, 1, 0.0) >= seconds{2});
    CHECK(retry_delay(p, 2, 0.999) <= seconds{10});
    CHECK(retry_delay(p, 3, 0.999) > seconds{10});
    CHECK(retry_delay(p, 40, 0.999) <= seconds{3600});
    CHECK(retry_delay(p, 40, 0.0) >= seconds{1800});
    CHECK(retry_delay(p, 1'000'000, 0.5) <= seconds{3600});
}

TEST_CASE("a channel configured for the first time starts with the events written from then on") {
    fixture f;
    const auto sub = add_subscription(f.store);
    add_event(f.store, sub, "charge.paid");
    scripted_channel* ch = nullptr;
    auto w = f.make(ch);
    const auto later = add_event(f.store, sub, "charge.paid");
    f.once(*w);
    REQUIRE(ch->delivered.size() == 1);
    CHECK(ch->delivered[0].event_id == later);
    CHECK(ch->delivered[0].id == "evt_test_" + std::to_string(later));
}

TEST_CASE("internal events are stepped over without a delivery") {
    fixture f;
    const auto sub = add_subscription(f.store);
    scripted_channel* ch = nullptr;
    auto w = f.make(ch);
    add_event(f.store, sub, "charge.recovered");
    const auto paid = add_event(f.store, sub, "charge.paid");
    add_event(f.store, sub, "subscription.rescheduled");
    f.once(*w);
    REQUIRE(ch->delivered.size() == 1);
    CHECK(ch->delivered[0].event_id == paid);
    CHECK(f.store.db().schema_version() > 0);
    CHECK(f.outbox.channels().at(0).backlog == 0);  // the cursor passed all three
}

TEST_CASE("a receiver down for a while gets every event once, in order per subscription") {
    fixture f;
    const auto a = add_subscription(f.store);
    const auto b = add_subscription(f.store);
    scripted_channel* ch = nullptr;
    worker_config cfg;
    cfg.max_in_flight = 3;
    cfg.retry.base = seconds{10};
    cfg.retry.cap = seconds{600};
    auto w = f.make(ch, cfg);
    std::vector<std::int64_t> written;
    for (int i = 0; i < 6; ++i) {
        written.push_back(add_event(f.store, a, "charge.paid"));
        written.push_back(add_event(f.store, b, "charge.declined"));
        written.push_back(add_event(f.store, i % 2 ? a : b, "charge.recovered"));  // internal
    }
    ch->down = true;
    for (int round = 0; round < 5; ++round) {
        f.once(*w);
        f.clock.advance(seconds{900});
    }
    CHECK(ch->delivered.empty());
    CHECK(ch->attempts >= 2);
    const auto pending = f.outbox.list(std::string("pending"), 100);
    CHECK(pending.size() == 12);

    ch->down = false;
    for (int round = 0; round < 20 && ch->delivered.size() < 12; ++round) {
        f.once(*w);
        f.clock.advance(seconds{900});
    }
    std::map<std::int64_t, int> times;
    std::map<std::int64_t, std::int64_t> last_of;  // subscription -> last event id delivered
    std::map<std::int64_t, std::int64_t> sub_of;
    for (auto id : written)
        if (auto e = f.outbox.event(id)) sub_of[id] = *e->subscription_id;
    for (const auto& m : ch->delivered) {
        ++times[m.event_id];
        const auto sub = sub_of[m.event_id];
        CHECK(m.event_id > last_of[sub]);
        last_of[sub] = m.event_id;
    }
    CHECK(times.size() == 12);
    for (const auto& [id, n] : times) CHECK(n == 1);
    CHECK(f.outbox.list(std::nullopt, 100).empty());
}

TEST_CASE("a later event of a subscription waits for the earlier one; other subscriptions go on") {
    fixture f;
    const auto a = add_subscription(f.store);
    const auto b = add_subscription(f.store);
    scripted_channel* ch = nullptr;
    auto w = f.make(ch);
    const auto a1 = add_event(f.store, a, "charge.declined");
    ch->down = true;
    f.once(*w);
    ch->down = false;
    const auto a2 = add_event(f.store, a, "charge.paid");
    const auto b1 = add_event(f.store, b, "charge.paid");
    f.once(*w);  // a1's retry is not due yet: a2 waits, b1 goes
    REQUIRE(ch->delivered.size() == 1);
    CHECK(ch->delivered[0].event_id == b1);
    auto rows = f.outbox.list(std::string("pending"), 10);
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].event_id == a1);
    CHECK(rows[0].attempts == 1);
    CHECK(rows[1].event_id == a2);
    CHECK_FALSE(rows[1].next_attempt_at);  // waiting
    f.clock.advance(seconds{3600});
    f.once(*w);
    REQUIRE(ch->delivered.size() == 3);
    CHECK(ch->delivered[1].event_id == a1);
    CHECK(ch->delivered[2].event_id == a2);
}

TEST_CASE(
    "past the horizon an event is dead, its subscription's next events go on, and it can "
    "be redelivered") {
    fixture f;
    const auto a = add_subscription(f.store);
    scripted_channel* ch = nullptr;
    worker_config cfg;
    cfg.retry.base = seconds{60};
    cfg.retry.cap = seconds{3600};
    cfg.retry.horizon = seconds{4 * 3600};
    auto w = f.make(ch, cfg);
    const auto e1 = add_event(f.store, a, "charge.declined");
    const auto e2 = add_event(f.store, a, "subscription.status");  // no to_state: internal
    const auto e3 = add_event(f.store, a, "charge.paid");
    (void)e2;
    ch->down = true;
    for (int i = 0; i < 12; ++i) {
        f.once(*w);
        f.clock.advance(seconds{1800});
    }
    auto dead = f.outbox.list(std::string("dead"), 10);
    REQUIRE(dead.size() == 2);
    CHECK(dead[0].event_id == e1);
    CHECK(dead[0].last_error == "connection refused");
    CHECK(dead[1].event_id == e3);
    const int attempts_before = ch->attempts;
    f.once(*w);
    CHECK(ch->attempts == attempts_before);  // dead: no more attempts

    ch->down = false;
    CHECK(f.outbox.redeliver_all_dead(f.clock.now().time_since_epoch().count()) == 2);
    f.once(*w);
    REQUIRE(ch->delivered.size() == 2);
    CHECK(ch->delivered[0].event_id == e1);
    CHECK(ch->delivered[1].event_id == e3);
    CHECK(f.outbox.list(std::nullopt, 10).empty());
    // A delivered event can be sent again on purpose, with the same id.
    CHECK(f.outbox.redeliver(e1, f.clock.now().time_since_epoch().count()) == 1);
    f.once(*w);
    REQUIRE(ch->delivered.size() == 3);
    CHECK(ch->delivered[2].id == ch->delivered[0].id);
    CHECK(ch->delivered[2].body == ch->delivered[0].body);
}

TEST_CASE("attempts cut off by a crash are sent again after a restart: nothing is lost") {
    fixture f;
    const auto a = add_subscription(f.store);
    const auto b = add_subscription(f.store);
    std::set<std::int64_t> written;
    {
        scripted_channel* ch = nullptr;
        worker_config cfg;
        cfg.max_in_flight = 2;
        auto w = f.make(ch, cfg);
        for (int i = 0; i < 5; ++i) {
            written.insert(add_event(f.store, a, "charge.paid"));
            written.insert(add_event(f.store, b, "charge.paid"));
        }
        ch->hang = true;
        asio::io_context io;
        asio::co_spawn(io, w->run(), asio::detached);
        io.run_for(std::chrono::milliseconds{200});
        CHECK(ch->attempts == 2);
        // The process dies here: io_context and worker go away with attempts on the wire.
    }
    scripted_channel* ch = nullptr;
    auto w = f.make(ch);
    f.once(*w);
    std::set<std::int64_t> got;
    for (const auto& m : ch->delivered) got.insert(m.event_id);
    CHECK(got == written);
}

TEST_CASE("the window bounds memory: a backlog larger than it is delivered in order") {
    fixture f;
    const auto a = add_subscription(f.store);
    scripted_channel* ch = nullptr;
    worker_config cfg;
    cfg.window = 8;
    auto w = f.make(ch, cfg);
    for (int i = 0; i < 50; ++i) add_event(f.store, a, "charge.paid");
    f.once(*w);
    REQUIRE(ch->delivered.size() == 50);
    for (std::size_t i = 1; i < ch->delivered.size(); ++i)
        CHECK(ch->delivered[i].event_id > ch->delivered[i - 1].event_id);
}
