// billingctl's commands. Each add_*_commands function registers its subcommands on the CLI11
// app; parsing selects exactly one `action`, which main() runs with a context afterwards.
// Actions throw ctl::failure (with the exit code) for anything the operator must fix.
// Integer options and positionals are added with add_integer (input.hpp), never bound to an
// integer directly.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "context.hpp"
#include "input.hpp"
#include "metrics/database_gauges.hpp"

namespace billingd::ctl {

// The selected command: how it uses the database, and what it does.
struct action {
    db_access access = db_access::read;
    std::function<void(context&)> run;
};

void add_subscription_commands(CLI::App& app, action& selected);
void add_subscription_add_command(CLI::App& subscription, action& selected);
void add_read_commands(CLI::App& app, action& selected);
void add_charge_commands(CLI::App& app, action& selected);
// `subscription update|consent|prices`, `charge rekey|refund|refunds` (change_cmds.cpp); after
// add_subscription_commands and add_charge_commands.
void add_change_commands(CLI::App& app, action& selected);
void add_customer_commands(CLI::App& app, action& selected);
// `events pending|dead|redeliver` under the `events` command (events_cmds.cpp).
void add_delivery_commands(CLI::App* events, action& selected);
void add_metrics_command(CLI::App& app, action& selected);

// Gauges that other parts add to `billingctl metrics` (the outbox's deliveries).
std::vector<metrics::gauge_provider> ctl_gauge_providers();

// Selects `run(context, *options)` with `access` to the database when `sub` is the parsed
// subcommand. `check`, if given, runs at parse time and may throw CLI errors (exit 64).
template <typename Options>
void on_parsed(CLI::App* sub, action& selected, db_access access, std::shared_ptr<Options> options,
               void (*run)(context&, const Options&),
               std::function<void(Options&)> check = nullptr) {
    sub->callback([&selected, access, options, run, check] {
        if (check) check(*options);
        selected = {access, [options, run](context& c) { run(c, *options); }};
    });
}

inline std::int64_t to_unix(std::chrono::sys_seconds t) {
    return t.time_since_epoch().count();
}
inline std::chrono::sys_seconds from_unix(std::int64_t t) {
    return std::chrono::sys_seconds{std::chrono::seconds{t}};
}

}  // namespace billingd::ctl
