#include "metrics/process_metrics.hpp"

namespace billingd::metrics {
namespace {

// Every charge outcome the engine reports, shown as 0 before it first happens so that rate()
// and alerts see the series from the start.
constexpr std::string_view charge_outcomes[] = {
    "paid",       "declined", "unknown", "transient",         "refused",    "parked",   "anomaly",
    "reconciled", "canceled", "skipped", "dunning_exhausted", "superseded", "recovered"};
constexpr std::string_view endpoints[] = {"charge", "lookup", "customer"};

}  // namespace

process_metrics::process_metrics(std::string version)
    : version_(std::move(version)), commits_(commit_latency_buckets()) {
    for (auto o : charge_outcomes) outcomes_.emplace(o, 0);
    for (auto e : endpoints) latency_.emplace(e, histogram(request_latency_buckets()));
}

void process_metrics::count_decision(std::string_view what, bool about_a_charge) {
    // "skipped" comes without a charge row (missed periods); it is still a charge outcome.
    auto& counts = about_a_charge || outcomes_.contains(what) ? outcomes_ : engine_events_;
    auto it = counts.find(what);
    if (it == counts.end()) it = counts.emplace(std::string{what}, 0).first;
    ++it->second;
}

void process_metrics::observe_request(std::string_view endpoint, std::string_view klass,
                                      std::chrono::milliseconds latency) {
    ++requests_[{std::string{endpoint}, std::string{klass}}];
    auto it = latency_.find(endpoint);
    if (it == latency_.end())
        it = latency_.emplace(std::string{endpoint}, histogram(request_latency_buckets())).first;
    it->second.observe(std::chrono::duration<double>(latency).count());
}

void process_metrics::observe_commit(std::chrono::nanoseconds took) {
    commits_.observe(std::chrono::duration<double>(took).count());
}

void process_metrics::pass_completed(std::int64_t unix_seconds) {
    ++passes_;
    last_pass_ = unix_seconds;
}

std::uint64_t process_metrics::outcome_count(std::string_view outcome) const {
    auto it = outcomes_.find(outcome);
    return it == outcomes_.end() ? 0 : it->second;
}

std::uint64_t process_metrics::request_count(std::string_view endpoint,
                                             std::string_view klass) const {
    auto it = requests_.find({std::string{endpoint}, std::string{klass}});
    return it == requests_.end() ? 0 : it->second;
}

void process_metrics::render(exposition& out, const engine_state& engine) const {
    out.family("billingd_build_info", "gauge", "The running billingd's version (always 1).");
    out.sample("billingd_build_info", {{"version", version_}}, 1);

    out.family("billingd_charge_outcomes_total", "counter",
               "Charge decisions of the engine since start, by outcome (paid, declined, unknown, "
               "parked, ...).");
    for (const auto& [outcome, n] : outcomes_)
        out.sample("billingd_charge_outcomes_total", {{"outcome", outcome}},
                   static_cast<double>(n));
    out.family("billingd_engine_events_total", "counter",
               "Engine decisions that concern no single charge (breaker_open, halted, "
               "guardrail, ...) since start.");
    for (const auto& [event, n] : engine_events_)
        out.sample("billingd_engine_events_total", {{"event", event}}, static_cast<double>(n));

    out.family("billingd_portone_requests_total", "counter",
               "PortOne requests since start, by endpoint (charge, lookup, customer) and answer "
               "class (paid, declined, unknown, transient, refused, config_error, found, "
               "not_found, invalid_billing_key).");
    for (const auto& [key, n] : requests_)
        out.sample("billingd_portone_requests_total",
                   {{"endpoint", key.first}, {"class", key.second}}, static_cast<double>(n));
    out.family("billingd_portone_request_duration_seconds", "histogram",
               "Round-trip time of PortOne requests, by endpoint.");
    for (const auto& [endpoint, h] : latency_)
        h.render(out, "billingd_portone_request_duration_seconds", {{"endpoint", endpoint}});

    out.family("billingd_sqlite_commit_duration_seconds", "histogram",
               "Time of each SQLite COMMIT of billingd's write transactions (WAL, "
               "synchronous=FULL).");
    commits_.render(out, "billingd_sqlite_commit_duration_seconds", {});

    out.gauge("billingd_circuit_breaker_open",
              "1 while the circuit breaker holds new charges back (lookups continue).",
              engine.breaker_open ? 1 : 0);
    out.gauge("billingd_circuit_breaker_recent_failures",
              "Failed PortOne calls among the breaker's recent window.",
              static_cast<double>(engine.breaker_recent_failures));
    out.gauge("billingd_circuit_breaker_recent_calls", "PortOne calls in the breaker's window.",
              static_cast<double>(engine.breaker_recent_calls));
    out.gauge("billingd_halted",
              "1 while a configuration error (credentials, account, endpoint) halts charging.",
              engine.halted ? 1 : 0);
    out.family("billingd_passes_total", "counter", "Engine passes completed since start.");
    out.sample("billingd_passes_total", static_cast<double>(passes_));
    out.gauge("billingd_start_time_seconds", "When billingd started (UNIX seconds).",
              static_cast<double>(started_));
    out.gauge("billingd_last_pass_completed_timestamp_seconds",
              "When the last engine pass completed (UNIX seconds; 0 before the first).",
              static_cast<double>(last_pass_.value_or(0)));
}

storage::commit_observer commit_observer_of(process_metrics& m) {
    return {[](void* context, std::chrono::nanoseconds took) {
                static_cast<process_metrics*>(context)->observe_commit(took);
            },
            &m};
}

}  // namespace billingd::metrics
