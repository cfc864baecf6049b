#include "daemon/observability.hpp"

#include <spdlog/spdlog.h>

#include "calendar/calendar.hpp"
#include "daemon/logging.hpp"
#include "daemon/metrics_server.hpp"
#include "daemon/runtime.hpp"
#include "metrics/observed_client.hpp"
#include "reporting/reporting.hpp"

namespace billingd::daemon {

observability::observability(const config& cfg)
    : cfg_(cfg), enabled_(!cfg.metrics.listen.empty()), process_(std::string{version()}) {}

observability::~observability() = default;

std::unique_ptr<gateway::client> observability::observe(std::unique_ptr<gateway::client> inner) {
    if (!enabled_) return inner;
    return std::make_unique<metrics::observed_client>(std::move(inner), process_);
}

void observability::attach(storage::store& store, std::int64_t now) {
    if (enabled_) store.db().set_commit_observer(metrics::commit_observer_of(process_));
    const auto* zone = calendar::find_zone(cfg_.reporting_time_zone);
    if (!zone) return;  // validated with the configuration
    if (reporting::write_reporting_zone(store.db(), cfg_.reporting_time_zone, zone, now))
        spdlog::info("reporting time zone written zone={} (views show local dates in it)",
                     cfg_.reporting_time_zone);
    pass_completed_rollup(store, now);
}

void observability::decision(const scheduler::decision& d) {
    log_decision(d);
    if (enabled_) process_.count_decision(d.what, d.charge_id != 0);
}

void observability::serve(boost::asio::io_context& io, const scheduler::engine& engine,
                          const scheduler::clock& clock) {
    if (!enabled_) return;
    storage::open_options options;
    options.path = cfg_.database;
    options.read_only = true;
    options.busy_timeout = std::chrono::milliseconds{100};
    // A scrape must never wait on the event loop: a reader that cannot read at once (WAL
    // readers almost never wait) answers 500 instead of retrying like the store's writes.
    options.on_busy = [](std::string_view) {
        throw storage::error("the database is busy; try the scrape again");
    };
    reader_ = std::make_unique<storage::connection>(options);
    process_.started(clock.now().time_since_epoch().count());
    auto render = [this, &engine, &clock] {
        metrics::exposition out;
        const auto breaker = engine.breaker();
        metrics::engine_state state;
        state.breaker_open = breaker.open;
        state.breaker_recent_failures = breaker.recent_failures;
        state.breaker_recent_calls = breaker.recent_calls;
        state.halted = engine.halted();
        process_.render(out, state);
        metrics::render_database(*reader_, clock.now().time_since_epoch().count(), out,
                                 gauge_providers);
        return out.take();
    };
    server_ = std::make_unique<metrics_server>(io, cfg_.metrics, render);
    spdlog::info("metrics listening on {} (GET /metrics)", server_->endpoint());
}

void observability::pass_completed(storage::store& store, std::int64_t now) {
    process_.pass_completed(now);
    pass_completed_rollup(store, now);
}

void observability::pass_completed_rollup(storage::store& store, std::int64_t now) {
    try {
        if (const int days = reporting::refresh_revenue(store.db(), now); days > 0)
            spdlog::debug("revenue roll-up refreshed rows={}", days);
    } catch (const storage::error& e) {
        // The views still answer (from charges_paid); the next pass tries again.
        spdlog::warn("revenue roll-up failed error={}", e.what());
    }
}

}  // namespace billingd::daemon
