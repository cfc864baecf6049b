// Runs the built billingd binary: exit codes for bad usage and bad configuration.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <string>

#include "support.hpp"

using billingd::test::temp_dir;

namespace {

std::string binary() {
    const char* path = std::getenv("BILLINGD_BINARY");
    REQUIRE_MESSAGE(path != nullptr, "BILLINGD_BINARY must name the built billingd");
    return path;
}

// Exit status of `env_prefix billingd args`, output discarded.
int run(const std::string& args, const std::string& env_prefix = "") {
    const std::string command = env_prefix + " '" + binary() + "' " + args + " >/dev/null 2>&1";
    const int status = std::system(command.c_str());
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status);
}

const std::string no_secrets =
    "env -u BILLINGD_PORTONE_IMP_KEY -u BILLINGD_PORTONE_IMP_SECRET -u CREDENTIALS_DIRECTORY";
const std::string with_secrets = no_secrets +
                                 " BILLINGD_PORTONE_IMP_KEY=test-key"
                                 " BILLINGD_PORTONE_IMP_SECRET=test-secret";

}  // namespace

TEST_CASE("billingd exits 64 on bad command-line usage") {
    temp_dir dir;
    const auto cfg = dir.write("ok.toml", "database = \"" + dir.path() + "/b.db\"\n");
    CHECK(run("") == 64);                                         // no --config
    CHECK(run("--no-such-flag --config " + cfg) == 64);           // unknown flag
    CHECK(run("--config " + cfg + " --as-of 2024-01-01") == 64);  // --as-of without --once
    CHECK(run("--config " + cfg + " --once --as-of yesterday") == 64);
    CHECK(run("--config") == 64);  // missing value
}

TEST_CASE("billingd exits 78 on a bad configuration and 0 when --check-config passes") {
    temp_dir dir;
    const auto good = dir.write("ok.toml", "database = \"" + dir.path() + "/b.db\"\n");
    const auto typo = dir.write("typo.toml", "[portone]\nbase_ulr = \"https://x\"\n");
    const auto secret = dir.write("secret.toml", "[portone]\nimp_secret = \"abc\"\n");
    CHECK(run("--check-config --config " + good, with_secrets) == 0);
    CHECK(run("--check-config --config " + typo, with_secrets) == 78);
    CHECK(run("--check-config --config " + secret, with_secrets) == 78);
    CHECK(run("--check-config --config " + dir.path() + "/missing.toml", with_secrets) == 78);
    CHECK(run("--check-config --config " + good, no_secrets) == 78);  // missing credentials
    CHECK(run("--once --config " + typo, with_secrets) == 78);
}

TEST_CASE("billingd --version exits 0 without a configuration") {
    CHECK(run("--version") == 0);
}

TEST_CASE("billingd --once exits 0 on an empty database and 1 when a charge is parked") {
    temp_dir dir;
    // Nothing is due, so nothing is sent: the port need not be listening.
    const auto cfg = dir.write("ok.toml", "database = \"" + dir.path() +
                                              "/b.db\"\n[portone]\nbase_url = "
                                              "\"http://127.0.0.1:9\"\n");
    CHECK(run("--once --config " + cfg, with_secrets) == 0);
    const std::string park =
        "sqlite3 '" + dir.path() +
        "/b.db' \"INSERT INTO subscriptions (customer_uid, amount, order_name, interval_unit, "
        "anchor_date, needs_attention) VALUES ('c1', 100, 'Plan', 'month', '2024-01-01', "
        "'test: fixed by hand')\"";
    REQUIRE(std::system(park.c_str()) == 0);
    // The database ran on the real clock above: a test clock is refused unless confirmed.
    CHECK(run("--once --config " + cfg + " --as-of 2024-01-01", with_secrets) == 64);
    CHECK(run("--once --config " + cfg + " --as-of 2024-01-01 --i-know-this-is-a-test-db",
              with_secrets) == 1);
}

TEST_CASE("a second billingd on the same database refuses to start") {
    temp_dir dir;
    const auto cfg = dir.write("ok.toml", "database = \"" + dir.path() +
                                              "/b.db\"\n[portone]\nbase_url = "
                                              "\"http://127.0.0.1:9\"\n");
    const std::string lock = dir.path() + "/b.db.lock";
    // flock(1) holds the lock the way a running billingd does.
    CHECK(run("--once --config " + cfg, with_secrets + " flock -n '" + lock + "'") == 75);
}
