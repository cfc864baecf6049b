#include "domain/text.hpp"
#include "outbox/outbox_store.hpp"

namespace billingd::outbox {
namespace {

using storage::collect;
using storage::statement;

constexpr std::string_view delivery_columns =
    "d.channel, d.event_id, d.subscription_id, d.state, d.attempts, d.next_attempt_at, "
    "d.last_attempt_at, d.last_error, d.created_at, e.kind, e.at";

std::string deliveries(std::string_view rest) {
    std::string sql = "SELECT ";
    sql += delivery_columns;
    sql += " FROM outbox_deliveries d JOIN events e ON e.id = d.event_id ";
    sql += rest;
    return sql;
}

delivery_row read_delivery(const statement& st) {
    delivery_row d;
    d.channel = st.text(0);
    d.event_id = st.int64(1);
    d.subscription_id = st.optional_int64(2);
    d.state = st.text(3);
    d.attempts = st.int64(4);
    d.next_attempt_at = st.optional_int64(5);
    d.last_attempt_at = st.optional_int64(6);
    d.last_error = st.optional_text(7);
    d.created_at = st.int64(8);
    d.kind = st.text(9);
    d.event_at = st.int64(10);
    return d;
}

constexpr std::string_view event_select =
    "SELECT id, at, subscription_id, charge_id, kind, from_state, to_state, detail, actor, data "
    "FROM events ";

storage::event_record read_event(const statement& st) {
    storage::event_record e;
    e.id = st.int64(0);
    e.at = st.int64(1);
    e.subscription_id = st.optional_int64(2);
    e.charge_id = st.optional_int64(3);
    e.kind = st.text(4);
    e.from_state = st.optional_text(5);
    e.to_state = st.optional_text(6);
    e.detail = st.optional_text(7);
    e.actor = st.text(8);
    e.data = st.optional_text(9);
    return e;
}

std::optional<std::int64_t> single(statement& st) {
    std::optional<std::int64_t> v;
    try {
        if (st.step()) v = st.optional_int64(0);
    } catch (...) {
        st.reset();
        throw;
    }
    st.reset();
    return v;
}

}  // namespace

struct outbox_store::statements {
    explicit statements(storage::connection& db)
        : open_channel(db,
                       "INSERT INTO outbox_channels (channel, cursor, created_at, updated_at) "
                       "VALUES (?1, (SELECT coalesce(max(id), 0) FROM events), ?2, ?2) "
                       "ON CONFLICT (channel) DO NOTHING"),
          cursor_of(db, "SELECT cursor FROM outbox_channels WHERE channel = ?1"),
          set_cursor(db,
                     "UPDATE outbox_channels SET cursor = ?2, updated_at = ?3 "
                     "WHERE channel = ?1 AND cursor < ?2"),
          events_after(db, std::string(event_select) + "WHERE id > ?1 ORDER BY id LIMIT ?2"),
          event(db, std::string(event_select) + "WHERE id = ?1"),
          has_delivery(db, "SELECT 1 FROM outbox_deliveries WHERE channel = ?1 AND event_id = ?2"),
          blocked(db,
                  "SELECT 1 FROM outbox_deliveries WHERE channel = ?1 AND state = 'pending' "
                  "AND subscription_id = ?2 AND event_id < ?3 LIMIT 1"),
          due(db, deliveries("WHERE d.channel = ?1 AND d.state = 'pending' "
                             "AND d.next_attempt_at <= ?2 AND NOT EXISTS (SELECT 1 FROM "
                             "outbox_deliveries b WHERE b.channel = d.channel AND b.state = "
                             "'pending' AND b.subscription_id = d.subscription_id AND "
                             "b.event_id < d.event_id) ORDER BY d.next_attempt_at, d.event_id "
                             "LIMIT ?3")),
          next_due_at(db,
                      "SELECT min(d.next_attempt_at) FROM outbox_deliveries d WHERE d.channel = "
                      "?1 AND d.state = 'pending' AND d.next_attempt_at IS NOT NULL AND NOT "
                      "EXISTS (SELECT 1 FROM outbox_deliveries b WHERE b.channel = d.channel "
                      "AND b.state = 'pending' AND b.subscription_id = d.subscription_id AND "
                      "b.event_id < d.event_id)"),
          insert_waiting(db,
                         "INSERT INTO outbox_deliveries (channel, event_id, subscription_id, "
                         "state, attempts, next_attempt_at, created_at, updated_at) VALUES "
                         "(?1, ?2, ?3, 'pending', 0, NULL, ?4, ?4) "
                         "ON CONFLICT (channel, event_id) DO NOTHING"),
          record_failure(db,
                         "INSERT INTO outbox_deliveries (channel, event_id, subscription_id, "
                         "state, attempts, next_attempt_at, last_attempt_at, last_error, "
                         "created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?7, ?7) "
                         "ON CONFLICT (channel, event_id) DO UPDATE SET state = excluded.state, "
                         "attempts = excluded.attempts, next_attempt_at = "
                         "excluded.next_attempt_at, last_attempt_at = excluded.last_attempt_at, "
                         "last_error = excluded.last_error, updated_at = excluded.updated_at"),
          delete_delivery(db, "DELETE FROM outbox_deliveries WHERE channel = ?1 AND event_id = ?2"),
          release_next(db,
                       "UPDATE outbox_deliveries SET next_attempt_at = ?3, updated_at = ?3 "
                       "WHERE channel = ?1 AND next_attempt_at IS NULL AND event_id = (SELECT "
                       "min(event_id) FROM outbox_deliveries WHERE channel = ?1 AND state = "
                       "'pending' AND subscription_id = ?2)"),
          list_all(db, deliveries("ORDER BY d.event_id, d.channel LIMIT ?1")),
          list_state(db, deliveries("WHERE d.state = ?2 ORDER BY d.event_id, d.channel LIMIT ?1")),
          channels(db,
                   "SELECT c.channel, c.cursor, (SELECT count(*) FROM events WHERE id > "
                   "c.cursor), (SELECT count(*) FROM outbox_deliveries d WHERE d.channel = "
                   "c.channel AND d.state = 'pending'), (SELECT count(*) FROM "
                   "outbox_deliveries d WHERE d.channel = c.channel AND d.state = 'dead') "
                   "FROM outbox_channels c ORDER BY c.channel"),
          redeliver(db,
                    "INSERT INTO outbox_deliveries (channel, event_id, subscription_id, state, "
                    "attempts, next_attempt_at, created_at, updated_at) SELECT c.channel, e.id, "
                    "e.subscription_id, 'pending', 0, ?2, ?2, ?2 FROM outbox_channels c JOIN "
                    "events e ON e.id = ?1 WHERE c.cursor >= e.id ON CONFLICT (channel, "
                    "event_id) DO UPDATE SET state = 'pending', next_attempt_at = ?2, "
                    "created_at = ?2, updated_at = ?2"),
          redeliver_all_dead(db,
                             "UPDATE outbox_deliveries SET state = 'pending', next_attempt_at = "
                             "?1, created_at = ?1, updated_at = ?1 WHERE state = 'dead'") {}

    statement open_channel;
    statement cursor_of;
    statement set_cursor;
    statement events_after;
    statement event;
    statement has_delivery;
    statement blocked;
    statement due;
    statement next_due_at;
    statement insert_waiting;
    statement record_failure;
    statement delete_delivery;
    statement release_next;
    statement list_all;
    statement list_state;
    statement channels;
    statement redeliver;
    statement redeliver_all_dead;
};

outbox_store::outbox_store(storage::connection& db)
    : db_(db), st_(std::make_unique<statements>(db)) {}

outbox_store::~outbox_store() = default;

std::int64_t outbox_store::open_channel(std::string_view channel, std::int64_t now) {
    st_->open_channel.bind(1, channel).bind(2, now).run();
    st_->cursor_of.bind(1, channel);
    return single(st_->cursor_of).value_or(0);
}

void outbox_store::set_cursor(std::string_view channel, std::int64_t cursor, std::int64_t now) {
    st_->set_cursor.bind(1, channel).bind(2, cursor).bind(3, now).run();
}

std::vector<storage::event_record> outbox_store::events_after(std::int64_t after_id, int limit) {
    st_->events_after.bind(1, after_id).bind(2, limit);
    return collect<storage::event_record>(st_->events_after, read_event);
}

std::optional<storage::event_record> outbox_store::event(std::int64_t id) {
    st_->event.bind(1, id);
    auto rows = collect<storage::event_record>(st_->event, read_event);
    if (rows.empty()) return std::nullopt;
    return rows.front();
}

bool outbox_store::has_delivery(std::string_view channel, std::int64_t event_id) {
    st_->has_delivery.bind(1, channel).bind(2, event_id);
    return single(st_->has_delivery).has_value();
}

bool outbox_store::blocked(std::string_view channel, std::int64_t subscription_id,
                           std::int64_t event_id) {
    st_->blocked.bind(1, channel).bind(2, subscription_id).bind(3, event_id);
    return single(st_->blocked).has_value();
}

std::vector<delivery_row> outbox_store::due(std::string_view channel, std::int64_t now, int limit) {
    st_->due.bind(1, channel).bind(2, now).bind(3, limit);
    return collect<delivery_row>(st_->due, read_delivery);
}

std::optional<std::int64_t> outbox_store::next_due_at(std::string_view channel) {
    st_->next_due_at.bind(1, channel);
    return single(st_->next_due_at);
}

void outbox_store::insert_waiting(std::string_view channel, const storage::event_record& e,
                                  std::int64_t now) {
    st_->insert_waiting.bind(1, channel).bind(2, e.id).bind(3, e.subscription_id).bind(4, now);
    st_->insert_waiting.run();
}

void outbox_store::record_failure(std::string_view channel, const storage::event_record& e,
                                  std::int64_t attempts,
                                  std::optional<std::int64_t> next_attempt_at,
                                  const std::string& error, std::int64_t now) {
    auto& st = st_->record_failure;
    st.bind(1, channel).bind(2, e.id).bind(3, e.subscription_id);
    st.bind(4, next_attempt_at ? "pending" : "dead").bind(5, attempts).bind(6, next_attempt_at);
    st.bind(7, now).bind(8, domain::cut_utf8(error, 1000));
    st.run();
}

void outbox_store::delete_delivery(std::string_view channel, std::int64_t event_id) {
    st_->delete_delivery.bind(1, channel).bind(2, event_id).run();
}

void outbox_store::release_next(std::string_view channel, std::int64_t subscription_id,
                                std::int64_t now) {
    st_->release_next.bind(1, channel).bind(2, subscription_id).bind(3, now).run();
}

std::vector<delivery_row> outbox_store::list(std::optional<std::string> state, int limit) {
    if (!state) {
        st_->list_all.bind(1, limit);
        return collect<delivery_row>(st_->list_all, read_delivery);
    }
    st_->list_state.bind(1, limit).bind(2, *state);
    return collect<delivery_row>(st_->list_state, read_delivery);
}

std::vector<channel_row> outbox_store::channels() {
    return collect<channel_row>(st_->channels, [](const statement& st) {
        return channel_row{st.text(0), st.int64(1), st.int64(2), st.int64(3), st.int64(4)};
    });
}

int outbox_store::redeliver(std::int64_t event_id, std::int64_t now) {
    st_->redeliver.bind(1, event_id).bind(2, now).run();
    return db_.changes();
}

int outbox_store::redeliver_all_dead(std::int64_t now) {
    st_->redeliver_all_dead.bind(1, now).run();
    return db_.changes();
}

}  // namespace billingd::outbox
