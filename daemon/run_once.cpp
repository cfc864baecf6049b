// --once: charge everything due at the (possibly simulated) time, settle what can be settled
// now, print a summary, exit 0 when nothing needs attention and 1 otherwise.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>

#include "calendar/calendar.hpp"
#include "daemon/lock_file.hpp"
#include "daemon/logging.hpp"
#include "daemon/observability.hpp"
#include "daemon/outbox_service.hpp"
#include "daemon/report.hpp"
#include "daemon/runtime.hpp"
#include "daemon/services.hpp"
#include "scheduler/clock.hpp"
#include "scheduler/engine.hpp"

namespace billingd::daemon {

namespace asio = boost::asio;

namespace {

// Charging first; then the notices and deliveries the pass made possible (pointers: the
// objects outlive the coroutine, see STYLE.md on coroutine parameters).
asio::awaitable<scheduler::pass_summary> charge_then_deliver(scheduler::engine* engine,
                                                             outbox_service* outbox) {
    auto summary = co_await engine->run_until_idle();
    co_await outbox->run_once();
    co_return summary;
}

}  // namespace

int run_once(const config& cfg, std::optional<std::chrono::sys_seconds> as_of,
             bool test_db_confirmed) {
    const database_lock lock(cfg.database);
    std::unique_ptr<scheduler::clock> clock;
    if (as_of) {
        clock = std::make_unique<scheduler::manual_clock>(*as_of);
    } else {
        clock = std::make_unique<scheduler::system_clock>();
    }
    spdlog::info("billingd {} --once database={} base_url={} as_of={}", version(), cfg.database,
                 cfg.portone.base_url, calendar::format_utc(clock->now()));

    auto store = open_store(cfg);
    if (!as_of) {
        store->mark_live(clock->now().time_since_epoch().count());
    } else if (const auto live = store->install().live_since; live && !test_db_confirmed) {
        throw usage_error(fmt::format(
            "--as-of refused: {} has run on the real clock since {} (simulated time would mark "
            "real periods skipped and charge them early); use a copy, or add "
            "--i-know-this-is-a-test-db",
            cfg.database,
            calendar::format_utc(std::chrono::sys_seconds{std::chrono::seconds{*live}})));
    }
    asio::io_context io;
    // No endpoint under --once; the reporting zone and the revenue roll-up are kept up.
    observability obs(cfg);
    obs.attach(*store, clock->now().time_since_epoch().count());
    auto gateway = open_gateway(io, cfg);
    scheduler::engine_config engine_cfg = cfg.engine;
    engine_cfg.settle_unknown_immediately = true;
    scheduler::engine engine(*store, *gateway, *clock, engine_cfg);
    engine.on_decision(log_decision);
    outbox_service outbox(io, *store, *clock, cfg);

    if (const int recovered = engine.recover(); recovered > 0) {
        spdlog::warn("recovered charges_left_on_the_wire={} (reconciled before any resend)",
                     recovered);
    }

    // SIGINT/SIGTERM: stop starting requests; those on the wire finish and are journaled.
    asio::signal_set signals(io, SIGINT, SIGTERM);
    // SIGHUP (a closed terminal) must not kill a pass mid-way: ignored, like in the daemon.
    asio::signal_set hangup(io, SIGHUP);
    std::function<void()> ignore_hangups = [&] {
        hangup.async_wait([&](const boost::system::error_code& ec, int) {
            if (ec) return;
            spdlog::warn("signal=SIGHUP ignored");
            ignore_hangups();
        });
    };
    ignore_hangups();
    signals.async_wait([&engine, &outbox](const boost::system::error_code& ec, int signo) {
        if (ec) return;
        spdlog::warn("signal={} stopping after the requests on the wire", signo);
        engine.stop();
        outbox.stop();
    });

    std::optional<scheduler::pass_summary> result;
    std::exception_ptr failure;
    asio::co_spawn(io, charge_then_deliver(&engine, &outbox),
                   [&](std::exception_ptr e, scheduler::pass_summary summary) {
                       if (e) {
                           failure = e;
                       } else {
                           result = summary;
                       }
                       signals.cancel();
                       hangup.cancel();
                       io.stop();  // idle keep-alive connections must not keep us waiting
                   });
    io.run();
    if (failure) std::rethrow_exception(failure);
    if (!result) throw std::runtime_error("the charging pass did not complete");

    log_pass(*result);
    obs.pass_completed(*store, clock->now().time_since_epoch().count());
    const attention_report now = read_attention(*store);
    const bool attention = now.any() || result->halted || result->work_left;
    if (result->halted) spdlog::error("charging halted reason={}", result->halt_reason);
    print_summary(stdout, calendar::format_utc(clock->now()), *result, now, attention);
    return attention ? exit_code::needs_attention : exit_code::ok;
}

}  // namespace billingd::daemon
