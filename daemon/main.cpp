// billingd: the composition root. Parses the command line, loads the configuration and runs
// either one pass (--once) or the daemon. Only this directory picks concrete implementations.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>

#include "calendar/calendar.hpp"
#include "daemon/config.hpp"
#include "daemon/crash_points.hpp"
#include "daemon/lock_file.hpp"
#include "daemon/logging.hpp"
#include "daemon/open_files.hpp"
#include "daemon/runtime.hpp"
#include "storage/sqlite.hpp"

namespace billingd::daemon {

namespace {

struct command_line {
    std::string config_path;
    bool once = false;
    bool check_config = false;
    bool show_version = false;
    std::string as_of_text;
    bool test_db = false;
};

// Returns the exit code when parsing ends the run (help, errors), else nullopt.
std::optional<int> parse_command_line(int argc, char** argv, command_line& cli) {
    CLI::App app{"billingd: subscription billing daemon for PortOne"};
    app.add_option("-c,--config", cli.config_path, "configuration file (TOML)");
    auto* once = app.add_flag("--once", cli.once,
                              "charge everything due now, wait for every outcome, print a "
                              "summary and exit (1 when something needs attention)");
    app.add_option("--as-of", cli.as_of_text,
                   "with --once: run as if it were this UTC time "
                   "(YYYY-MM-DDTHH:MM:SSZ, 'YYYY-MM-DD HH:MM:SS' or YYYY-MM-DD)")
        ->needs(once);
    app.add_flag("--i-know-this-is-a-test-db", cli.test_db,
                 "with --as-of: run even though this database has run on the real clock "
                 "(simulated time marks real periods skipped and charges them early)")
        ->needs("--as-of");
    app.add_flag("--check-config", cli.check_config,
                 "validate the configuration and credentials, print ok and exit")
        ->excludes(once);
    app.add_flag("--version", cli.show_version, "print the version and exit");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);  // prints help or the error
        return code == 0 ? exit_code::ok : exit_code::usage;
    }
    if (cli.show_version) {
        fmt::print("billingd {}\n", version());
        return exit_code::ok;
    }
    if (cli.config_path.empty()) {
        fmt::print(stderr,
                   "billingd: --config FILE is required\nRun with --help for more "
                   "information.\n");
        return exit_code::usage;
    }
    return std::nullopt;
}

int run(int argc, char** argv) {
    command_line cli;
    if (auto code = parse_command_line(argc, argv, cli)) return *code;

    std::optional<std::chrono::sys_seconds> as_of;
    if (!cli.as_of_text.empty()) {
        as_of = calendar::parse_utc(cli.as_of_text);
        if (!as_of) {
            fmt::print(stderr,
                       "billingd: --as-of: '{}' is not a UTC time (YYYY-MM-DDTHH:MM:SSZ, "
                       "'YYYY-MM-DD HH:MM:SS' or YYYY-MM-DD)\n",
                       cli.as_of_text);
            return exit_code::usage;
        }
    }

    config cfg;
    try {
        cfg = load_config(cli.config_path);
        install_crash_points(cfg);
    } catch (const config_error& e) {
        fmt::print(stderr, "billingd: configuration error: {}\n", e.what());
        return exit_code::config;
    }
    if (cli.check_config) {
        fmt::print("{}: ok\n", cli.config_path);
        return exit_code::ok;
    }

    setup_logging(cfg.log_level);
    try {
        const auto open_files = ensure_open_files(cfg);
        spdlog::debug("open-files limit {} ({} needed)", open_files, open_files_needed(cfg));
        return cli.once ? run_once(cfg, as_of, cli.test_db) : run_daemon(cfg);
    } catch (const usage_error& e) {
        spdlog::error("{}", e.what());
        return exit_code::usage;
    } catch (const database_locked& e) {
        spdlog::error("{}", e.what());
        return exit_code::locked;
    } catch (const cannot_create& e) {
        spdlog::error("{}", e.what());
        return exit_code::cannot_create;
    } catch (const storage::open_error& e) {
        spdlog::error("{}", e.what());
        return exit_code::cannot_create;
    } catch (const config_error& e) {
        spdlog::error("configuration error: {}", e.what());
        return exit_code::config;
    } catch (const storage::error& e) {
        spdlog::critical("database error: {}", e.what());
        return exit_code::software;
    } catch (const std::exception& e) {
        spdlog::critical("internal error: {}", e.what());
        return exit_code::software;
    }
}

}  // namespace
}  // namespace billingd::daemon

int main(int argc, char** argv) {
    try {
        return billingd::daemon::run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "billingd: internal error: %s\n", e.what());
    } catch (...) {
        std::fprintf(stderr, "billingd: internal error\n");
    }
    return billingd::daemon::exit_code::software;
}
