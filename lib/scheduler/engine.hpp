// The charging engine: what is due, charge it exactly once per period, record everything.
//
// Protocol for one charge (DESIGN.md money invariants):
//   1. the period's charge row exists (UNIQUE per subscription and period), with a
//      merchant_uid from the database's install id and the subscription's key;
//   2. when a worker slot is free, decide_due() (decide.hpp) says what the row needs; a charge
//      to send becomes `sending` with a `request` journal row in the group commit that
//      precedes its request — nothing is written ahead that is not sent at once, so a crash
//      leaves at most max_in_flight rows in doubt;
//   3. the answer is classified and committed with its journal row and events in the next
//      group commit;
//   4. unknown and refused outcomes are reconciled with findAll before anything is sent
//      again; "no record" is trusted only past the trust floor (decide_after_lookup).
// At start, `recover()` turns every charge left in `sending`/`reconciling` into `unknown`.
//
// The engine takes the clock, the store and the gateway as interfaces; it never sleeps or
// reads the system clock. Storage failures throw (infrastructure): the caller stops the pass.
// Thread safety: one io_context thread. Never two requests for one merchant_uid: a row on the
// wire has no next_action_at, and one coordinator picks rows.
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
    // Must match the database's install id when set; names it when the database is new.
    std::string merchant_uid_prefix;
    int max_catch_up_periods = 1;
    std::size_t max_in_flight = 16;  // charge/lookup requests on the wire at once
    int batch_size = 256;            // rows examined per group commit
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
    // Refusals (PortOne answered without a payment and the lookup shows no new record): the
    // n-th is retried after about refusal_base_delay * 2^(n-1) (capped), the max_refusals-th
    // parks the charge with PortOne's message.
    std::int64_t max_refusals = 5;
    std::chrono::seconds refusal_base_delay{60};
    std::chrono::seconds refusal_max_delay{3600};
    // Trust floor: how long after a charge request was written ahead it may still be in
    // progress at PortOne or the PG (the daemon derives it from [portone] timeouts, see
    // daemon::trust_floor; this default is the one for default timeouts). A lookup's "no
    // record" before that is not trusted.
    std::chrono::seconds in_progress_floor{222};
    // After a configuration error halts charging, one probe request is sent this much later;
    // a clear answer lifts the halt, another configuration error renews it.
    std::chrono::seconds halt_probe_after{300};
    // Circuit breaker: when at least `breaker_failure_ratio` of the last `breaker_window`
    // gateway calls (and at least `breaker_min_calls`) failed with transport errors, 5xx or
    // 429, no new charge is sent for `breaker_open_for`; lookups continue. Then one charge is
    // sent as a probe: a clear answer closes the breaker, another failure reopens it.
    std::size_t breaker_window = 20;
    std::size_t breaker_min_calls = 10;
    double breaker_failure_ratio = 0.5;
    std::chrono::seconds breaker_open_for{30};
    // Consent ([billing] require_consent): a price rise, or the first period after a trial,
    // is held until the customer's consent is recorded (operations::record_consent), at most
    // consent_timeout; then the subscription is canceled, or the period is charged at the
    // price before the rise (charge_old_price; a trial's first period is then charged).
    bool require_consent = false;
    std::chrono::seconds consent_timeout{14 * 86400};
    bool consent_timeout_charges_old_price = false;
    // Refunds: the payment is read this long after an unknown refund outcome, and again at
    // doubling delays up to an hour.
    std::chrono::seconds refund_lookup_delay{30};
    // Refunds made in PortOne's console: every console_check_interval (0: never) the payments
    // cancelled in the last console_check_days are read and the ones billingd does not know
    // are recorded.
    std::chrono::seconds console_check_interval{3600};
    int console_check_days = 30;
    // PortOne's cancelled list shows only fully cancelled payments: each check also reads this
    // many paid charges of those days one by one (GET /payments/{imp_uid}), round robin, to
    // find partial refunds made in the console.
    int console_check_payments = 100;
    // Test hook for crash tests: called at "before_write_ahead_commit",
    // "after_write_ahead_commit" and "before_outcome_commit" (the commit that carries answers;
    // answers and new write-aheads share one group commit).
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
    int refused = 0;
    int parked = 0;
    int reconciled = 0;
    int canceled = 0;
    int refunds = 0;          // refunds settled (refunded or refused)
    int console_refunds = 0;  // refunds found that were made in PortOne's console
    int held_for_consent = 0;
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

    // True while a configuration error (bad credentials, account setup, endpoint) holds every
    // request back; a probe is sent at halt_probe_at() and lifts it on a clear answer.
    bool halted() const;
    std::chrono::sys_seconds halt_probe_at() const;
    const std::string& halt_reason() const;
    const std::string& install_id() const;

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
