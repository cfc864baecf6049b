// Private to lib/scheduler: the engine's state and the steps of a pass, split over
// engine.cpp (orchestration, workers), materialise.cpp (what is due) and outcomes.cpp
// (applying PortOne's answers). Not installed, not included outside lib/scheduler.
#pragma once

#include <deque>
#include <random>
#include <string>
#include <vector>

#include "scheduler/engine.hpp"

namespace billingd::scheduler {

// One request to make for one charge; filled at write-ahead time.
struct job {
    enum class kind { charge, lookup };
    kind what = kind::charge;
    storage::charge_record charge;        // as committed by the write-ahead transaction
    std::int64_t request_attempt_id = 0;  // the committed `request` journal row
    bool breaker_probe = false;           // sent while the circuit breaker was half-open
    gateway::charge_request request;      // for charges
};

// What a job learned, applied by the next group commit.
struct job_result {
    job done;
    std::optional<gateway::charge_result> charge;
    std::optional<gateway::lookup_result> lookup;
    std::optional<gateway::customer_result> customer;  // billing key verification
    bool not_sent = false;  // held back after the write-ahead commit (stop, halt, breaker)
};

struct engine::impl {
    impl(storage::store& s, gateway::client& g, const clock& c, engine_config cfg)
        : store(s), gateway(g), clk(c), config(std::move(cfg)), random(std::random_device{}()) {}

    storage::store& store;
    gateway::client& gateway;
    const clock& clk;
    engine_config config;
    std::function<void(const decision&)> sink;
    std::mt19937_64 random;

    bool halted = false;
    std::string halt_reason;
    bool stopping = false;

    // Circuit breaker (engine.cpp): outcomes of recent calls, true = transport failure.
    std::deque<bool> recent_calls;
    bool breaker_open = false;
    std::int64_t breaker_probe_at = 0;
    bool probe_in_flight = false;
    void record_call(const gateway::exchange& x, bool was_probe);

    // Guardrails (engine.cpp): send times of the last hour, for max_charges_per_hour.
    std::deque<std::int64_t> recent_sends;
    bool hourly_limit_reached(std::int64_t t);
    std::int64_t sends_in_last_hour(std::int64_t t);
    std::int64_t hourly_limit_reopens_at() const;
    void guardrail_event(const std::string& which, const std::string& detail);
    bool guardrail_reported = false;

    // Per pass.
    pass_summary summary;
    std::deque<job> queue;
    std::vector<job_result> pending;  // answers waiting for the group commit
    std::int64_t sends_this_pass = 0;
    bool queue_exhausted = false;
    bool failed = false;  // storage or a worker failed this pass: send nothing more

    std::int64_t now() const { return clk.now().time_since_epoch().count(); }
    void decide(const storage::charge_record& c, std::string what, std::string detail);

    // materialise.cpp
    void schedule_new_subscriptions();
    void materialise_due_subscriptions();

    // engine.cpp
    bool refill_queue();
    boost::asio::awaitable<void> worker();
    boost::asio::awaitable<void> work_loop();
    boost::asio::awaitable<job_result> execute(job j);
    void flush_pending();

    // outcomes.cpp
    void apply(job_result& r);
    void apply_charge_answer(storage::charge_record& c, const job_result& r);
    void apply_lookup_answer(storage::charge_record& c, const job_result& r);
    void settle_paid(storage::charge_record& c, const gateway::payment& p);
    void settle_declined(storage::charge_record& c, const std::string& reason);
    void mark_unknown(storage::charge_record& c, const std::string& why);
    void park(storage::charge_record& c, const std::string& reason);
    void halt(const std::string& reason);

    // Writes the row with a state-change event; the caller holds the transaction.
    void transition(storage::charge_record& c, domain::charge_state to, const std::string& detail,
                    const std::string& event_kind = "charge.state");
    void subscription_event(std::int64_t subscription_id, std::string kind,
                            std::optional<std::string> from, std::optional<std::string> to,
                            std::string detail);
    void set_subscription_status(const storage::subscription_record& s,
                                 domain::subscription_status to, const std::string& detail);
};

// Appends one `events` row (materialise.cpp); the caller holds the transaction.
void record_event(storage::store& store, std::int64_t now,
                  std::optional<std::int64_t> subscription_id,
                  std::optional<std::int64_t> charge_id, std::string kind,
                  std::optional<std::string> from, std::optional<std::string> to,
                  std::string detail, const std::string& actor);

std::int64_t to_unix(std::chrono::sys_seconds t);
std::chrono::sys_seconds from_unix(std::int64_t t);

}  // namespace billingd::scheduler
