// End-to-end: the real http_client against portone-sim on loopback, plain and TLS.
// Every case starts its own simulator so faults and ledgers never leak between cases.
#include <doctest/doctest.h>
#include <sys/resource.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "client_support.hpp"
#include "gateway/http_client.hpp"
#include "gateway/wire.hpp"
#include "sim_support.hpp"

namespace asio = boost::asio;
namespace gw = billingd::gateway;
using client_support::check_no_secrets;
using client_support::run;
using gw::outcome;
using nlohmann::json;
using sim_support::sim_process;
using namespace std::chrono_literals;

namespace {

constexpr const char* imp_key = "sim_key";
constexpr const char* imp_secret = "sim_secret";

std::vector<std::string> sim_args(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "--port",         "0",        "--seed",           "7",        "--prefix",
        "pay_=pay",       "--prefix", "decline_=decline", "--prefix", "once_=decline_first:1",
        "--hang-seconds", "20"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

gw::http_client_options options_for(const std::string& base_url) {
    gw::http_client_options o;
    o.base_url = base_url;
    o.imp_key = imp_key;
    o.imp_secret = imp_secret;
    o.connect_timeout = 2s;
    o.charge_timeout = 1500ms;
    o.lookup_timeout = 2s;
    return o;
}

gw::charge_request make_request(std::string customer_uid, std::string merchant_uid) {
    gw::charge_request r;
    r.customer_uid = std::move(customer_uid);
    r.merchant_uid = std::move(merchant_uid);
    r.amount = 9900;
    r.name = "Monthly plan";
    r.buyer_email = "buyer@example.com";
    return r;
}

// One simulator, one client, and shortcuts for the three calls.
struct session {
    explicit session(std::vector<std::string> extra = {},
                     void (*tweak)(gw::http_client_options&) = nullptr)
        : sim(sim_args(std::move(extra))) {
        auto options = options_for(sim.http_url());
        if (tweak) tweak(options);
        client = gw::make_http_client(io, std::move(options));
    }

    gw::charge_result charge(const std::string& customer_uid, const std::string& merchant_uid) {
        auto request = make_request(customer_uid, merchant_uid);
        auto result = run(io, client->charge(request));
        check_no_secrets(result.journal);
        return result;
    }
    gw::lookup_result find_all(const std::string& merchant_uid) {
        auto result = run(io, client->find_all(merchant_uid));
        check_no_secrets(result.journal);
        return result;
    }
    gw::customer_result customer(const std::string& customer_uid) {
        auto result = run(io, client->get_customer(customer_uid));
        check_no_secrets(result.journal);
        return result;
    }
    json stats() const { return json::parse(sim.request("GET", "/__sim/stats")); }

    sim_process sim;
    asio::io_context io;
    std::unique_ptr<gw::client> client;
};

std::int64_t requests(const json& stats, const char* endpoint) {
    return stats["requests"].value(endpoint, std::int64_t{0});
}

}  // namespace

TEST_CASE("a charge the card accepts is paid, with the payment to check") {
    session s;
    const auto r = s.charge("pay_alice", "sub1-p1");
    CHECK(r.journal.result == outcome::paid);
    CHECK(r.journal.request_written);
    CHECK(r.journal.http_status == 200);
    CHECK(r.journal.code == 0);
    CHECK(r.journal.imp_uid.rfind("imp_", 0) == 0);
    CHECK(r.journal.latency.count() >= 0);
    REQUIRE(r.answer);
    CHECK_FALSE(gw::wire::paid_anomaly(make_request("pay_alice", "sub1-p1"), *r.answer));

    const auto lookup = s.find_all("sub1-p1");
    CHECK(lookup.verdict == outcome::paid);
    REQUIRE(lookup.settled);
    CHECK(lookup.settled->imp_uid == r.journal.imp_uid);

    const auto customer = s.customer("pay_alice");
    CHECK(customer.journal.result == outcome::found);
    CHECK(customer.exists);
    CHECK_FALSE(customer.card_number.empty());
}

TEST_CASE("keep-alive: one token and one connection serve several calls") {
    session s;
    CHECK(s.charge("pay_a", "ka-1").journal.result == outcome::paid);
    CHECK(s.charge("pay_a", "ka-2").journal.result == outcome::paid);
    CHECK(s.find_all("ka-1").verdict == outcome::paid);
    CHECK(requests(s.stats(), "token") == 1);
}

TEST_CASE("a declined card is declined with PortOne's fail_reason") {
    session s;
    const auto r = s.charge("decline_bob", "sub2-p1");
    CHECK(r.journal.result == outcome::declined);
    CHECK(r.journal.message.find("한도초과") != std::string::npos);
    REQUIRE(r.answer);
    CHECK(r.answer->status == "failed");
    const auto lookup = s.find_all("sub2-p1");
    CHECK(lookup.verdict == outcome::declined);
    CHECK(lookup.journal.message.find("한도초과") != std::string::npos);
}

TEST_CASE("an unknown customer_uid is an invalid billing key, confirmed by the customer lookup") {
    session s;
    const auto r = s.charge("nobody", "sub3-p1");
    CHECK(r.journal.result == outcome::invalid_billing_key);
    CHECK(r.needs_customer_check);
    const auto customer = s.customer("nobody");
    CHECK(customer.journal.result == outcome::not_found);
    CHECK_FALSE(customer.exists);
    CHECK(s.find_all("sub3-p1").verdict == outcome::not_found);
}

TEST_CASE("a token that dies early is refreshed once and the charge goes through") {
    session s({"--fault", "token:token_expire_early:1.0:1"});
    CHECK(s.charge("pay_c", "tok-1").journal.result == outcome::paid);  // uses the one-shot token
    const auto r = s.charge("pay_c", "tok-2");  // 401, new token, sent again
    CHECK(r.journal.result == outcome::paid);
    CHECK(requests(s.stats(), "token") == 2);
    CHECK(requests(s.stats(), "charge") == 3);
}

TEST_CASE("a charge that hangs after PortOne committed it is unknown, and findAll says paid") {
    session s({"--fault", "charge:hang_after:1.0:1"},
              [](gw::http_client_options& o) { o.charge_timeout = 300ms; });
    const auto start = std::chrono::steady_clock::now();
    const auto r = s.charge("pay_d", "hang-1");
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    CHECK(r.journal.result == outcome::unknown);
    CHECK(r.journal.request_written);
    CHECK(r.journal.http_status == 0);
    CHECK(r.journal.message.find("timed out") != std::string::npos);
    CHECK(s.find_all("hang-1").verdict == outcome::paid);
}

TEST_CASE("a connection reset after the commit is unknown, and findAll says paid") {
    session s({"--fault", "charge:reset_after:1.0:1"});
    const auto r = s.charge("pay_e", "reset-1");
    CHECK(r.journal.result == outcome::unknown);
    CHECK(r.journal.request_written);
    CHECK(s.find_all("reset-1").verdict == outcome::paid);
    CHECK(s.charge("pay_e", "reset-2").journal.result == outcome::paid);  // the pool recovers
}

TEST_CASE("5xx before the commit and after it are both unknown; findAll tells them apart") {
    session s({"--fault", "charge:http503_before:1.0:1", "--fault", "charge:http503_after:1.0:1"});
    auto r = s.charge("pay_f", "5xx-1");
    CHECK(r.journal.result == outcome::unknown);
    CHECK(r.journal.http_status == 503);
    CHECK(s.find_all("5xx-1").verdict == outcome::not_found);
    r = s.charge("pay_f", "5xx-2");
    CHECK(r.journal.result == outcome::unknown);
    CHECK(r.journal.http_status == 503);
    CHECK(s.find_all("5xx-2").verdict == outcome::paid);
}

TEST_CASE("HTTP 429 is transient") {
    session s({"--fault", "charge:http429:1.0:1"});
    const auto r = s.charge("pay_g", "429-1");
    CHECK(r.journal.result == outcome::transient);
    CHECK(r.journal.http_status == 429);
    CHECK(s.find_all("429-1").verdict == outcome::not_found);
}

TEST_CASE("a PG communication failure is a refusal to reconcile") {
    session s({"--fault", "charge:pg_failure:1.0:1"});
    const auto r = s.charge("pay_h", "pg-1");
    CHECK(r.journal.result == outcome::refused);
    CHECK(r.journal.code.value_or(0) != 0);
    CHECK(s.find_all("pg-1").verdict == outcome::not_found);
}

TEST_CASE("a non-JSON answer is unknown") {
    session s({"--fault", "charge:non_json:1.0:1"});
    const auto r = s.charge("pay_i", "html-1");
    CHECK(r.journal.result == outcome::unknown);
    CHECK_FALSE(r.journal.code);
    CHECK(s.find_all("html-1").verdict == outcome::paid);
}

TEST_CASE("an oversized answer is cut off and unknown") {
    session s({"--fault", "charge:oversize:1.0:1", "--oversize-bytes", "3000000"},
              [](gw::http_client_options& o) { o.max_response_bytes = 64 * 1024; });
    const auto r = s.charge("pay_j", "big-1");
    CHECK(r.journal.result == outcome::unknown);
    CHECK(r.journal.message.find("larger than") != std::string::npos);
    CHECK(r.journal.raw.size() <= gw::max_journaled_body);
    CHECK(s.find_all("big-1").verdict == outcome::paid);
}

TEST_CASE("charging a paid merchant_uid again is refused, and findAll says paid") {
    session s;
    REQUIRE(s.charge("pay_k", "dup-1").journal.result == outcome::paid);
    const auto again = s.charge("pay_k", "dup-1");
    CHECK(again.journal.result == outcome::refused);
    CHECK(again.journal.message.find("이미") != std::string::npos);
    const auto lookup = s.find_all("dup-1");
    CHECK(lookup.verdict == outcome::paid);
    CHECK(lookup.payments.size() == 1);
}

TEST_CASE("a failed merchant_uid can be charged again and paid; findAll pages through both") {
    session s({}, [](gw::http_client_options& o) { o.find_all_page_size = 1; });
    CHECK(s.charge("once_l", "retry-1").journal.result == outcome::declined);
    CHECK(s.find_all("retry-1").verdict == outcome::declined);
    CHECK(s.charge("once_l", "retry-1").journal.result == outcome::paid);
    const auto lookup = s.find_all("retry-1");
    CHECK(lookup.verdict == outcome::paid);
    CHECK(lookup.payments.size() == 2);
    CHECK(requests(s.stats(), "findAll") == 3);  // 1 page, then 2 pages
}

TEST_CASE("nothing listening: transient, and the request was not written") {
    asio::io_context io;
    auto client = gw::make_http_client(
        io, options_for("http://127.0.0.1:" + std::to_string(sim_support::unused_port())));
    auto request = make_request("pay_m", "refused-1");
    const auto r = run(io, client->charge(request));
    CHECK(r.journal.result == outcome::transient);
    CHECK_FALSE(r.journal.request_written);
    CHECK(r.journal.message.find("not sent") != std::string::npos);
    check_no_secrets(r.journal);
    const auto lookup = run(io, client->find_all("refused-1"));
    CHECK(lookup.verdict == outcome::unknown);  // no answer is never "no record"
}

TEST_CASE("out of file descriptors: transient, not written, and the message says so") {
    session s;
    CHECK(s.charge("pay_fd", "fd-0").journal.result == outcome::paid);  // the reactor is up
    // A second client: no token and no idle connection, so it must open a socket.
    auto fresh = gw::make_http_client(s.io, options_for(s.sim.http_url()));
    // Every descriptor this process may have is in use: the next socket() fails (EMFILE).
    rlimit before{};
    REQUIRE(getrlimit(RLIMIT_NOFILE, &before) == 0);
    std::size_t open_now = 0;
    for ([[maybe_unused]] const auto& fd : std::filesystem::directory_iterator("/proc/self/fd"))
        ++open_now;
    rlimit tight = before;
    tight.rlim_cur = open_now - 1;  // the directory iterator's own descriptor is closed again
    REQUIRE(setrlimit(RLIMIT_NOFILE, &tight) == 0);
    auto request = make_request("pay_fd", "fd-1");
    const auto r = run(s.io, fresh->charge(request));
    REQUIRE(setrlimit(RLIMIT_NOFILE, &before) == 0);
    CHECK(r.journal.result == outcome::transient);
    CHECK_FALSE(r.journal.request_written);
    CAPTURE(r.journal.message);
    CHECK(r.journal.message.find("open-files limit") != std::string::npos);
    CHECK(s.charge("pay_fd", "fd-1").journal.result == outcome::paid);  // fine once it is raised
}

TEST_CASE("the key and secret never reach an exchange: success, 401 and error paths") {
    session s(
        {"--fault", "token:token_expire_early:1.0:1", "--fault", "charge:http500_after:1.0:1"});
    s.charge("pay_n", "sec-1");  // 500 after commit
    s.charge("pay_n", "sec-2");  // 401, refresh, paid
    s.find_all("sec-1");
    s.customer("pay_n");
    s.customer("nobody");
    s.charge("nobody", "sec-3");

    // Wrong credentials: getToken answers 401 and the charge is never sent.
    asio::io_context io;
    auto options = options_for(s.sim.http_url());
    options.imp_secret = "wrong_secret_value";
    auto client = gw::make_http_client(io, options);
    auto request = make_request("pay_n", "sec-4");
    const auto r = run(io, client->charge(request));
    CHECK(r.journal.result == outcome::config_error);
    CHECK_FALSE(r.journal.request_written);
    check_no_secrets(r.journal);
    CHECK(r.journal.message.find("wrong_secret_value") == std::string::npos);
    CHECK(r.journal.raw.find("wrong_secret_value") == std::string::npos);
    const auto lookup = run(io, client->find_all("sec-1"));
    CHECK(lookup.verdict == outcome::config_error);
    check_no_secrets(lookup.journal);
}

TEST_CASE("concurrent charges share one token and all complete") {
    session s({"--fault", "charge:latency_ms=20:1.0"},
              [](gw::http_client_options& o) { o.max_in_flight = 2; });
    std::vector<std::future<gw::charge_result>> results;
    for (int i = 0; i < 6; ++i) {
        auto request = make_request("pay_o", "conc-" + std::to_string(i));
        results.push_back(asio::co_spawn(s.io, s.client->charge(request), asio::use_future));
    }
    s.io.restart();
    s.io.run();
    for (auto& f : results) CHECK(f.get().journal.result == outcome::paid);
    CHECK(requests(s.stats(), "token") == 1);
}

TEST_CASE("the after_charge_written hook fires once the charge left, before the answer") {
    int fired = 0;
    std::string seen;
    sim_process sim(sim_args());
    asio::io_context io;
    auto options = options_for(sim.http_url());
    options.after_charge_written = [&](std::string_view merchant_uid) {
        ++fired;
        seen = merchant_uid;
    };
    auto client = gw::make_http_client(io, options);
    auto request = make_request("pay_p", "hook-1");
    CHECK(run(io, client->charge(request)).journal.result == outcome::paid);
    CHECK(fired == 1);
    CHECK(seen == "hook-1");
    run(io, client->find_all("hook-1"));
    CHECK(fired == 1);
}

TEST_CASE("TLS: the simulator's certificate is trusted through ca_file") {
    sim_process sim(sim_args({"--tls-cert", SIM_CERT, "--tls-key", SIM_KEY}));
    for (const std::string host : {"127.0.0.1", "localhost"}) {
        CAPTURE(host);
        asio::io_context io;
        auto options = options_for("https://" + host + ":" + std::to_string(sim.port()));
        options.ca_file = SIM_CERT;
        auto client = gw::make_http_client(io, options);
        auto request = make_request("pay_q", "tls-" + host);
        const auto r = run(io, client->charge(request));
        CHECK(r.journal.result == outcome::paid);
        CHECK(run(io, client->find_all("tls-" + host)).verdict == outcome::paid);
    }
}

TEST_CASE("TLS: an untrusted certificate is refused before anything is sent, as a config error") {
    sim_process sim(sim_args({"--tls-cert", SIM_CERT, "--tls-key", SIM_KEY}));
    asio::io_context io;
    auto client =
        gw::make_http_client(io, options_for("https://127.0.0.1:" + std::to_string(sim.port())));
    auto request = make_request("pay_r", "tls-untrusted");
    const auto r = run(io, client->charge(request));
    // A wrong CA or a MITM is not transient: retrying will not change it; charging halts.
    CHECK(r.journal.result == outcome::config_error);
    CHECK_FALSE(r.journal.request_written);
    CHECK(r.journal.message.find("certificate verification failed") != std::string::npos);
    const auto lookup = run(io, client->find_all("tls-untrusted"));
    CHECK(lookup.verdict == outcome::config_error);
}

TEST_CASE("TLS: a trusted certificate for another host name is refused") {
    sim_process sim(sim_args({"--tls-cert", WRONG_NAME_CERT, "--tls-key", WRONG_NAME_KEY}));
    for (const std::string host : {"127.0.0.1", "localhost"}) {
        CAPTURE(host);
        asio::io_context io;
        auto options = options_for("https://" + host + ":" + std::to_string(sim.port()));
        options.ca_file = WRONG_NAME_CERT;
        auto client = gw::make_http_client(io, options);
        auto request = make_request("pay_s", "tls-mismatch");
        const auto r = run(io, client->charge(request));
        CHECK(r.journal.result == outcome::config_error);
        CHECK_FALSE(r.journal.request_written);
        CHECK(r.journal.message.find("certificate verification failed") != std::string::npos);
    }
}

TEST_CASE("a keep-alive connection the server closed is not reused for a charge") {
    session s({"--idle-timeout", "1"});
    CHECK(s.charge("pay_t", "idle-1").journal.result == outcome::paid);
    std::this_thread::sleep_for(1500ms);  // the simulator drops the idle connection
    const auto r = s.charge("pay_t", "idle-2");
    CHECK(r.journal.result == outcome::paid);  // not "unknown" from a dead connection
    CHECK(s.find_all("idle-1").verdict == outcome::paid);
}

TEST_CASE("secrets a server echoes back are scrubbed from the exchange") {
    // getToken is refused with a body that repeats the credentials it was sent.
    sim_support::scripted_server refusing([](const std::string& raw) {
        return sim_support::scripted_server::reply{401, raw.substr(raw.find("\r\n\r\n") + 4)};
    });
    asio::io_context io;
    auto client = gw::make_http_client(io, options_for(refusing.http_url()));
    auto request = make_request("pay_u", "echo-1");
    const auto refused = run(io, client->charge(request));
    CHECK(refused.journal.result == outcome::config_error);
    CHECK_FALSE(refused.journal.request_written);
    CHECK(refused.journal.raw.find("[redacted]") != std::string::npos);
    check_no_secrets(refused.journal);
    REQUIRE(refusing.requests().size() == 1);
    CHECK(refusing.requests()[0].find(imp_secret) != std::string::npos);  // it was sent

    // A charge answered 502 with a body that repeats the Authorization header.
    sim_support::scripted_server echoing([](const std::string& raw) {
        if (raw.rfind("POST /users/getToken", 0) == 0)
            return sim_support::scripted_server::reply{
                200, R"({"code":0,"message":null,"response":{"access_token":"tok_sekrit_123",)"
                     R"("now":1700000000,"expired_at":1700001800}})"};
        return sim_support::scripted_server::reply{502, raw};
    });
    asio::io_context io2;
    auto client2 = gw::make_http_client(io2, options_for(echoing.http_url()));
    const auto echoed = run(io2, client2->charge(request));
    CHECK(echoed.journal.result == outcome::unknown);
    CHECK(echoed.journal.http_status == 502);
    CHECK(echoed.journal.raw.find("Bearer [redacted]") != std::string::npos);
    CHECK(echoed.journal.raw.find("tok_sekrit_123") == std::string::npos);
    check_no_secrets(echoed.journal);

    // A decline whose fail_reason (and every other field) repeats the secret and the token:
    // nothing the gateway returns holds them, not only the journal.
    sim_support::scripted_server declining([](const std::string& raw) {
        if (raw.rfind("POST /users/getToken", 0) == 0)
            return sim_support::scripted_server::reply{
                200, R"({"code":0,"message":null,"response":{"access_token":"tok_sekrit_123",)"
                     R"("now":1700000000,"expired_at":1700001800}})"};
        const std::string echo = "tok_sekrit_123 " + std::string{imp_secret};
        return sim_support::scripted_server::reply{
            200, R"({"code":0,"message":null,"response":{"status":"failed","amount":9900,)"
                 R"("imp_uid":"imp_1","merchant_uid":"echo-1","customer_uid":"pay_u",)"
                 R"("currency":"KRW","fail_reason":"Authorization: Bearer )" +
                     echo + R"(","pg_tid":")" + echo + R"(","name":")" + echo + R"("}})"};
    });
    asio::io_context io3;
    auto client3 = gw::make_http_client(io3, options_for(declining.http_url()));
    const auto declined = run(io3, client3->charge(request));
    REQUIRE(declined.journal.result == outcome::declined);
    REQUIRE(declined.answer);
    for (const auto* field :
         {&declined.answer->fail_reason, &declined.answer->pg_tid, &declined.answer->name}) {
        CHECK(field->find("tok_sekrit_123") == std::string::npos);
        CHECK(field->find(imp_secret) == std::string::npos);
    }
    CHECK(declined.answer->fail_reason.find("[redacted]") != std::string::npos);
    check_no_secrets(declined.journal);
}

TEST_CASE("an access token that could inject a header is a configuration error") {
    for (const std::string token : {"tok\\r\\nX-Injected: 1", "tok en", "tok\\u0000"}) {
        CAPTURE(token);
        sim_support::scripted_server injecting([token](const std::string& raw) {
            if (raw.rfind("POST /users/getToken", 0) == 0)
                return sim_support::scripted_server::reply{
                    200, R"({"code":0,"message":null,"response":{"access_token":")" + token +
                             R"(","now":1700000000,"expired_at":1700001800}})"};
            return sim_support::scripted_server::reply{500, "should not be reached"};
        });
        asio::io_context io;
        auto client = gw::make_http_client(io, options_for(injecting.http_url()));
        auto request = make_request("pay_v", "inject-1");
        const auto r = run(io, client->charge(request));
        CHECK(r.journal.result == outcome::config_error);
        CHECK_FALSE(r.journal.request_written);
        for (const auto& seen : injecting.requests())
            CHECK(seen.find("X-Injected") == std::string::npos);
        CHECK(injecting.requests().size() == 1);  // only getToken: the charge never left
    }
}
