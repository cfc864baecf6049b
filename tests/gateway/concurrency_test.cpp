// The client's shared state without the network: the in-flight bound, pacing, the token
// cache (one fetch at a time, refresh ahead of expiry, refresh after a 401), and base URLs.
#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <string>
#include <vector>

#include "gateway/http_client.hpp"
#include "gateway/limiter.hpp"
#include "gateway/token_cache.hpp"

namespace asio = boost::asio;
namespace gw = billingd::gateway;
using namespace std::chrono_literals;

namespace {

struct occupancy {
    int now = 0;
    int peak = 0;
    int done = 0;
};

asio::awaitable<void> hold_a_slot(gw::request_limiter* limiter, occupancy* seen) {
    auto slot = co_await limiter->acquire();
    seen->peak = std::max(seen->peak, ++seen->now);
    asio::steady_timer pause(co_await asio::this_coro::executor);
    pause.expires_after(5ms);
    co_await pause.async_wait(asio::use_awaitable);
    --seen->now;
    ++seen->done;
}

}  // namespace

TEST_CASE("no more than max_in_flight requests are outstanding; the others wait their turn") {
    asio::io_context io;
    gw::request_limiter limiter(io.get_executor(), 3, 0);
    occupancy seen;
    for (int i = 0; i < 10; ++i) asio::co_spawn(io, hold_a_slot(&limiter, &seen), asio::detached);
    io.run();
    CHECK(seen.done == 10);
    CHECK(seen.peak == 3);
    CHECK(limiter.in_flight() == 0);
    CHECK(limiter.waiting() == 0);
}

TEST_CASE("requests per second are paced") {
    asio::io_context io;
    gw::request_limiter limiter(io.get_executor(), 16, 100);  // 10 ms apart
    occupancy seen;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 6; ++i) asio::co_spawn(io, hold_a_slot(&limiter, &seen), asio::detached);
    io.run();
    CHECK(seen.done == 6);
    CHECK(std::chrono::steady_clock::now() - start >= 50ms);
}

namespace {

// A scripted getToken: hands out tok1, tok2, ... after a short pause, or fails.
struct fake_token_endpoint {
    asio::io_context* io;
    int calls = 0;
    std::int64_t lifetime_s = 1800;
    bool fail = false;
    bool same_token = false;

    asio::awaitable<gw::wire::token_result> fetch() {
        ++calls;
        asio::steady_timer pause(*io);
        pause.expires_after(2ms);
        co_await pause.async_wait(asio::use_awaitable);
        gw::wire::token_result r;
        r.journal.kind = "token";
        if (fail) {
            r.journal.result = gw::outcome::config_error;
            r.journal.message = "HTTP 401";
            co_return r;
        }
        gw::wire::token_answer t;
        t.access_token = same_token ? "tok" : "tok" + std::to_string(calls);
        t.now = 1'000'000;
        t.expired_at = t.now + lifetime_s;
        r.token = t;
        r.journal.result = gw::outcome::found;
        co_return r;
    }
};

struct fake_clock {
    std::chrono::steady_clock::time_point now = std::chrono::steady_clock::time_point{} + 1h;
};

asio::awaitable<void> get_into(gw::token_cache* cache, std::uint64_t rejected,
                               gw::token_cache::lease* out) {
    *out = co_await cache->get(rejected);
}

gw::token_cache::lease get_now(asio::io_context& io, gw::token_cache& cache,
                               std::uint64_t rejected = 0) {
    gw::token_cache::lease lease;
    asio::co_spawn(io, get_into(&cache, rejected, &lease), asio::detached);
    io.restart();
    io.run();
    return lease;
}

gw::token_cache make_cache(asio::io_context& io, fake_token_endpoint& endpoint, fake_clock& clock) {
    return gw::token_cache(
        io.get_executor(), [&endpoint] { return endpoint.fetch(); }, 60s,
        [&clock] { return clock.now; });
}

}  // namespace

TEST_CASE("concurrent callers share one getToken request") {
    asio::io_context io;
    fake_token_endpoint endpoint{&io};
    fake_clock clock;
    auto cache = make_cache(io, endpoint, clock);
    std::vector<gw::token_cache::lease> leases(8);
    for (auto& lease : leases) asio::co_spawn(io, get_into(&cache, 0, &lease), asio::detached);
    io.run();
    CHECK(endpoint.calls == 1);
    for (const auto& lease : leases) {
        CHECK(lease.token == "tok1");
        CHECK_FALSE(lease.failure);
    }
}

TEST_CASE("the token is reused until the refresh margin before its expiry") {
    asio::io_context io;
    fake_token_endpoint endpoint{&io};
    fake_clock clock;
    auto cache = make_cache(io, endpoint, clock);
    CHECK(get_now(io, cache).token == "tok1");
    clock.now += 1800s - 61s;
    CHECK(get_now(io, cache).token == "tok1");
    CHECK(endpoint.calls == 1);
    clock.now += 2s;  // inside the last minute
    CHECK(get_now(io, cache).token == "tok2");
    CHECK(endpoint.calls == 2);
}

TEST_CASE("a short-lived token is refreshed at half its lifetime, not every time") {
    asio::io_context io;
    fake_token_endpoint endpoint{&io};
    endpoint.lifetime_s = 30;
    fake_clock clock;
    auto cache = make_cache(io, endpoint, clock);
    CHECK(get_now(io, cache).token == "tok1");
    clock.now += 14s;
    CHECK(get_now(io, cache).token == "tok1");
    clock.now += 2s;
    CHECK(get_now(io, cache).token == "tok2");
}

TEST_CASE("a token answered 401 is replaced, once, by whoever asks first") {
    asio::io_context io;
    fake_token_endpoint endpoint{&io};
    fake_clock clock;
    auto cache = make_cache(io, endpoint, clock);
    const auto first = get_now(io, cache);
    const auto renewed = get_now(io, cache, first.generation);
    CHECK(renewed.token == "tok2");
    CHECK(renewed.generation != first.generation);
    // A second caller that also saw the 401 on tok1 gets tok2 without another fetch.
    CHECK(get_now(io, cache, first.generation).token == "tok2");
    CHECK(endpoint.calls == 2);
}

TEST_CASE("PortOne handing back the refused token still ends with a new generation") {
    asio::io_context io;
    fake_token_endpoint endpoint{&io};
    endpoint.same_token = true;
    fake_clock clock;
    auto cache = make_cache(io, endpoint, clock);
    const auto first = get_now(io, cache);
    const auto again = get_now(io, cache, first.generation);
    CHECK(again.token == "tok");
    CHECK(again.generation != first.generation);
}

TEST_CASE("a failed refresh keeps a still-valid token, and reports the failure otherwise") {
    asio::io_context io;
    fake_token_endpoint endpoint{&io};
    fake_clock clock;
    auto cache = make_cache(io, endpoint, clock);
    const auto first = get_now(io, cache);
    endpoint.fail = true;
    clock.now += 1800s - 30s;  // refresh due, token not expired
    CHECK(get_now(io, cache).token == "tok1");
    clock.now += 31s;  // expired
    auto lease = get_now(io, cache);
    REQUIRE(lease.failure);
    CHECK(lease.failure->result == gw::outcome::config_error);
    CHECK(lease.token.empty());
    // A rejected token is never handed out again, even when the refresh failed.
    clock.now -= 31s;
    lease = get_now(io, cache, first.generation);
    CHECK(lease.failure);
}

TEST_CASE("base_url: https anywhere, http only on loopback") {
    struct row {
        const char* url;
        bool ok;
    };
    const row rows[] = {
        {"https://api.iamport.kr", true},
        {"https://api.iamport.kr/", true},
        {"https://api.iamport.kr:8443/v1", true},
        {"http://127.0.0.1:8080", true},
        {"http://127.45.0.3:8080", true},
        {"http://localhost:9000", true},
        {"http://LOCALHOST", true},
        {"http://[::1]:8080", true},
        {"https://[2001:db8::1]:443", true},
        {"http://api.iamport.kr", false},
        {"http://128.0.0.1", false},
        {"http://10.0.0.1:8080", false},
        {"http://localhost.evil.com", false},
        {"http://[::2]:80", false},
        {"ftp://api.iamport.kr", false},
        {"api.iamport.kr", false},
        {"https://", false},
        {"https://user:pw@api.iamport.kr", false},
        {"https://api.iamport.kr:0", false},
        {"https://api.iamport.kr:70000", false},
        {"https://api.iamport.kr:80a", false},
        {"https://api.iamport.kr?x=1", false},
        {"https://::1", false},
        {"https://api.iamport.kr/v1\r\nX-Injected: 1", false},  // request splitting
        {"https://api.iamport.kr/a b", false},
        {"https://api.iamport.kr/%0d%0a", true},  // escaped: harmless in a request line
        {"https://api.iamport.kr/%zz", false},
        {"https://api.iamport.kr/v1;x=1/~a_b.c-d", true},
    };
    for (const auto& r : rows) {
        CAPTURE(r.url);
        CHECK(!gw::validate_base_url(r.url).has_value() == r.ok);
    }
    asio::io_context io;
    gw::http_client_options options;
    options.base_url = "http://api.iamport.kr";
    CHECK_THROWS_AS(gw::make_http_client(io, options), std::invalid_argument);
}
