// The charging engine: what is due, charge it exactly once per period, record everything.
//
// Protocol for one charge (DESIGN.md money invariants):
//   1. the period's charge row exists (UNIQUE per subscription and period);
//   2. the attempt is committed (state `sending`, a `request` row in attempts) BEFORE the
//      request leaves the process — a crash afterwards leaves a row that says "may be sent";
//   3. the answer is classified and committed with its journal row and events;
//   4. unknown outcomes are reconciled with findAll before anything is sent again.
// At start, `recover()` turns every charge left in `sending`/`reconciling` into `unknown`.
//
// The engine takes the clock, the store and the gateway as interfaces; it never sleeps or
// reads the system clock. Storage failures throw (infrastructure): the caller stops the pass.
// Thread safety: one io_context thread. Never two requests for one merchant_uid: a charge is
// handled by exactly one worker per pass, and rows on the wire have no next_action_at.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "calendar/calendar.hpp"
#include "domain/retry_policy.hpp"
#include "gateway/client.hpp"
#include "scheduler/clock.hpp"
#include "storage/store.hpp"

namespace billingd::scheduler {

struct engine_config {
    std::string merchant_uid_prefix;
    int max_catch_up_periods = 1;
    std::size_t max_in_flight = 16;  // charge/lookup requests on the wire at once
    int batch_size = 256;            // rows read and write-ahead committed per group
    domain::transient_policy transient;
    domain::unknown_policy unknown;
    domain::dunning_policy dunning;
    // Guardrails: 0 disables. A trip of a count limit holds the remaining charges back (they
    // stay due) and records a `guardrail` event; an oversized amount parks the charge.
    std::int64_t max_amount_per_charge = 0;
    std::int64_t max_charges_per_pass = 0;
    std::int64_t max_charges_per_hour = 0;
    // No charge is sent inside this daily window (local time in quiet_zone).
    calendar::quiet_hours quiet;
    const date::time_zone* quiet_zone = nullptr;
    // --once: reconcile a fresh unknown outcome at once instead of after the first delay.
    bool settle_unknown_immediately = false;
    // A charge sent this many times without settling is parked (a safety valve against a
    // gateway that keeps answering "no record" to lookups of answered charges).
    std::int64_t max_attempts_per_charge = 50;
    // Circuit breaker: when at least `breaker_failure_ratio` of the last `breaker_window`
    // gateway calls (and at least `breaker_min_calls`) failed with transport errors, 5xx or
    // 429, no new charge is sent for `breaker_open_for`; lookups continue. Then one charge is
    // sent as a probe: a clear answer closes the breaker, another failure reopens it.
    std::size_t breaker_window = 20;
    std::size_t breaker_min_calls = 10;
    double breaker_failure_ratio = 0.5;
    std::chrono::seconds breaker_open_for{30};
    // Test hook for crash tests: called at "before_write_ahead_commit",
    // "after_write_ahead_commit" and "before_outcome_commit".
    std::function<void(std::string_view step)> at_step;
};

// Decisions the caller may log (the library itself never logs).
struct decision {
    std::int64_t subscription_id = 0;
    std::int64_t charge_id = 0;
    std::string merchant_uid;
    std::string what;    // e.g. "paid", "declined", "unknown", "parked", "skipped"
    std::string detail;  // reason, imp_uid, next action
};

struct pass_summary {
    int scheduled = 0;  // subscriptions given a due time
    int materialised = 0;
    int skipped = 0;
    int sent = 0;
    int paid = 0;
    int declined = 0;
    int unknown = 0;
    int transient = 0;
    int parked = 0;
    int reconciled = 0;
    int canceled = 0;
    std::int64_t paid_amount = 0;
    bool halted = false;  // a configuration error stopped charging
    std::string halt_reason;
    bool work_left = false;  // due work remained (guardrail, halt)

    pass_summary& operator+=(const pass_summary& other);
};

class engine {
  public:
    engine(storage::store& store, gateway::client& gateway, const clock& clock,
           engine_config config);
    ~engine();
    engine(const engine&) = delete;
    engine& operator=(const engine&) = delete;

    void on_decision(std::function<void(const decision&)> sink);

    // Charges left on the wire by a previous process become `unknown` (reconcile first).
    int recover();

    // One pass over everything due at clock.now(): schedule new subscriptions, materialise
    // due periods (catch-up policy), send due charges, reconcile due unknowns. Returns when
    // every request it started has been answered and journaled.
    boost::asio::awaitable<pass_summary> run_pass();

    // Passes until nothing is due at clock.now() (used by --once).
    boost::asio::awaitable<pass_summary> run_until_idle();

    // Earliest instant at which something becomes due, if anything is scheduled.
    std::optional<std::chrono::sys_seconds> next_wakeup();

    // True once a configuration error (bad credentials, account setup) stopped charging.
    bool halted() const;

    struct breaker_status {
        bool open = false;
        std::chrono::sys_seconds probe_at{};  // when the next probe may be sent
        std::size_t recent_failures = 0;
        std::size_t recent_calls = 0;
    };
    breaker_status breaker() const;

    // Stop starting new requests (SIGTERM); requests on the wire finish.
    void stop();

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// Rule of a subscription row, or an error text (unknown time zone, malformed dates).
struct rule_or_error {
    std::optional<calendar::billing_rule> rule;
    std::string error;
};
rule_or_error billing_rule_of(const storage::subscription_record& s);

// After period `period` of `s` is settled (paid, or given up by an operator): advance the
// subscription to its next period or end it (max_periods, cancel_at_period_end), and record
// the events. Must run inside the caller's write transaction. Shared with billingctl.
void advance_subscription(storage::store& store, const storage::subscription_record& s,
                          std::int64_t settled_period, bool paid, std::int64_t now,
                          const std::string& actor);

}  // namespace billingd::scheduler
