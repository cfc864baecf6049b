// What the daemon tells operators besides its log: the Prometheus endpoint ([metrics]) and
// the tables behind the operator views (reporting zone, revenue roll-up; the operator_views migration).
//
// Assembled by run_daemon in three steps, because the engine sits in the middle:
//   observability obs(cfg);                       // counters; nothing listens yet
//   gateway = obs.observe(open_gateway(...));     // PortOne requests, when metrics are on
//   obs.attach(store);                            // commit latency; reporting zone written
//   ... engine ...
//   obs.serve(io, engine, clock, store);          // starts listening when configured
// and after each pass: obs.pass_completed(now) (pass time, revenue roll-up).
//
// Extension point: `gauge_providers` are called at every scrape after the database gauges
// (the outbox adds its deliveries pending/dead here). Errors: serve() throws config_error
// when it cannot listen; roll-up failures are logged, never thrown into the run loop.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "daemon/config.hpp"
#include "gateway/client.hpp"
#include "metrics/database_gauges.hpp"
#include "metrics/process_metrics.hpp"
#include "scheduler/clock.hpp"
#include "scheduler/engine.hpp"
#include "storage/store.hpp"

namespace boost::asio {
class io_context;
}

namespace billingd::daemon {

class metrics_server;

class observability {
  public:
    explicit observability(const config& cfg);
    ~observability();
    observability(const observability&) = delete;
    observability& operator=(const observability&) = delete;

    bool metrics_enabled() const { return enabled_; }
    metrics::process_metrics& process() { return process_; }

    // The client that billingd uses: `inner` itself, or `inner` observed when metrics are on.
    std::unique_ptr<gateway::client> observe(std::unique_ptr<gateway::client> inner);
    // Commit latency (when metrics are on) and the reporting zone's tables.
    void attach(storage::store& store, std::int64_t now);
    // Logs and counts one engine decision (installed with engine::on_decision).
    void decision(const scheduler::decision& d);
    // Starts the endpoint when [metrics] listen is set.
    void serve(boost::asio::io_context& io, const scheduler::engine& engine,
               const scheduler::clock& clock);
    // A pass completed at `now`: its time for the metrics, then the revenue roll-up.
    void pass_completed(storage::store& store, std::int64_t now);

    // Called at every scrape after the database gauges (e.g. the outbox's deliveries).
    std::vector<metrics::gauge_provider> gauge_providers;

  private:
    void pass_completed_rollup(storage::store& store, std::int64_t now);

    const config& cfg_;
    bool enabled_;
    metrics::process_metrics process_;
    std::unique_ptr<storage::connection> reader_;  // read-only, for the gauges
    std::unique_ptr<metrics_server> server_;
};

}  // namespace billingd::daemon
