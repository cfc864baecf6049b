// The outbox's SQL: channel cursors, delivery rows, and the operator's view of them
// (schema/NNNN_outbox.sql describes the tables). Every statement is prepared at construction.
//
// The store decides nothing; callers group writes in short transactions of their own (the
// delivery worker never writes inside a charging transaction).
// Errors: storage::error / storage::constraint_error. Thread safety: one thread, like the
// connection it is given (which must outlive it).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/records.hpp"
#include "storage/sqlite.hpp"

namespace billingd::outbox {

struct delivery_row {
    std::string channel;
    std::int64_t event_id = 0;
    std::optional<std::int64_t> subscription_id;
    std::string state;  // pending | dead
    std::int64_t attempts = 0;
    std::optional<std::int64_t> next_attempt_at;  // NULL: waits behind an earlier event
    std::optional<std::int64_t> last_attempt_at;
    std::optional<std::string> last_error;
    std::int64_t created_at = 0;
    std::string kind;  // of the event
    std::int64_t event_at = 0;
};

struct channel_row {
    std::string channel;
    std::int64_t cursor = 0;
    std::int64_t backlog = 0;  // events after the cursor (all kinds)
    std::int64_t pending = 0;
    std::int64_t dead = 0;
};

class outbox_store {
  public:
    explicit outbox_store(storage::connection& db);
    ~outbox_store();
    outbox_store(const outbox_store&) = delete;
    outbox_store& operator=(const outbox_store&) = delete;

    storage::connection& db() { return db_; }

    // The channel's cursor; a channel seen for the first time starts at the newest event.
    std::int64_t open_channel(std::string_view channel, std::int64_t now);
    void set_cursor(std::string_view channel, std::int64_t cursor, std::int64_t now);

    std::vector<storage::event_record> events_after(std::int64_t after_id, int limit);
    std::optional<storage::event_record> event(std::int64_t id);

    bool has_delivery(std::string_view channel, std::int64_t event_id);
    // A pending delivery of this subscription for an earlier event exists (order: wait).
    bool blocked(std::string_view channel, std::int64_t subscription_id, std::int64_t event_id);
    // Pending rows whose time has come and that no earlier pending row of their subscription
    // holds back, earliest first.
    std::vector<delivery_row> due(std::string_view channel, std::int64_t now, int limit);
    std::optional<std::int64_t> next_due_at(std::string_view channel);

    // A row that waits behind an earlier pending event of its subscription.
    void insert_waiting(std::string_view channel, const storage::event_record& e, std::int64_t now);
    // Records a failed attempt: pending until `next_attempt_at`, or dead when that is nullopt.
    // `first_failure` creates the row (created_at = now) if there is none.
    void record_failure(std::string_view channel, const storage::event_record& e,
                        std::int64_t attempts, std::optional<std::int64_t> next_attempt_at,
                        const std::string& error, std::int64_t now);
    void delete_delivery(std::string_view channel, std::int64_t event_id);
    // The earliest waiting row of the subscription (if it now heads the queue) becomes due.
    void release_next(std::string_view channel, std::int64_t subscription_id, std::int64_t now);

    // --- operators ---
    std::vector<delivery_row> list(std::optional<std::string> state, int limit);
    std::vector<channel_row> channels();
    // Makes the event's delivery (dead, failing, or already delivered: sent again) pending
    // now, for every configured channel (or `channel`); returns the rows made pending.
    // An event after a channel's cursor is not touched there: it will be delivered anyway.
    int redeliver(std::int64_t event_id, std::int64_t now);
    int redeliver_all_dead(std::int64_t now);

  private:
    struct statements;
    storage::connection& db_;
    std::unique_ptr<statements> st_;
};

}  // namespace billingd::outbox
