// billingctl: the operator CLI over billingd's database (and, for two commands, PortOne).
// Parses the command line (CLI11; every parse error exits 64, a number out of range 65), then
// runs the one selected command with a context and maps what it throws to the documented
// exit codes.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "commands.hpp"
#include "daemon/version.hpp"
#include "input.hpp"
#include "operations/operation.hpp"
#include "output.hpp"

namespace {

using namespace billingd::ctl;

constexpr const char* description =
    "billingctl: operator CLI for billingd, the PortOne subscription billing daemon. It reads "
    "and changes the same SQLite database while billingd runs (WAL; every change is one BEGIN "
    "IMMEDIATE transaction and writes an event row naming the --actor). Read commands print "
    "aligned tables with amounts in their currency and times in the subscription's time "
    "zone, or JSON with --json (keys are the column names of the schema; instants are UNIX "
    "seconds, absent values null), or CSV with --csv. Every list is cut at --limit rows "
    "(default 1000) and says so on stderr with the --after value of the next page.";

constexpr const char* footer =
    "Global options may be given before or after the command.\n"
    "The database is `database` from --config, or --database FILE (enough for every command\n"
    "except `customer verify` and `charge resolve --check`, which call PortOne with the\n"
    "credentials from $CREDENTIALS_DIRECTORY/portone_imp_key|portone_imp_secret or\n"
    "BILLINGD_PORTONE_IMP_KEY/BILLINGD_PORTONE_IMP_SECRET).\n\n"
    "Numbers (amounts, counts, ids) are read in base 10 only: digits 0-9, no '+', no leading\n"
    "zero (010000 is refused, not read as octal 4096 or guessed to be 10000), no 0x/0o/0b\n"
    "prefix, nothing clamped. Ids are 1 to 9007199254740992 (2^53); each option's range is\n"
    "in its help. Text (--customer-uid, --name, --buyer-*, --actor, --reason, --imp-uid) must\n"
    "be valid UTF-8 without control characters (CR, LF, TAB, ESC, ...).\n\n"
    "A database this user may not write (a read-only file or directory, a read-only copy) is\n"
    "opened read-only by the read commands (list, show, charges, attempts, events, due,\n"
    "parked, in-doubt, info), without migrating it; a command that changes it exits 78.\n\n"
    "Exit codes: 0 ok, 64 bad command line (unknown command or option, missing argument, a\n"
    "number that is not plain base 10), 65 bad data (unknown id, invalid value: a number out\n"
    "of its range, text with control characters or invalid UTF-8, an anchor far in the past;\n"
    "illegal transition), 69 PortOne unavailable, 70 database or internal error, 73 a\n"
    "metrics --output file that cannot be written, 78 bad or\n"
    "missing configuration or database, a database this user may not write for a command\n"
    "that changes it, or one whose schema this billingctl cannot read without migrating it.\n\n"
    "Examples:\n"
    "  billingctl --database /var/lib/billingd/billingd.db subscription list\n"
    "  billingctl subscription add --customer-uid cust_42 --amount 9900 --name \"Pro plan\"\n"
    "  billingctl --json parked\n"
    "  billingctl --csv subscription list --limit 500 --after 1000 > page.csv\n"
    "Run `billingctl COMMAND --help` (e.g. `billingctl subscription add --help`) for details.";

// What an operation's refusal exits with (`billingctl --help`).
int exit_code_of(const billingd::operations::error& e) {
    using billingd::operations::error_kind;
    switch (e.kind()) {
        case error_kind::not_found:
        case error_kind::invalid:
        case error_kind::conflict:
            return exit_code::data;
        case error_kind::unavailable:
            return exit_code::unavailable;
    }
    return exit_code::software;
}

int run(int argc, char** argv) {
    CLI::App app{description, "billingctl"};
    app.footer(footer);
    app.fallthrough();  // global options after the subcommand too
    app.require_subcommand(1);
    global_options g;
    auto* config = app.add_option("--config", g.config_path, "configuration file (TOML)")
                       ->capture_default_str();
    app.add_option("--database", g.database,
                   "SQLite database; overrides the configuration's `database`");
    auto* json = app.add_flag("--json", g.json, "print machine-readable JSON instead of tables");
    app.add_flag("--csv", g.csv,
                 "print CSV (RFC 4180: a header row, CRLF) instead of tables, for spreadsheets")
        ->excludes(json);
    app.add_option("--actor", g.actor,
                   "who is acting, recorded in event rows (1-100 characters, no control "
                   "characters); default: $SUDO_USER, else the login name")
        ->check([](const std::string& v) { return v.empty() ? "must not be empty" : ""; });
    app.set_version_flag("--version", "billingctl " + std::string{billingd::daemon::version()},
                         "print the version and exit");

    action selected;
    add_subscription_commands(app, selected);
    add_customer_commands(app, selected);
    add_read_commands(app, selected);
    add_charge_commands(app, selected);
    add_change_commands(app, selected);
    add_metrics_command(app, selected);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? exit_code::ok : exit_code::usage;
    } catch (const failure& e) {  // a number out of its option's range (input.hpp)
        fmt::print(stderr, "billingctl: {}\n", e.what());
        return e.code();
    }
    g.config_given = config->count() > 0;
    if (g.actor.empty()) g.actor = default_actor();
    set_csv_output(g.csv);

    context ctx{g, selected.access};
    try {
        check_text("--actor", g.actor, 1, 100);
        selected.run(ctx);
        return exit_code::ok;
    } catch (const failure& e) {
        fmt::print(stderr, "billingctl: {}\n", e.what());
        return e.code();
    } catch (const billingd::operations::error& e) {
        fmt::print(stderr, "billingctl: {}\n", e.what());
        return exit_code_of(e);
    } catch (const billingd::daemon::config_error& e) {
        fmt::print(stderr, "billingctl: configuration error: {}\n", e.what());
        return exit_code::config;
    } catch (const billingd::storage::constraint_error& e) {
        fmt::print(stderr, "billingctl: the database refused the change: {}\n", e.what());
        return exit_code::data;
    } catch (const billingd::storage::error& e) {
        fmt::print(stderr, "billingctl: database error: {}\n", e.what());
        return exit_code::software;
    }
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "billingctl: internal error: %s\n", e.what());
    } catch (...) {
        std::fprintf(stderr, "billingctl: internal error\n");
    }
    return exit_code::software;
}
