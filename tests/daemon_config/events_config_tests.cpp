// [events]: the delivery channels, their bounds and the webhook signing secrets.
#include <doctest/doctest.h>

#include "daemon/config.hpp"
#include "support.hpp"

using billingd::daemon::config;
using billingd::daemon::config_error;
using billingd::daemon::load_config;
using billingd::daemon::parse_config_text;
using billingd::test::fake_environment;
using billingd::test::temp_dir;

namespace {

// whsec_ + base64 of 32 bytes, and of another 32.
constexpr const char* current = "whsec_YmlsbGluZ2QtdGVzdC1zZWNyZXQtMDEyMzQ1Njc4OWFi";
constexpr const char* previous = "whsec_YmlsbGluZ2Qtb2xkLXNlY3JldC0wMTIzNDU2Nzg5YWJj";

std::map<std::string, std::string> portone() {
    return {{"BILLINGD_PORTONE_IMP_KEY", "k"}, {"BILLINGD_PORTONE_IMP_SECRET", "s"}};
}

}  // namespace

TEST_CASE("without [events] nothing is delivered and notices have their defaults") {
    const config c = parse_config_text("", "t.toml");
    CHECK_FALSE(c.events.any_channel());
    CHECK(c.events.notice_days.year == 7);
    CHECK(c.events.notice_days.month == 3);
    CHECK(c.events.notice_days.week == 1);
    CHECK(c.events.notice_days.day == 0);
    CHECK(c.events.retry.horizon == std::chrono::hours{72});
    CHECK(c.events.max_in_flight == 4);
}

TEST_CASE("[events] sets the channels, bounds, retry policy and notice days") {
    const config c = parse_config_text(R"([events]
webhook_url = "https://app.example.com/billing/events"
exec = ["/bin/true", "--flag"]
max_in_flight = 8
connect_timeout_ms = 1000
webhook_timeout_ms = 2000
exec_timeout_ms = 3000
retry_base_seconds = 2
retry_max_seconds = 60
retry_horizon_seconds = 600
notice_days_month = 5
notice_days_day = 1
)",
                                       "t.toml");
    CHECK(c.events.webhook_url == "https://app.example.com/billing/events");
    CHECK(c.events.exec_command == std::vector<std::string>{"/bin/true", "--flag"});
    CHECK(c.events.max_in_flight == 8);
    CHECK(c.events.connect_timeout == std::chrono::milliseconds{1000});
    CHECK(c.events.webhook_timeout == std::chrono::milliseconds{2000});
    CHECK(c.events.exec_timeout == std::chrono::milliseconds{3000});
    CHECK(c.events.retry.base == std::chrono::seconds{2});
    CHECK(c.events.retry.cap == std::chrono::seconds{60});
    CHECK(c.events.retry.horizon == std::chrono::seconds{600});
    CHECK(c.events.notice_days.month == 5);
    CHECK(c.events.notice_days.day == 1);
}

TEST_CASE("bad [events] values are refused naming the key") {
    const std::pair<const char*, const char*> cases[] = {
        {"[events]\nwebhook_url = \"http://app.example.com/hook\"\n", "https"},
        {"[events]\nwebhook_url = \"ftp://x\"\n", "webhook_url"},
        {"[events]\nexec = [\"notify.sh\"]\n", "absolute path"},
        {"[events]\nexec = [\"/nonexistent/notify\"]\n", "cannot find"},
        {"[events]\nexec = \"/bin/true\"\n", "array"},
        {"[events]\nretry_base_seconds = 10\nretry_max_seconds = 5\n", "retry_max_seconds"},
        {"[events]\nmax_in_flight = 0\n", "max_in_flight"},
        {"[events]\nwebhok_url = \"https://x\"\n", "unknown key"},
    };
    for (const auto& [text, expected] : cases) {
        CAPTURE(text);
        CHECK_THROWS_WITH_AS(parse_config_text(text, "t.toml"), doctest::Contains(expected),
                             config_error);
    }
}

TEST_CASE("webhook secrets come from the credentials or the environment, both during a rotation") {
    temp_dir dir;
    const auto path =
        dir.write("b.toml", "[events]\nwebhook_url = \"https://app.example.com/h\"\n");
    auto env = portone();
    env["BILLINGD_WEBHOOK_SECRET"] = current;
    CHECK(load_config(path, fake_environment(env)).events.webhook_keys.size() == 1);

    dir.write("webhook_secret", std::string(current) + "\n");
    dir.write("webhook_secret_previous", previous);
    auto with_dir = portone();
    with_dir["CREDENTIALS_DIRECTORY"] = dir.path();
    const auto keys = load_config(path, fake_environment(with_dir)).events.webhook_keys;
    REQUIRE(keys.size() == 2);
    CHECK(keys[0] == "billingd-test-secret-0123456789ab");
    CHECK(keys[1] == "billingd-old-secret-0123456789abc");

    // No webhook: no secret needed.
    const auto plain = dir.write("p.toml", "");
    CHECK(load_config(plain, fake_environment(portone())).events.webhook_keys.empty());
}

TEST_CASE("a missing or malformed webhook secret is a configuration error that hides it") {
    temp_dir dir;
    const auto path = dir.write("b.toml", "[events]\nwebhook_url = \"http://127.0.0.1:9/h\"\n");
    CHECK_THROWS_WITH_AS(load_config(path, fake_environment(portone())),
                         doctest::Contains("webhook_secret"), config_error);
    for (const char* bad : {"not-a-whsec-secret-value", "whsec_!!!!notbase64", "whsec_c2hvcnQ="}) {
        auto env = portone();
        env["BILLINGD_WEBHOOK_SECRET"] = bad;
        try {
            load_config(path, fake_environment(env));
            FAIL("accepted " << bad);
        } catch (const config_error& e) {
            CHECK(std::string(e.what()).find(bad) == std::string::npos);
            CHECK(std::string(e.what()).find("whsec_") != std::string::npos);
        }
    }
    auto env = portone();
    env["BILLINGD_WEBHOOK_SECRET"] = current;
    env["BILLINGD_WEBHOOK_SECRET_PREVIOUS"] = "whsec_short";
    CHECK_THROWS_AS(load_config(path, fake_environment(env)), config_error);
}
