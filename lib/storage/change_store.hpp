// Data access for what changes around the charge (schema/0007): the price schedule, consent,
// calendar and card changes, card changes on an open period (rekeys), and refunds with their
// journal and the console-refund check.
//
// Kept apart from store.hpp because none of it is on the charge path: statements are prepared
// on first use and cached, so a daemon that never refunds never prepares them. Like store:
// reads and writes rows, decides nothing; the caller holds the write transaction. One thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "storage/records.hpp"
#include "storage/sqlite.hpp"

namespace billingd::storage {

// One row of `refund_attempts`: a request or an answer of a refund, a payment read or a
// console check (like attempt_record for charges).
struct refund_attempt_record {
    std::int64_t id = 0;
    std::int64_t at = 0;
    std::optional<std::int64_t> refund_id;
    std::optional<std::int64_t> charge_id;
    std::optional<std::int64_t> request_id;
    std::string kind;   // cancel | payment | cancelled_list
    std::string phase;  // request | answer
    std::optional<std::string> imp_uid;
    std::optional<std::int64_t> amount;
    std::optional<std::int64_t> checksum;
    std::optional<std::string> request_summary;
    std::optional<std::int64_t> request_written;
    std::optional<std::int64_t> http_status;
    std::optional<std::int64_t> portone_code;
    std::optional<std::string> message;
    std::optional<std::string> outcome;
    std::optional<std::int64_t> latency_ms;
    std::optional<std::string> raw_answer;
};

struct rekey_record {
    std::int64_t id = 0;
    std::int64_t charge_id = 0;
    std::string old_merchant_uid;
    std::string old_customer_uid;
    std::string new_merchant_uid;
    std::string new_customer_uid;
    std::string old_state;
    std::string lookup;
    std::int64_t at = 0;
    std::string actor;
};

class change_store {
  public:
    explicit change_store(connection& db);
    ~change_store();
    change_store(const change_store&) = delete;
    change_store& operator=(const change_store&) = delete;

    // --- price schedule ---
    std::vector<price_entry> price_entries(std::int64_t subscription_id);
    // The entry in effect at `period`: the one with the largest from_period <= period.
    std::optional<price_entry> price_at(std::int64_t subscription_id, std::int64_t period);
    // Inserts the entry, or replaces the one at the same period if it is not applied yet.
    // Returns false when an applied entry is there (its period has a charge).
    bool put_price_entry(const price_entry& e);
    // Marks every entry up to `period` applied.
    void mark_prices_applied(std::int64_t subscription_id, std::int64_t period, std::int64_t now);
    // The smallest from_period > `after` of an entry not applied, if any.
    std::optional<std::int64_t> next_price_period(std::int64_t subscription_id, std::int64_t after);
    void set_price_change_period(std::int64_t subscription_id, std::optional<std::int64_t> period,
                                 std::int64_t now);
    // The subscription's current price (what its next charge asks for, unless the schedule
    // says otherwise at that period).
    void set_price(std::int64_t subscription_id, std::int64_t amount, const std::string& order_name,
                   std::int64_t now);

    // --- consent ---
    bool has_consent(std::int64_t subscription_id, std::int64_t period);
    void insert_consent(std::int64_t subscription_id, std::int64_t period, std::int64_t now,
                        const std::string& actor);
    void set_consent_hold(std::int64_t subscription_id, std::optional<std::int64_t> period,
                          std::optional<std::int64_t> since, std::int64_t now);

    // --- calendar and card ---
    void set_calendar(std::int64_t subscription_id, const std::string& anchor_date,
                      const std::string& charge_time, const std::string& interval_unit,
                      std::int64_t interval_count, std::int64_t anchor_period,
                      std::optional<std::int64_t> next_due_at, std::int64_t now);
    void set_customer_uid(std::int64_t subscription_id, const std::string& customer_uid,
                          std::int64_t now);

    // --- rekeys ---
    std::vector<rekey_record> rekeys_of_charge(std::int64_t charge_id);
    // Records the rekey and moves the charge row to the new request (the schema allows that
    // change only with this record).
    void rekey(const rekey_record& r);

    // --- refunds ---
    std::int64_t insert_refund(const refund_record& r);
    std::optional<refund_record> find_refund(std::int64_t id);
    std::vector<refund_record> refunds_of_charge(std::int64_t charge_id);
    std::optional<refund_record> open_refund_of_charge(std::int64_t charge_id);
    // Rows with next_action_at <= now, earliest first.
    std::vector<refund_record> due_refunds(std::int64_t now, int limit);
    std::vector<refund_record> refunds_in_state(const std::string& state, int limit);
    // Rows a request or lookup may have left for (sending, or unknown with no next action):
    // what a restart must look up. At most `limit`.
    std::vector<refund_record> refunds_on_the_wire(int limit);
    // Takes a row out of the due set (next_action_at NULL), with a reason when given, touching
    // no column with a CHECK: works on a row written with the checks bypassed.
    void stop_refund(std::int64_t id, std::optional<std::string> reason, std::int64_t now);
    std::optional<std::int64_t> earliest_refund_action();
    void update_refund(const refund_record& r);
    // Whether a refund row of this charge already records the cancellation (by PortOne's
    // cancellation_id, else its pg_tid and amount).
    bool knows_cancellation(std::int64_t charge_id, const std::string& cancellation_id,
                            const std::string& pg_tid, std::int64_t amount);
    void set_refunded_amount(std::int64_t charge_id, std::int64_t amount, std::int64_t now);
    std::int64_t append_refund_attempt(const refund_attempt_record& a);
    std::vector<refund_attempt_record> refund_attempts(std::int64_t refund_id);

    // --- console check ---
    std::optional<std::int64_t> console_checked_to();
    std::optional<std::int64_t> console_checked_at();
    void set_console_checked(std::int64_t checked_to, std::int64_t at);
    // The paid charges read one by one: ids after `after`, paid since `paid_since` and not
    // fully refunded, at most `limit`, by id: (id, imp_uid).
    std::vector<std::pair<std::int64_t, std::string>> charges_to_sweep(std::int64_t after,
                                                                       std::int64_t paid_since,
                                                                       int limit);
    std::int64_t console_swept_after();
    void set_console_swept_after(std::int64_t charge_id);

  private:
    struct cache;
    statement& prepared(const char* sql);
    connection& db_;
    std::unique_ptr<cache> cache_;
};

}  // namespace billingd::storage
