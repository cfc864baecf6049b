#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "daemon/config.hpp"
#include "support.hpp"

using billingd::daemon::config;
using billingd::daemon::config_error;
using billingd::daemon::load_config;
using billingd::daemon::parse_config_text;
using billingd::test::fake_environment;
using billingd::test::temp_dir;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view full_file = R"(
database = "/tmp/billingd-test.db"
[portone]
base_url = "http://127.0.0.1:8089"
connect_timeout_ms = 2000
charge_timeout_ms = 30000
lookup_timeout_ms = 5000
max_response_bytes = 65536
max_in_flight = 4
max_requests_per_second = 2.5
ca_file = ""
[billing]
time_zone = "America/New_York"
charge_time = "09:30"
merchant_uid_prefix = "shop_1"
max_catch_up_periods = 3
quiet_hours = "23:50-00:10"
batch_size = 64
[retry]
transient_base_seconds = 1
transient_cap_seconds = 60
transient_max_tries = 3
transient_pass_delay_seconds = 120
unknown_delays_seconds = [5, 50]
unknown_then_every_seconds = 600
unknown_give_up_seconds = 7200
in_progress_margin_seconds = 10
max_refusals = 7
refusal_base_seconds = 30
refusal_max_seconds = 900
dunning_days = [2, 4]
dunning_exhausted = "cancel"
[guardrails]
max_amount_per_charge = 1000000
max_charges_per_pass = 50
[breaker]
halt_probe_seconds = 120
[log]
level = "debug"
)";

config parse(std::string_view text) {
    return parse_config_text(text, "test.toml");
}

std::string error_of(std::string_view text) {
    try {
        parse(text);
    } catch (const config_error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("a full configuration file sets every value") {
    const config c = parse(full_file);
    CHECK(c.database == "/tmp/billingd-test.db");
    CHECK(c.portone.base_url == "http://127.0.0.1:8089");
    CHECK(c.portone.connect_timeout == 2000ms);
    CHECK(c.portone.charge_timeout == 30000ms);
    CHECK(c.portone.lookup_timeout == 5000ms);
    CHECK(c.portone.max_response_bytes == 65536);
    CHECK(c.portone.max_in_flight == 4);
    CHECK(c.portone.max_requests_per_second == doctest::Approx(2.5));
    CHECK(c.portone.ca_file.empty());
    CHECK(c.time_zone == "America/New_York");
    CHECK(c.charge_time.since_midnight == 9h + 30min);
    CHECK(c.engine.merchant_uid_prefix == "shop_1");
    CHECK(c.engine.max_catch_up_periods == 3);
    CHECK(c.engine.quiet.start.since_midnight == 23h + 50min);
    CHECK(c.engine.quiet.end.since_midnight == 10min);
    CHECK(c.engine.quiet_zone == billingd::calendar::find_zone("America/New_York"));
    CHECK(c.engine.batch_size == 64);
    CHECK(c.engine.max_in_flight == 4);
    CHECK(c.engine.transient.base == 1s);
    CHECK(c.engine.transient.cap == 60s);
    CHECK(c.engine.transient.max_tries == 3);
    CHECK(c.engine.transient.pass_delay == 120s);
    CHECK(c.engine.unknown.first_delays == std::vector<std::chrono::seconds>{5s, 50s});
    CHECK(c.engine.unknown.then_every == 600s);
    CHECK(c.engine.unknown.give_up_after == 7200s);
    CHECK(c.engine.dunning.retry_after ==
          std::vector<std::chrono::days>{std::chrono::days{2}, std::chrono::days{4}});
    CHECK(c.engine.dunning.when_exhausted == billingd::domain::dunning_exhausted_action::cancel);
    CHECK(c.engine.max_amount_per_charge == 1000000);
    CHECK(c.engine.max_charges_per_pass == 50);
    CHECK_FALSE(c.engine.settle_unknown_immediately);
    CHECK(c.engine.max_refusals == 7);
    CHECK(c.engine.refusal_base_delay == 30s);
    CHECK(c.engine.refusal_max_delay == 900s);
    CHECK(c.engine.halt_probe_after == 120s);
    // Trust floor: pacing 4/2.5 s + 1, two getTokens of 2 + 5 s, the first send 2 + 30 s, the
    // resend 2 + 60 s (PortOne's own bound), 2 s rounding, margin 10 s.
    CHECK(c.engine.in_progress_floor == 2s + 14s + 32s + 62s + 2s + 10s);
    CHECK(c.log_level == "debug");
}

TEST_CASE("an empty file gives the documented defaults") {
    const config c = parse("");
    const billingd::domain::unknown_policy unknown_defaults;
    const billingd::domain::dunning_policy dunning_defaults;
    CHECK(c.database == "/var/lib/billingd/billingd.db");
    CHECK(c.portone.base_url == "https://api.iamport.kr");
    CHECK(c.portone.connect_timeout == 10s);
    CHECK(c.portone.charge_timeout == 60s);
    CHECK(c.portone.lookup_timeout == 15s);
    CHECK(c.portone.max_response_bytes == 1048576);
    CHECK(c.portone.max_in_flight == 16);
    CHECK(c.portone.max_requests_per_second == 0);
    CHECK(c.time_zone == "Asia/Seoul");
    CHECK(c.charge_time.since_midnight == 10h);
    CHECK(c.engine.merchant_uid_prefix.empty());
    CHECK(c.engine.max_catch_up_periods == 1);
    CHECK(c.engine.quiet.empty());
    CHECK(c.engine.quiet_zone == billingd::calendar::find_zone("Asia/Seoul"));
    CHECK(c.engine.batch_size == 256);
    CHECK(c.engine.transient.base == 2s);
    CHECK(c.engine.transient.cap == 600s);
    CHECK(c.engine.transient.max_tries == 8);
    CHECK(c.engine.transient.pass_delay == 900s);
    CHECK(c.engine.unknown.first_delays == unknown_defaults.first_delays);
    CHECK(c.engine.unknown.then_every == 3600s);
    CHECK(c.engine.unknown.give_up_after == 86400s);
    CHECK(c.engine.dunning.retry_after == dunning_defaults.retry_after);
    CHECK(c.engine.dunning.when_exhausted ==
          billingd::domain::dunning_exhausted_action::mark_unpaid);
    CHECK(c.engine.max_amount_per_charge == 0);
    CHECK(c.engine.max_charges_per_pass == 0);
    CHECK(c.engine.max_refusals == 5);
    CHECK(c.engine.refusal_base_delay == 60s);
    CHECK(c.engine.refusal_max_delay == 3600s);
    CHECK(c.engine.halt_probe_after == 300s);
    // Two getTokens (10 + 15 s), two sends (10 + 60 s), 2 s rounding, margin 30 s.
    CHECK(c.engine.in_progress_floor == 50s + 140s + 2s + 30s);
    CHECK(c.log_level == "info");
    CHECK(c.portone.imp_key.empty());
    CHECK(c.portone.imp_secret.empty());
}

TEST_CASE("the example configuration in etc/ is valid") {
    const char* root = std::getenv("BILLINGD_SOURCE_ROOT");
    REQUIRE(root != nullptr);
    const config c = billingd::daemon::parse_config_file(std::string(root) + "/etc/billingd.toml");
    CHECK(c.portone.base_url == "https://api.iamport.kr");
}

TEST_CASE("invalid configurations are refused with the file, line and key") {
    struct bad_case {
        const char* name;
        const char* text;
        std::vector<const char*> message_has;
    };
    const bad_case cases[] = {
        {"unknown top-level key",
         "databse = \"x.db\"\n",
         {"test.toml:1:1", "unknown key 'databse'"}},
        {"unknown key in a table",
         "[portone]\nmax_inflight = 3\n",
         {"test.toml:2:1", "'portone.max_inflight'", "max_in_flight"}},
        {"unknown table", "[portone]\n[billng]\ntime_zone = \"UTC\"\n", {"unknown key 'billng'"}},
        {"wrong type: string for an integer",
         "[portone]\nmax_in_flight = \"4\"\n",
         {"test.toml:2:17", "'portone.max_in_flight'", "must be an integer, not a string"}},
        {"wrong type: integer for a string", "database = 5\n", {"'database'", "must be a string"}},
        {"wrong type: a table that is a value", "portone = 3\n", {"'portone'", "must be a table"}},
        {"wrong type: array element",
         "[retry]\ndunning_days = [1, \"3\"]\n",
         {"'retry.dunning_days'", "array of integers"}},
        {"out of range",
         "[portone]\nmax_in_flight = 0\n",
         {"test.toml:2", "'portone.max_in_flight'", "between 1 and 1024 (got 0)"}},
        {"negative guardrail",
         "[guardrails]\nmax_amount_per_charge = -1\n",
         {"'guardrails.max_amount_per_charge'"}},
        {"bad zone",
         "[billing]\ntime_zone = \"Asia/Seol\"\n",
         {"test.toml:2", "'billing.time_zone'", "unknown time zone 'Asia/Seol'"}},
        {"bad charge time", "[billing]\ncharge_time = \"25:00\"\n", {"'billing.charge_time'"}},
        {"bad prefix: too long",
         "[billing]\nmerchant_uid_prefix = \"abcdefghijklm\"\n",
         {"'billing.merchant_uid_prefix'"}},
        {"bad prefix: characters",
         "[billing]\nmerchant_uid_prefix = \"shop.1\"\n",
         {"'billing.merchant_uid_prefix'"}},
        {"bad quiet hours", "[billing]\nquiet_hours = \"23:50\"\n", {"'billing.quiet_hours'"}},
        {"empty quiet window",
         "[billing]\nquiet_hours = \"01:00-01:00\"\n",
         {"'billing.quiet_hours'"}},
        {"http:// to a non-loopback host",
         "[portone]\nbase_url = \"http://api.iamport.kr\"\n",
         {"test.toml:2", "'portone.base_url'"}},
        {"not a URL", "[portone]\nbase_url = \"api.iamport.kr\"\n", {"'portone.base_url'"}},
        {"unreadable ca_file",
         "[portone]\nca_file = \"/nonexistent/ca.pem\"\n",
         {"'portone.ca_file'", "cannot read"}},
        {"cap below base",
         "[retry]\ntransient_base_seconds = 10\ntransient_cap_seconds = 5\n",
         {"'retry.transient_cap_seconds'"}},
        {"refusal cap below its base",
         "[retry]\nrefusal_base_seconds = 600\nrefusal_max_seconds = 60\n",
         {"'retry.refusal_max_seconds'"}},
        {"no refusal at all", "[retry]\nmax_refusals = 0\n", {"'retry.max_refusals'"}},
        {"halt probe of zero seconds",
         "[breaker]\nhalt_probe_seconds = 0\n",
         {"'breaker.halt_probe_seconds'"}},
        {"dunning days not increasing",
         "[retry]\ndunning_days = [3, 1]\n",
         {"'retry.dunning_days'", "increasing"}},
        {"bad dunning policy",
         "[retry]\ndunning_exhausted = \"refund\"\n",
         {"'retry.dunning_exhausted'"}},
        {"bad log level", "[log]\nlevel = \"verbose\"\n", {"'log.level'"}},
        {"TOML syntax error", "[portone\n", {"test.toml:1"}},
        {"secret in [portone]",
         "[portone]\nimp_secret = \"s3cr3t-value\"\n",
         {"test.toml:2:1", "'portone.imp_secret'", "CREDENTIALS_DIRECTORY",
          "BILLINGD_PORTONE_IMP_SECRET"}},
        {"key at the top level",
         "imp_key = \"1234567890\"\n",
         {"'imp_key'", "portone_imp_key", "BILLINGD_PORTONE_IMP_KEY"}},
        {"secret in a made-up table",
         "[extra]\nportone_imp_secret = \"s3cr3t-value\"\n",
         {"'extra.portone_imp_secret'", "never read from the configuration file"}},
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        const std::string message = error_of(c.text);
        CAPTURE(message);
        REQUIRE_FALSE(message.empty());
        for (const char* part : c.message_has) CHECK(message.find(part) != std::string::npos);
        CHECK(message.find("s3cr3t-value") == std::string::npos);
        CHECK(message.find("1234567890") == std::string::npos);
    }
}

TEST_CASE("a missing configuration file is a configuration error naming it") {
    CHECK_THROWS_WITH_AS(billingd::daemon::parse_config_file("/nonexistent/billingd.toml"),
                         doctest::Contains("/nonexistent/billingd.toml"), config_error);
}

TEST_CASE("credentials come from the environment in development") {
    temp_dir dir;
    const auto path = dir.write("b.toml", "");
    const config c = load_config(path, fake_environment({
                                           {"BILLINGD_PORTONE_IMP_KEY", "key-from-env\n"},
                                           {"BILLINGD_PORTONE_IMP_SECRET", "secret-from-env"},
                                       }));
    CHECK(c.portone.imp_key == "key-from-env");
    CHECK(c.portone.imp_secret == "secret-from-env");
}

TEST_CASE("credentials from CREDENTIALS_DIRECTORY are preferred over the environment") {
    temp_dir dir;
    const auto path = dir.write("b.toml", "");
    dir.write("portone_imp_key", "key-from-file\n");
    dir.write("portone_imp_secret", "secret-from-file\r\n");
    const config c = load_config(path, fake_environment({
                                           {"CREDENTIALS_DIRECTORY", dir.path()},
                                           {"BILLINGD_PORTONE_IMP_KEY", "key-from-env"},
                                           {"BILLINGD_PORTONE_IMP_SECRET", "secret-from-env"},
                                       }));
    CHECK(c.portone.imp_key == "key-from-file");
    CHECK(c.portone.imp_secret == "secret-from-file");
}

TEST_CASE("missing credentials are a configuration error that says where to put them") {
    temp_dir dir;
    const auto path = dir.write("b.toml", "");
    struct missing_case {
        const char* name;
        std::map<std::string, std::string> env;
        std::vector<const char*> message_has;
    };
    const missing_case cases[] = {
        {"nothing at all", {}, {"portone_imp_key", "LoadCredential", "BILLINGD_PORTONE_IMP_KEY"}},
        {"only the key",
         {{"BILLINGD_PORTONE_IMP_KEY", "key-value-123"}},
         {"portone_imp_secret", "BILLINGD_PORTONE_IMP_SECRET"}},
        {"an empty secret",
         {{"BILLINGD_PORTONE_IMP_KEY", "key-value-123"}, {"BILLINGD_PORTONE_IMP_SECRET", "\n"}},
         {"BILLINGD_PORTONE_IMP_SECRET", "empty"}},
        {"a credentials directory without the files",
         {{"CREDENTIALS_DIRECTORY", dir.path()}},
         {"does not exist", "portone_imp_key"}},
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        std::string message;
        try {
            load_config(path, fake_environment(c.env));
        } catch (const config_error& e) {
            message = e.what();
        }
        CAPTURE(message);
        REQUIRE_FALSE(message.empty());
        for (const char* part : c.message_has) CHECK(message.find(part) != std::string::npos);
        CHECK(message.find("key-value-123") == std::string::npos);
    }
}

TEST_CASE("metrics are off by default and listen on loopback or a unix socket") {
    const config off = parse_config_text("", "t");
    CHECK(off.metrics.listen.empty());
    CHECK(off.reporting_time_zone == "Asia/Seoul");
    const config ny = parse_config_text("[billing]\ntime_zone = \"America/New_York\"\n", "t");
    CHECK(ny.reporting_time_zone == "America/New_York");  // defaults to time_zone
    const config tokyo =
        parse_config_text("[billing]\nreporting_time_zone = \"Asia/Tokyo\"\n", "t");
    CHECK(tokyo.reporting_time_zone == "Asia/Tokyo");
    CHECK_THROWS_WITH_AS(parse_config_text("[billing]\nreporting_time_zone = \"Mars/Base\"\n", "t"),
                         doctest::Contains("billing.reporting_time_zone"), config_error);

    const config v4 = parse_config_text("[metrics]\nlisten = \"127.0.0.1:9464\"\n", "t");
    CHECK(v4.metrics.address == "127.0.0.1");
    CHECK(v4.metrics.port == 9464);
    const config v6 = parse_config_text("[metrics]\nlisten = \"[::1]:9464\"\n", "t");
    CHECK(v6.metrics.address == "::1");
    const config unix_socket =
        parse_config_text("[metrics]\nlisten = \"unix:/run/billingd/metrics.sock\"\n", "t");
    CHECK(unix_socket.metrics.unix_path == "/run/billingd/metrics.sock");
    CHECK_THROWS_WITH_AS(parse_config_text("[metrics]\nlisten = \"10.0.0.5:9464\"\n", "t"),
                         doctest::Contains("allow_non_loopback"), config_error);
    const config exposed = parse_config_text(
        "[metrics]\nlisten = \"10.0.0.5:9464\"\nallow_non_loopback = true\n", "t");
    CHECK(exposed.metrics.address == "10.0.0.5");
    for (const char* bad : {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "host:9464",
                            "unix:relative", "127.0.0.1:94x4"}) {
        CAPTURE(bad);
        CHECK_THROWS_WITH_AS(
            parse_config_text(std::string("[metrics]\nlisten = \"") + bad + "\"\n", "t"),
            doctest::Contains("metrics.listen"), config_error);
    }
    CHECK_THROWS_WITH_AS(parse_config_text("[metrics]\nport = 1\n", "t"),
                         doctest::Contains("unknown key"), config_error);
}
