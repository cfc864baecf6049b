// The long-running daemon: one io_context, one thread.
//
//   recover(); loop { run_pass(); sleep until next_wakeup() (at most 30 s) }
//
// The sleep ends early when another process commits to the database (PRAGMA data_version,
// checked once a second), so a subscription inserted with sqlite3 or billingctl is charged
// within seconds, and at once when the API (on billingd's own connection) created work.
// SIGTERM/SIGINT stop new requests; the current pass finishes (bounded by shutdown_grace_for:
// connect + charge timeout) and the process exits 0. Rows cut off by the bound stay `sending` and
// are reconciled by recover() at the next start.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>

#include "calendar/calendar.hpp"
#include "daemon/api_server.hpp"
#include "daemon/lock_file.hpp"
#include "daemon/logging.hpp"
#include "daemon/notify.hpp"
#include "daemon/observability.hpp"
#include "daemon/outbox_service.hpp"
#include "daemon/report.hpp"
#include "daemon/runtime.hpp"
#include "daemon/services.hpp"
#include "outbox/delivery_gauges.hpp"
#include "scheduler/clock.hpp"
#include "scheduler/engine.hpp"

namespace billingd::daemon {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

constexpr auto max_sleep = 30s;
constexpr auto data_version_poll = 1s;
// How long requests on the wire may take to finish after SIGTERM: long enough for a charge
// to time out on its own (so its answer is journaled), short of the unit's TimeoutStopSec.
std::chrono::seconds shutdown_grace_for(const config& cfg) {
    const auto needed = std::chrono::duration_cast<std::chrono::seconds>(
                            cfg.portone.connect_timeout + cfg.portone.charge_timeout) +
                        5s;
    return std::clamp<std::chrono::seconds>(needed, 10s, 110s);
}
constexpr auto failed_pass_delay = 30s;
constexpr int max_consecutive_failures = 5;

class runner {
  public:
    runner(asio::io_context& io, storage::store& store, scheduler::engine& engine,
           outbox_service& outbox, const scheduler::clock& clock,
           std::chrono::seconds shutdown_grace)
        : shutdown_grace_(std::max(shutdown_grace, outbox.drain_bound())),
          io_(io),
          store_(store),
          engine_(engine),
          outbox_(outbox),
          clock_(clock),
          signals_(io, SIGINT, SIGTERM),
          hangup_(io, SIGHUP),
          sleep_timer_(io),
          watchdog_timer_(io),
          grace_timer_(io) {}

    // Called after every completed pass (metrics, revenue roll-up).
    void after_pass(std::function<void()> f) { after_pass_ = std::move(f); }
    // Called once when a signal stops the daemon (the API stops accepting).
    void on_stop(std::function<void()> f) { on_stop_ = std::move(f); }

    // True while a pass runs (the API's writes then leave charging its share of the loop).
    bool in_pass() const { return in_pass_; }

    // Ends the current sleep (or the next one) now: billingd's own connection wrote something
    // that may be due (the API), which PRAGMA data_version does not show.
    void wake() {
        woken_ = true;
        sleep_timer_.cancel();
    }

    // Runs until a signal stops it. Returns the exit code.
    int run() {
        wait_for_signal();
        ignore_hangups();
        if (auto interval = notify::watchdog_interval()) feed_watchdog(*interval);
        outbox_.start();
        asio::co_spawn(io_, loop(), [this](std::exception_ptr e) {
            if (e) {
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    spdlog::critical("daemon loop failed: {}", ex.what());
                }
                exit_code_ = exit_code::software;
            }
            signals_.cancel();
            hangup_.cancel();
            watchdog_timer_.cancel();
            grace_timer_.cancel();
            io_.stop();
        });
        io_.run();
        if (forced_) {
            // Coroutines are still suspended inside the engine and the client; unwinding them
            // after those are gone is unsafe, and everything committed is durable already.
            // Non-zero: requests were cut off and are in doubt until the next start.
            notify::stopping("stopped (shutdown grace period exceeded)");
            spdlog::shutdown();
            std::_Exit(exit_code::software);
        }
        notify::stopping("stopped");
        spdlog::info("billingd stopped");
        return exit_code_;
    }

  private:
    asio::awaitable<void> loop() {
        int failures = 0;
        bool halt_logged = false;
        while (!stopping_) {
            // Read before the pass: a commit by another process during the pass must still
            // cut the following sleep short. Our own commits do not change it.
            const std::int64_t seen_version = store_.db().data_version();
            notify::status("charging");
            bool failed = false;
            try {
                in_pass_ = true;
                const scheduler::pass_summary summary = co_await engine_.run_pass();
                in_pass_ = false;
                log_pass(summary);
                outbox_.after_pass();
                if (after_pass_) after_pass_();
                failures = 0;
            } catch (const std::exception& e) {
                in_pass_ = false;
                // Infrastructure failure (disk, corrupt database): log once, back off, and give
                // up after several in a row so systemd can restart us.
                spdlog::error("pass failed error={}", e.what());
                if (++failures >= max_consecutive_failures) throw;
                failed = true;
            }
            if (failed) {
                co_await sleep(failed_pass_delay, seen_version);
                continue;
            }
            if (stopping_) break;
            if (engine_.halted() && !halt_logged) {
                spdlog::error(
                    "charging halted by a configuration error; a probe at {} resumes it once "
                    "the cause is fixed",
                    calendar::format_utc(engine_.halt_probe_at()));
                halt_logged = true;
            }
            if (!engine_.halted()) halt_logged = false;
            co_await sleep(next_sleep(), seen_version);
        }
        // Deliveries in flight finish (bounded by their timeouts) and are recorded.
        outbox_.stop();
        co_await outbox_.stopped();
    }

    std::chrono::seconds next_sleep() {
        auto next = engine_.next_wakeup();
        if (const auto notice = outbox_.next_wakeup())
            next = next ? std::min(*next, *notice) : *notice;
        std::chrono::seconds delay = max_sleep;
        if (next) delay = std::clamp<std::chrono::seconds>(*next - clock_.now(), 1s, max_sleep);
        const auto breaker = engine_.breaker();
        const std::string breaker_note =
            breaker.open ? fmt::format(
                               "circuit breaker OPEN ({}/{} recent calls failed, probe "
                               "at {}); ",
                               breaker.recent_failures, breaker.recent_calls,
                               calendar::format_utc(breaker.probe_at))
                         : "";
        const std::string halted =
            engine_.halted() ? fmt::format("HALTED ({}; probe at {}): ", engine_.halt_reason(),
                                           calendar::format_utc(engine_.halt_probe_at()))
                             : "";
        notify::status(fmt::format("{}{}idle; next wake {}", halted, breaker_note,
                                   calendar::format_utc(clock_.now() + delay)));
        return delay;
    }

    // Sleeps `duration`, ending early on a stop, a commit by another connection or wake().
    asio::awaitable<void> sleep(steady::duration duration, std::int64_t seen_version) {
        const auto deadline = steady::now() + duration;
        while (!stopping_) {
            if (woken_) {
                woken_ = false;
                spdlog::debug("woken by a change of billingd's own (API)");
                co_return;
            }
            const auto left = deadline - steady::now();
            if (left <= steady::duration::zero()) co_return;
            sleep_timer_.expires_after(std::min<steady::duration>(left, data_version_poll));
            boost::system::error_code ec;
            co_await sleep_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            if (stopping_) co_return;
            if (woken_) continue;
            if (store_.db().data_version() != seen_version) {
                spdlog::debug("database changed by another connection: waking up");
                co_return;
            }
        }
    }

    void wait_for_signal() {
        signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
            if (ec) return;
            if (stopping_) {
                spdlog::warn("signal={} while stopping: still waiting for the current pass", signo);
                wait_for_signal();
                return;
            }
            spdlog::info("signal={} stopping: no new requests, finishing the current pass", signo);
            notify::stopping("stopping: finishing the requests on the wire");
            stopping_ = true;
            if (on_stop_) on_stop_();
            engine_.stop();
            outbox_.stop();
            sleep_timer_.cancel();
            grace_timer_.expires_after(shutdown_grace_);
            grace_timer_.async_wait([this](const boost::system::error_code& timer_ec) {
                if (timer_ec) return;
                spdlog::error(
                    "the current pass did not finish within {} s; exiting, charges "
                    "on the wire are reconciled at the next start",
                    shutdown_grace_.count());
                forced_ = true;
                io_.stop();
            });
            wait_for_signal();
        });
    }

    // SIGHUP's default action would kill the daemon without draining (and systemd does not
    // restart a SIGHUP exit): billingd has nothing to reload, so it says so and goes on.
    void ignore_hangups() {
        hangup_.async_wait([this](const boost::system::error_code& ec, int) {
            if (ec) return;
            spdlog::warn(
                "signal=SIGHUP ignored: billingd does not reload; restart it to apply a new "
                "configuration (restarting is always safe)");
            ignore_hangups();
        });
    }

    // WATCHDOG=1 from the event loop itself: a blocked loop stops feeding it.
    void feed_watchdog(std::chrono::microseconds interval) {
        notify::watchdog();
        watchdog_timer_.expires_after(interval);
        watchdog_timer_.async_wait([this, interval](const boost::system::error_code& ec) {
            if (!ec) feed_watchdog(interval);
        });
    }

    std::chrono::seconds shutdown_grace_;
    std::function<void()> after_pass_;
    std::function<void()> on_stop_;
    asio::io_context& io_;
    storage::store& store_;
    scheduler::engine& engine_;
    outbox_service& outbox_;
    const scheduler::clock& clock_;
    asio::signal_set signals_;
    asio::signal_set hangup_;
    asio::steady_timer sleep_timer_;
    asio::steady_timer watchdog_timer_;
    asio::steady_timer grace_timer_;
    bool stopping_ = false;
    bool woken_ = false;
    bool in_pass_ = false;
    bool forced_ = false;
    int exit_code_ = exit_code::ok;
};

}  // namespace

int run_daemon(const config& cfg) {
    const database_lock lock(cfg.database);
    spdlog::info("billingd {} starting database={} base_url={} time_zone={}", version(),
                 cfg.database, cfg.portone.base_url, cfg.time_zone);

    auto store = open_store(cfg);
    asio::io_context io;
    observability obs(cfg);
    auto gateway = obs.observe(open_gateway(io, cfg));
    const scheduler::system_clock clock;
    store->mark_live(clock.now().time_since_epoch().count());
    obs.attach(*store, clock.now().time_since_epoch().count());
    scheduler::engine engine(*store, *gateway, clock, cfg.engine);
    engine.on_decision([&obs](const scheduler::decision& d) { obs.decision(d); });
    obs.gauge_providers.push_back(outbox::delivery_gauges);
    obs.serve(io, engine, clock);
    notify::ready("database open and migrated");

    if (const int recovered = engine.recover(); recovered > 0) {
        spdlog::warn("recovered charges_left_on_the_wire={} (reconciled before any resend)",
                     recovered);
    }
    if (const attention_report r = read_attention(*store); r.any()) {
        spdlog::warn(
            "needs attention in_doubt={} in_doubt_amount={} parked={} parked_amount={} "
            "subscriptions_needing_attention={}",
            r.in_doubt, r.in_doubt_amount, r.parked, r.parked_amount,
            r.subscriptions_needing_attention);
    }
    outbox_service outbox(io, *store, clock, cfg);
    runner r(io, *store, engine, outbox, clock, shutdown_grace_for(cfg));
    r.after_pass([&] { obs.pass_completed(*store, clock.now().time_since_epoch().count()); });
    std::unique_ptr<api_server> api;
    if (cfg.api.enabled()) {
        api = std::make_unique<api_server>(
            io, *store, *gateway, cfg, clock, [&r] { r.wake(); }, [&r] { return r.in_pass(); });
        spdlog::info("api listening on {} tokens={}", api->endpoint(), cfg.api.tokens.size());
        r.on_stop([&api] { api->stop(); });
    }
    return r.run();
}

}  // namespace billingd::daemon
