// Private to lib/scheduler: the engine's state and the steps of a pass, split over
// engine.cpp (the coordinator: group commits, write-ahead, gates), materialise.cpp (what is
// due) and outcomes.cpp (applying PortOne's answers). The decisions themselves are pure
// functions in decide.hpp. Not installed, not included outside lib/scheduler.
#pragma once

#include <deque>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "domain/json_object.hpp"
#include "scheduler/decide.hpp"
#include "scheduler/engine.hpp"
#include "storage/change_store.hpp"

namespace billingd::scheduler {

// One request for one charge, written ahead in the group commit that precedes it.
struct job {
    // refund: POST /payments/cancel; refund_lookup: GET /payments/{imp_uid} for a refund in
    // doubt (lib/scheduler/refunds.cpp).
    enum class kind { charge, lookup, refund, refund_lookup };
    kind what = kind::charge;
    storage::charge_record charge;           // as committed by the write-ahead transaction
    std::int64_t request_attempt_id = 0;     // the committed `request` journal row
    probe_kind probe = probe_kind::none;     // the gate whose probe this request is
    gateway::charge_request request;         // for charges
    std::optional<std::int64_t> period_end;  // for charges: the start of the next period
    storage::refund_record refund;           // for refunds, as written ahead
    std::string imp_uid;                     // for refunds: the payment refunded
};

// What a job learned, applied by the next group commit.
struct job_result {
    job done;
    std::optional<gateway::charge_result> charge;
    std::optional<gateway::lookup_result> lookup;
    std::optional<gateway::customer_result> customer;  // billing key verification
    std::optional<gateway::cancel_result> cancel;      // refunds
    std::optional<gateway::payment_result> payment;    // refund lookups
};

struct engine::impl {
    impl(storage::store& s, gateway::client& g, const clock& c, engine_config cfg)
        : store(s),
          changes(s.db()),
          gateway(g),
          clk(c),
          config(std::move(cfg)),
          random(std::random_device{}()) {}

    storage::store& store;
    storage::change_store changes;  // price schedule, consent, refunds (schema/0007)
    gateway::client& gateway;
    const clock& clk;
    engine_config config;
    decision_policy policy;
    std::string install_id;
    std::function<void(const decision&)> sink;
    std::mt19937_64 random;

    bool stopping = false;

    // Halt (configuration error): no charge (and with refused credentials no lookup either)
    // until halt_probe_at, then one probe.
    bool halted = false;
    bool halt_blocks_lookups = false;
    std::string halt_reason;
    std::int64_t halt_probe_at = 0;
    void halt(const std::string& reason, bool blocks_lookups);

    // Circuit breaker: outcomes of recent calls, true = failure (transport, 5xx, 429,
    // HTTP-200 refusal).
    std::deque<bool> recent_calls;
    bool breaker_open = false;
    std::int64_t breaker_probe_at = 0;
    bool probe_in_flight = false;  // of either kind
    void record_call(const gateway::exchange& x, probe_kind probe, bool first_send);

    bool guardrail_reported = false;
    void guardrail_event(const std::string& which, const std::string& detail);

    // Per pass.
    pass_summary summary;
    std::vector<job_result> pending;  // answers waiting for the next group commit
    std::size_t in_flight = 0;
    std::int64_t charges_this_pass = 0;
    int subscriptions_passed_over = 0;  // stay due: not even their flag could be written
    bool failed = false;                // storage or a request failed this pass: send nothing more

    std::int64_t now() const { return clk.now().time_since_epoch().count(); }
    double unit_random() { return std::uniform_real_distribution<double>(0.0, 1.0)(random); }
    void decide(const storage::charge_record& c, std::string what, std::string detail);
    gate_state gates(std::int64_t t);

    // materialise.cpp
    void schedule_new_subscriptions();
    // Each returns false only when the row had to be flagged and even that failed.
    bool schedule_one(storage::subscription_record s);
    // A due subscription (store::due_subscriptions): starts its period's charge when the gates
    // let it go — the charge row is inserted already `sending`, with its request journaled,
    // into `sent` — or parks, defers or reschedules it. `held`: a gate holds every new charge.
    bool materialise_one(const storage::subscription_record& s, gate_state& g,
                         std::optional<job>& sent, bool& held);
    bool isolated(const storage::subscription_record& s, const std::function<bool()>& work);
    bool flag(const storage::subscription_record& s, const std::string& reason);
    std::int64_t due_at(const storage::subscription_record& s, const calendar::billing_rule& rule,
                        std::int64_t period) const;

    // engine.cpp
    std::vector<job> commit_step(bool& exhausted);
    std::vector<job> pick_due(std::size_t free_slots, bool& exhausted);
    // Returns true when a refused row undid this group commit's new periods (it is flagged).
    bool start_due_periods(std::vector<job>& picked, std::size_t free_slots, gate_state& g,
                           int& examined, int& changed, bool& held);
    job write_ahead_charge(storage::charge_record& c, const storage::subscription_record& s,
                           probe_kind probe);
    // The request of a charge row already `sending`, with its journal row.
    job charge_job(const storage::charge_record& c, const storage::subscription_record& s,
                   probe_kind probe, std::optional<std::int64_t> period_end);
    // Counts a charge request that goes out in this group commit.
    void count_send(gate_state& g, probe_kind probe);
    job write_ahead_lookup(storage::charge_record& c, probe_kind probe);
    // Appends the `request` journal row of a write-ahead; returns its id.
    std::int64_t journal_request(const storage::charge_record& c, const char* kind,
                                 std::int64_t number, std::string summary);
    boost::asio::awaitable<job_result> execute(job j);

    // Consent (materialise.cpp): whether period `period` of `s` waits for the customer's
    // consent (returns true: nothing to charge now; the row's schedule was moved). False: the
    // caller charges it; after a timeout with charge_old_price, `amount` and `order_name` are
    // set back to the price before the rise.
    bool held_for_consent(const storage::subscription_record& s, std::int64_t period,
                          bool trial_conversion, std::int64_t& amount, std::string& order_name);
    // refunds.cpp
    void pick_refunds(std::vector<job>& picked, std::size_t free_slots, const gate_state& g);
    boost::asio::awaitable<job_result> execute_refund(job j);
    void apply_refund(job_result& r);
    void apply_refund_answer(job_result& r);
    // Runs one refund row's work in a savepoint; a row the schema refuses is undone, taken
    // out of the due set with a refund.invalid event, and never fails the group commit.
    void isolated_refund(std::int64_t refund_id, const std::function<void()>& work);
    std::set<std::int64_t> refunds_passed_over;  // refused rows that could not even be stopped
    void settle_refund(storage::refund_record& r, const storage::charge_record& c,
                       const gateway::payment& p, const gateway::cancellation* entry);
    void refund_again_later(storage::refund_record& r, const std::string& state, std::int64_t delay,
                            const std::string& why);
    std::int64_t journal_refund(const storage::refund_record& r, const std::string& imp_uid,
                                const char* kind, std::string summary);
    void journal_refund_answer(const job& j, const gateway::exchange& x);
    int recover_refunds();
    std::optional<std::int64_t> next_console_check();
    // Something for the charging loop is due now: the console check gives way to it.
    bool charging_work_due();
    boost::asio::awaitable<void> check_console_refunds();
    int record_console_refunds(const gateway::payment& p);
    // outcomes.cpp
    void apply(job_result& r);
    void apply_charge_answer(storage::charge_record& c, const job_result& r);
    void apply_lookup_answer(storage::charge_record& c, const job_result& r);
    // `period_end` (the next period's start) when the caller knows it; else it is read.
    void settle_paid(storage::charge_record& c, const gateway::payment& p,
                     std::optional<std::int64_t> period_end = {});
    void settle_declined(storage::charge_record& c, const std::string& reason);
    void mark_unknown(storage::charge_record& c, const std::string& why,
                      std::int64_t not_before = 0);
    void retry_now(storage::charge_record& c, const std::string& why);
    void cancel(storage::charge_record& c, const std::string& reason);
    void park(storage::charge_record& c, const std::string& reason);

    // The charge row as the database has it, for the charge being worked on: writes send only
    // the columns that changed from it (store::update_charge). Set whenever a row is read.
    storage::charge_record stored;
    void write(storage::charge_record& c);
    // Sets the state and writes the row; with an event kind also appends that event (the
    // merchant-visible changes: paid, declined, parked, canceled...). Changes a request or its
    // answer already records in `attempts` (sending, reconciling, unknown, retry) get none.
    // The caller holds the transaction.
    void transition(storage::charge_record& c, domain::charge_state to, const std::string& detail,
                    const char* event_kind = nullptr, std::optional<std::string> data = {});
    // The facts every charge event's data carries.
    static domain::json_object charge_data(const storage::charge_record& c);
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
                  std::string detail, const std::string& actor,
                  std::optional<std::string> data = {});

std::int64_t to_unix(std::chrono::sys_seconds t);
std::chrono::sys_seconds from_unix(std::int64_t t);

}  // namespace billingd::scheduler
