// What the running billingd counts itself (as opposed to what the database says, see
// database_gauges.hpp): charge outcomes from the engine's decisions, PortOne requests by
// endpoint and answer class with their latency, SQLite commit latency, the breaker and halt
// state, when the last pass completed, and the build.
//
// Fed by the daemon: count_decision() from engine::on_decision, observe_request() from
// observed_client (a decorator around gateway::client), observe_commit() from the store's
// connection (storage::commit_observer, see commit_observer_of), the engine state and pass
// times by the run loop. It never reads a clock; render() writes the text format.
// Thread safety: one thread (the daemon's io_context).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "metrics/exposition.hpp"
#include "metrics/histogram.hpp"
#include "storage/sqlite.hpp"

namespace billingd::metrics {

// The engine's state at the time of a scrape (engine::breaker(), engine::halted()).
struct engine_state {
    bool breaker_open = false;
    std::size_t breaker_recent_failures = 0;
    std::size_t breaker_recent_calls = 0;
    bool halted = false;
};

class process_metrics {
  public:
    explicit process_metrics(std::string version);

    // An engine decision (scheduler::decision::what). Charge outcomes count in
    // billingd_charge_outcomes_total{outcome}; the engine's own (breaker_open, halted,
    // guardrail, ...) in billingd_engine_events_total{event}.
    void count_decision(std::string_view what, bool about_a_charge);
    // One PortOne exchange: endpoint "charge" | "lookup" | "customer"; klass the answer's
    // class (gateway::to_string(outcome)); its round-trip latency.
    void observe_request(std::string_view endpoint, std::string_view klass,
                         std::chrono::milliseconds latency);
    void observe_commit(std::chrono::nanoseconds took);
    // A pass of the engine completed at `unix_seconds` (the engine's clock).
    void pass_completed(std::int64_t unix_seconds);
    // When the daemon started (billingd_start_time_seconds): "no pass for 5 minutes" counts
    // from here until the first pass completes.
    void started(std::int64_t unix_seconds) { started_ = unix_seconds; }

    void render(exposition& out, const engine_state& engine) const;

    std::uint64_t outcome_count(std::string_view outcome) const;
    std::uint64_t request_count(std::string_view endpoint, std::string_view klass) const;
    std::uint64_t commit_count() const { return commits_.count(); }

  private:
    std::string version_;
    std::map<std::string, std::uint64_t, std::less<>> outcomes_;
    std::map<std::string, std::uint64_t, std::less<>> engine_events_;
    std::map<std::pair<std::string, std::string>, std::uint64_t> requests_;
    std::map<std::string, histogram, std::less<>> latency_;
    histogram commits_;
    std::uint64_t passes_ = 0;
    std::optional<std::int64_t> last_pass_;
    std::int64_t started_ = 0;
};

// A commit observer that feeds `m` (install with connection::set_commit_observer).
storage::commit_observer commit_observer_of(process_metrics& m);

}  // namespace billingd::metrics
