// billingd's data access: every query the daemon and billingctl run, prepared at open.
//
// The store does not decide anything; it reads and writes rows. Callers group writes in a
// write_transaction (store::begin) so a state change, its journal row and its event commit
// together. Errors: storage::error (infrastructure), storage::constraint_error (a row the
// schema rejects). Thread safety: one thread, like its connection.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/records.hpp"
#include "storage/sqlite.hpp"

namespace billingd::storage {

// The configuration names a merchant_uid prefix other than the database's install id.
class install_mismatch : public error {
  public:
    using error::error;
};

class store {
  public:
    explicit store(open_options options);
    ~store();
    store(const store&) = delete;
    store& operator=(const store&) = delete;

    connection& db() { return db_; }
    write_transaction begin() { return write_transaction{db_}; }

    // --- subscriptions ---
    std::int64_t insert_subscription(const subscription_record& s);
    std::optional<subscription_record> find_subscription(std::int64_t id);
    // Billable rows with next_due_at <= now, earliest first, at most `limit`, each with the
    // state of its previous period's charge (subscription_record::previous_charge). Callers
    // move next_due_at of each row they handle and query again for the next batch.
    std::vector<subscription_record> due_subscriptions(std::int64_t now, int limit, int offset = 0);
    // Billable rows with no schedule yet: new rows, or rows whose next_due_at was cleared by
    // hand. Rows whose previous period's charge is still open (in doubt, in dunning, parked)
    // are excluded: they wait for it to settle.
    std::vector<subscription_record> unscheduled_subscriptions(std::int64_t after_id, int limit);
    std::vector<subscription_record> list_subscriptions(std::optional<std::string> status,
                                                        int limit);
    void set_schedule(std::int64_t id, std::int64_t next_period,
                      std::optional<std::int64_t> next_due_at, std::int64_t now);
    void set_status(std::int64_t id, domain::subscription_status status, std::int64_t now);
    void set_cancel_at_period_end(std::int64_t id, bool value, std::int64_t now);
    void set_needs_attention(std::int64_t id, std::optional<std::string> reason, std::int64_t now);
    // Sets needs_attention and clears next_due_at, touching no column with a CHECK on the row's
    // values (next_period, amount, ...): works on a row written with the checks bypassed.
    void flag_subscription(std::int64_t id, const std::string& reason, std::int64_t now);
    // True when a charge of this subscription is neither final nor declined-and-exhausted.
    bool has_open_charge(std::int64_t subscription_id);

    // --- charges ---
    // Inserts the period's charge unless one exists; returns the (new or existing) row and
    // whether this call inserted it.
    std::pair<charge_record, bool> materialise_charge(const charge_record& c);
    // Inserts a period's charge as it is (state, attempt_count, next_action_at, park_reason,
    // fail_reason); returns its id, or nothing when the period already has a charge.
    std::optional<std::int64_t> insert_charge(const charge_record& c);
    std::optional<charge_record> find_charge(std::int64_t id);
    // The row's state and updated_at only: whether it is still as a caller wrote it.
    std::optional<std::pair<domain::charge_state, std::int64_t>> charge_version(std::int64_t id);
    std::optional<charge_record> find_charge_by_period(std::int64_t subscription_id,
                                                       std::int64_t period_index);
    std::optional<charge_record> find_charge_by_merchant_uid(const std::string& merchant_uid);
    // Rows whose next_action_at <= now, earliest first.
    std::vector<charge_record> due_charges(std::int64_t now, int limit);
    // Due rows in doubt only (sending/unknown/reconciling): what may still be done while
    // sending is paused by the circuit breaker.
    std::vector<charge_record> due_in_doubt_charges(std::int64_t now, int limit);
    std::vector<charge_record> charges_in_state(domain::charge_state state, int limit);
    std::vector<charge_record> charges_of_subscription(std::int64_t subscription_id);
    // Writes every mutable column of `c` (state, counters, times, results).
    void update_charge(const charge_record& c);
    // Writes only the columns in which `after` differs from `before` (the row as stored): an
    // UPDATE names no unchanged column, so SQLite rewrites no index and fires no trigger on
    // them. Nothing differs: no statement at all.
    void update_charge(const charge_record& before, const charge_record& after);
    // When the latest charge request for this charge was written ahead (journal), if ever.
    std::optional<std::int64_t> last_charge_request_at(std::int64_t charge_id);
    // Charge requests written ahead after `since` (the hourly guardrail reads the journal).
    std::int64_t charge_requests_since(std::int64_t since);
    // The time of the charge request at 0-based `rank` among those after `since`, oldest first.
    std::optional<std::int64_t> charge_request_time(std::int64_t since, std::int64_t rank);

    // Earliest next_due_at / next_action_at of anything billable, for the event loop's sleep.
    std::optional<std::int64_t> earliest_wakeup();

    // --- journal ---
    std::int64_t append_attempt(const attempt_record& a);
    std::int64_t append_event(const event_record& e);
    std::vector<attempt_record> attempts_of_charge(std::int64_t charge_id);
    std::vector<event_record> events_of_subscription(std::int64_t subscription_id);

    // --- install identity ---
    install_record install();
    // The install id, set on first use to `configured_prefix` or, when that is empty, to a
    // random one. Throws install_mismatch when the database already has a different id and
    // a prefix is configured (a configuration for another database).
    std::string claim_install_id(std::string_view configured_prefix);
    // Records that billingd ran on the real clock (first time only).
    void mark_live(std::int64_t now);

  private:
    struct statements;
    struct charge_updates;
    connection db_;
    std::unique_ptr<statements> st_;
    std::unique_ptr<charge_updates> charge_updates_;
};

}  // namespace billingd::storage
