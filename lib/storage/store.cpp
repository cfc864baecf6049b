#include "storage/store.hpp"

#include <cassert>
#include <iterator>
#include <unordered_map>

namespace billingd::storage {
namespace {

constexpr std::string_view subscription_columns =
    "id, customer_uid, amount, currency, order_name, interval_unit, interval_count, "
    "anchor_date, charge_time, time_zone, status, trial_end_at, cancel_at_period_end, "
    "max_periods, buyer_name, buyer_email, buyer_tel, next_period, next_due_at, "
    "needs_attention, created_at, updated_at, uid_key, price_change_period, anchor_period, "
    "consent_period, consent_since";

constexpr std::string_view charge_columns =
    "id, subscription_id, period_index, period_start, merchant_uid, customer_uid, amount, "
    "currency, order_name, state, attempt_count, decline_count, transient_count, lookup_count, "
    "first_declined_at, unknown_since, next_action_at, imp_uid, paid_at, fail_reason, "
    "park_reason, created_at, updated_at, refusal_count, last_refusal, refunded_amount";

constexpr std::string_view attempt_columns =
    "id, at, charge_id, request_id, kind, phase, merchant_uid, attempt_number, amount, "
    "request_summary, request_written, http_status, portone_code, message, outcome, imp_uid, "
    "latency_ms, raw_answer";

constexpr std::string_view event_columns =
    "id, at, subscription_id, charge_id, kind, from_state, to_state, detail, actor, data";

// Spelled as the partial indexes subscriptions_due and subscriptions_unscheduled spell it, so
// that the planner uses them (and without IN: see schema/0004_charge_path.sql).
constexpr std::string_view billable =
    "(status = 'trialing' OR status = 'active' OR status = 'past_due')";

// "a, b" -> "s.a, s.b"
std::string prefixed(std::string_view columns, std::string_view prefix) {
    std::string out{prefix};
    for (char ch : columns) {
        out += ch;
        if (ch == ' ') out += prefix;
    }
    return out;
}

std::string select_from(std::string_view columns, std::string_view rest) {
    std::string sql{"SELECT "};
    sql += columns;
    sql += ' ';
    sql += rest;
    return sql;
}

subscription_record read_subscription(const statement& st) {
    subscription_record s;
    s.id = st.int64(0);
    s.customer_uid = st.text(1);
    s.amount = st.int64(2);
    s.currency = st.text(3);
    s.order_name = st.text(4);
    s.interval_unit = st.text(5);
    s.interval_count = st.int64(6);
    s.anchor_date = st.text(7);
    s.charge_time = st.text(8);
    s.time_zone = st.text(9);
    // The CHECK constraint guarantees a known status.
    s.status = domain::parse_subscription_status(st.text(10))
                   .value_or(domain::subscription_status::paused);
    s.trial_end_at = st.optional_int64(11);
    s.cancel_at_period_end = st.int64(12) != 0;
    s.max_periods = st.optional_int64(13);
    s.buyer_name = st.optional_text(14);
    s.buyer_email = st.optional_text(15);
    s.buyer_tel = st.optional_text(16);
    s.next_period = st.int64(17);
    s.next_due_at = st.optional_int64(18);
    s.needs_attention = st.optional_text(19);
    s.created_at = st.int64(20);
    s.updated_at = st.int64(21);
    s.uid_key = st.text(22);
    s.price_change_period = st.optional_int64(23);
    s.anchor_period = st.int64(24);
    s.consent_period = st.optional_int64(25);
    s.consent_since = st.optional_int64(26);
    return s;
}

charge_record read_charge(const statement& st) {
    charge_record c;
    c.id = st.int64(0);
    c.subscription_id = st.int64(1);
    c.period_index = st.int64(2);
    c.period_start = st.int64(3);
    c.merchant_uid = st.text(4);
    c.customer_uid = st.text(5);
    c.amount = st.int64(6);
    c.currency = st.text(7);
    c.order_name = st.text(8);
    c.state = domain::parse_charge_state(st.text(9)).value_or(domain::charge_state::parked);
    c.attempt_count = st.int64(10);
    c.decline_count = st.int64(11);
    c.transient_count = st.int64(12);
    c.lookup_count = st.int64(13);
    c.first_declined_at = st.optional_int64(14);
    c.unknown_since = st.optional_int64(15);
    c.next_action_at = st.optional_int64(16);
    c.imp_uid = st.optional_text(17);
    c.paid_at = st.optional_int64(18);
    c.fail_reason = st.optional_text(19);
    c.park_reason = st.optional_text(20);
    c.created_at = st.int64(21);
    c.updated_at = st.int64(22);
    c.refusal_count = st.int64(23);
    c.last_refusal = st.optional_text(24);
    c.refunded_amount = st.int64(25);
    return c;
}

attempt_record read_attempt(const statement& st) {
    attempt_record a;
    a.id = st.int64(0);
    a.at = st.int64(1);
    a.charge_id = st.optional_int64(2);
    a.request_id = st.optional_int64(3);
    a.kind = st.text(4);
    a.phase = st.text(5);
    a.merchant_uid = st.optional_text(6);
    a.attempt_number = st.optional_int64(7);
    a.amount = st.optional_int64(8);
    a.request_summary = st.optional_text(9);
    a.request_written = st.optional_int64(10);
    a.http_status = st.optional_int64(11);
    a.portone_code = st.optional_int64(12);
    a.message = st.optional_text(13);
    a.outcome = st.optional_text(14);
    a.imp_uid = st.optional_text(15);
    a.latency_ms = st.optional_int64(16);
    a.raw_answer = st.optional_text(17);
    return a;
}

event_record read_event(const statement& st) {
    event_record e;
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

}  // namespace

struct store::statements {
    explicit statements(connection& db)
        : insert_subscription(db,
                              "INSERT INTO subscriptions (customer_uid, amount, currency, "
                              "order_name, interval_unit, interval_count, anchor_date, "
                              "charge_time, time_zone, status, trial_end_at, "
                              "cancel_at_period_end, max_periods, buyer_name, buyer_email, "
                              "buyer_tel, next_period, next_due_at, created_at, updated_at) "
                              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, "
                              "?14, ?15, ?16, ?17, ?18, ?19, ?19)"),
          find_subscription(db,
                            select_from(subscription_columns, "FROM subscriptions WHERE id = ?1")),
          subscription_schedule(db,
                                "SELECT id, status, next_period, next_due_at, max_periods FROM "
                                "subscriptions WHERE id = ?1"),
          due_subscriptions(
              db,
              "SELECT " + prefixed(subscription_columns, "s.") +
                  ", c.state FROM subscriptions s LEFT JOIN charges c ON c.subscription_id = s.id "
                  "AND c.period_index = s.next_period - 1 WHERE s.next_due_at IS NOT NULL "
                  "AND s.next_due_at <= ?1 AND s.needs_attention IS NULL AND " +
                  std::string{billable} + " ORDER BY s.next_due_at LIMIT ?2 OFFSET ?3"),
          unscheduled_subscriptions(
              db, select_from(subscription_columns,
                              "FROM subscriptions s WHERE next_due_at IS NULL "
                              "AND needs_attention IS NULL AND " +
                                  std::string{billable} +
                                  " AND id > ?1 AND NOT EXISTS (SELECT 1 FROM charges c WHERE "
                                  "c.subscription_id = s.id AND c.period_index = s.next_period - 1 "
                                  "AND c.state NOT IN ('paid', 'skipped', 'canceled')) "
                                  "ORDER BY id LIMIT ?2")),
          list_subscriptions(db, select_from(subscription_columns,
                                             "FROM subscriptions WHERE ?1 IS NULL OR status = ?1 "
                                             "ORDER BY id LIMIT ?2")),
          set_schedule(db,
                       "UPDATE subscriptions SET next_period = ?2, next_due_at = ?3, "
                       "updated_at = ?4 WHERE id = ?1"),
          set_status(db, "UPDATE subscriptions SET status = ?2, updated_at = ?3 WHERE id = ?1"),
          set_cancel_at_period_end(db,
                                   "UPDATE subscriptions SET cancel_at_period_end = ?2, "
                                   "updated_at = ?3 WHERE id = ?1"),
          set_needs_attention(db,
                              "UPDATE subscriptions SET needs_attention = ?2, updated_at = ?3 "
                              "WHERE id = ?1"),
          flag_subscription(db,
                            "UPDATE subscriptions SET needs_attention = ?2, next_due_at = NULL, "
                            "updated_at = ?3 WHERE id = ?1"),
          has_open_charge(db,
                          "SELECT EXISTS (SELECT 1 FROM charges WHERE subscription_id = ?1 AND "
                          "state NOT IN ('paid', 'skipped', 'canceled') AND "
                          "NOT (state = 'declined' AND next_action_at IS NULL))"),
          insert_charge(
              db,
              "INSERT INTO charges (subscription_id, period_index, period_start, merchant_uid, "
              "customer_uid, amount, currency, order_name, state, attempt_count, next_action_at, "
              "park_reason, fail_reason, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
              "?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14) "
              "ON CONFLICT (subscription_id, period_index) DO NOTHING"),
          find_charge_by_period(db, select_from(charge_columns,
                                                "FROM charges WHERE subscription_id = ?1 AND "
                                                "period_index = ?2")),
          find_charge(db, select_from(charge_columns, "FROM charges WHERE id = ?1")),
          charge_version(db, "SELECT state, updated_at FROM charges WHERE id = ?1"),
          find_charge_by_merchant_uid(
              db, select_from(charge_columns, "FROM charges WHERE merchant_uid = ?1")),
          due_charges(db, select_from(charge_columns,
                                      "FROM charges WHERE next_action_at IS NOT NULL AND "
                                      "next_action_at <= ?1 ORDER BY next_action_at LIMIT ?2")),
          due_in_doubt_charges(
              db, select_from(charge_columns,
                              "FROM charges WHERE next_action_at IS NOT NULL AND "
                              "next_action_at <= ?1 AND (state IN ('sending', 'unknown', "
                              "'reconciling') OR (state = 'retry_wait' AND unknown_since IS NOT "
                              "NULL)) ORDER BY next_action_at LIMIT ?2")),
          charges_in_state(db, select_from(charge_columns,
                                           "FROM charges WHERE state = ?1 ORDER BY id LIMIT ?2")),
          charges_of_subscription(db, select_from(charge_columns,
                                                  "FROM charges WHERE subscription_id = ?1 "
                                                  "ORDER BY period_index")),
          update_charge(db,
                        "UPDATE charges SET state = ?2, attempt_count = ?3, decline_count = ?4, "
                        "transient_count = ?5, lookup_count = ?6, first_declined_at = ?7, "
                        "unknown_since = ?8, next_action_at = ?9, imp_uid = ?10, paid_at = ?11, "
                        "fail_reason = ?12, park_reason = ?13, updated_at = ?14, "
                        "refusal_count = ?15, last_refusal = ?16 WHERE id = ?1"),
          earliest_subscription(db,
                                "SELECT min(next_due_at) FROM subscriptions WHERE next_due_at "
                                "IS NOT NULL AND needs_attention IS NULL AND " +
                                    std::string{billable}),
          earliest_charge(db,
                          "SELECT min(next_action_at) FROM charges WHERE next_action_at IS NOT "
                          "NULL"),
          append_attempt(db,
                         "INSERT INTO attempts (at, charge_id, request_id, kind, phase, "
                         "merchant_uid, attempt_number, amount, request_summary, "
                         "request_written, http_status, portone_code, message, outcome, "
                         "imp_uid, latency_ms, raw_answer) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
                         "?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"),
          append_event(
              db,
              "INSERT INTO events (at, subscription_id, charge_id, kind, from_state, "
              "to_state, detail, actor, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
          attempts_of_charge(
              db, select_from(attempt_columns, "FROM attempts WHERE charge_id = ?1 ORDER BY id")),
          events_of_subscription(db, select_from(event_columns,
                                                 "FROM events WHERE subscription_id = ?1 "
                                                 "ORDER BY id")),
          last_charge_request_at(db,
                                 "SELECT max(at) FROM attempts WHERE charge_id = ?1 AND "
                                 "kind = 'charge' AND phase = 'request'"),
          charge_requests_since(db,
                                "SELECT count(*) FROM attempts WHERE kind = 'charge' AND "
                                "phase = 'request' AND at > ?1"),
          charge_request_time(db,
                              "SELECT at FROM attempts WHERE kind = 'charge' AND "
                              "phase = 'request' AND at > ?1 ORDER BY at LIMIT 1 OFFSET ?2"),
          read_install(db, "SELECT install_id, created_at, live_since FROM install"),
          set_install_id(db, "UPDATE install SET install_id = ?1 WHERE install_id IS NULL"),
          set_random_install_id(db,
                                "UPDATE install SET install_id = lower(hex(randomblob(4))) "
                                "WHERE install_id IS NULL"),
          mark_live(db, "UPDATE install SET live_since = ?1 WHERE live_since IS NULL") {}

    statement insert_subscription;
    statement find_subscription;
    statement subscription_schedule;
    statement due_subscriptions;
    statement unscheduled_subscriptions;
    statement list_subscriptions;
    statement set_schedule;
    statement set_status;
    statement set_cancel_at_period_end;
    statement set_needs_attention;
    statement flag_subscription;
    statement has_open_charge;
    statement insert_charge;
    statement find_charge_by_period;
    statement find_charge;
    statement charge_version;
    statement find_charge_by_merchant_uid;
    statement due_charges;
    statement due_in_doubt_charges;
    statement charges_in_state;
    statement charges_of_subscription;
    statement update_charge;
    statement earliest_subscription;
    statement earliest_charge;
    statement append_attempt;
    statement append_event;
    statement attempts_of_charge;
    statement events_of_subscription;
    statement last_charge_request_at;
    statement charge_requests_since;
    statement charge_request_time;
    statement read_install;
    statement set_install_id;
    statement set_random_install_id;
    statement mark_live;
};

// UPDATE statements for the sets of charge columns that change together, prepared on first use.
struct store::charge_updates {
    std::unordered_map<std::uint32_t, statement> by_columns;
};

store::store(open_options options)
    : db_(std::move(options)),
      st_(std::make_unique<statements>(db_)),
      charge_updates_(std::make_unique<charge_updates>()) {}

store::~store() = default;

std::int64_t store::insert_subscription(const subscription_record& s) {
    auto& st = st_->insert_subscription;
    st.bind(1, s.customer_uid)
        .bind(2, s.amount)
        .bind(3, s.currency)
        .bind(4, s.order_name)
        .bind(5, s.interval_unit)
        .bind(6, s.interval_count)
        .bind(7, s.anchor_date)
        .bind(8, s.charge_time)
        .bind(9, s.time_zone)
        .bind(10, domain::to_string(s.status))
        .bind(11, s.trial_end_at)
        .bind(12, std::int64_t{s.cancel_at_period_end ? 1 : 0})
        .bind(13, s.max_periods)
        .bind(14, s.buyer_name)
        .bind(15, s.buyer_email)
        .bind(16, s.buyer_tel)
        .bind(17, s.next_period)
        .bind(18, s.next_due_at)
        .bind(19, s.created_at);
    st.run();
    return db_.last_insert_rowid();
}

std::optional<subscription_record> store::find_subscription(std::int64_t id) {
    auto& st = st_->find_subscription;
    st.bind(1, id);
    auto rows = collect<subscription_record>(st, read_subscription);
    if (rows.empty()) return std::nullopt;
    return rows.front();
}

std::optional<subscription_record> store::subscription_schedule(std::int64_t id) {
    auto& st = st_->subscription_schedule;
    st.bind(1, id);
    std::optional<subscription_record> s;
    if (st.step()) {
        s.emplace();
        s->id = st.int64(0);
        s->status = domain::parse_subscription_status(st.text(1))
                        .value_or(domain::subscription_status::paused);
        s->next_period = st.int64(2);
        s->next_due_at = st.optional_int64(3);
        s->max_periods = st.optional_int64(4);
    }
    st.reset();
    return s;
}

std::vector<subscription_record> store::due_subscriptions(std::int64_t now, int limit, int offset) {
    auto& st = st_->due_subscriptions;
    st.bind(1, now).bind(2, limit).bind(3, offset);
    return collect<subscription_record>(st, [](const statement& row) {
        auto s = read_subscription(row);
        if (auto state = row.optional_text(27))
            s.previous_charge = domain::parse_charge_state(*state);
        return s;
    });
}

std::vector<subscription_record> store::unscheduled_subscriptions(std::int64_t after_id,
                                                                  int limit) {
    auto& st = st_->unscheduled_subscriptions;
    st.bind(1, after_id).bind(2, limit);
    return collect<subscription_record>(st, read_subscription);
}

std::vector<subscription_record> store::list_subscriptions(std::optional<std::string> status,
                                                           int limit) {
    auto& st = st_->list_subscriptions;
    st.bind(1, status).bind(2, limit);
    return collect<subscription_record>(st, read_subscription);
}

void store::set_schedule(std::int64_t id, std::int64_t next_period,
                         std::optional<std::int64_t> next_due_at, std::int64_t now) {
    st_->set_schedule.bind(1, id).bind(2, next_period).bind(3, next_due_at).bind(4, now).run();
}

void store::set_status(std::int64_t id, domain::subscription_status status, std::int64_t now) {
    st_->set_status.bind(1, id).bind(2, domain::to_string(status)).bind(3, now).run();
}

void store::set_cancel_at_period_end(std::int64_t id, bool value, std::int64_t now) {
    st_->set_cancel_at_period_end.bind(1, id)
        .bind(2, std::int64_t{value ? 1 : 0})
        .bind(3, now)
        .run();
}

void store::set_needs_attention(std::int64_t id, std::optional<std::string> reason,
                                std::int64_t now) {
    st_->set_needs_attention.bind(1, id).bind(2, reason).bind(3, now).run();
}

void store::flag_subscription(std::int64_t id, const std::string& reason, std::int64_t now) {
    st_->flag_subscription.bind(1, id).bind(2, reason).bind(3, now).run();
}

bool store::has_open_charge(std::int64_t subscription_id) {
    auto& st = st_->has_open_charge;
    st.bind(1, subscription_id);
    st.step();
    const bool open = st.int64(0) != 0;
    st.reset();
    return open;
}

std::pair<charge_record, bool> store::materialise_charge(const charge_record& c) {
    const bool inserted = insert_charge(c).has_value();
    auto row = find_charge_by_period(c.subscription_id, c.period_index);
    assert(row);
    return {*row, inserted};
}

std::optional<std::pair<domain::charge_state, std::int64_t>> store::charge_version(
    std::int64_t id) {
    auto& st = st_->charge_version;
    st.bind(1, id);
    std::optional<std::pair<domain::charge_state, std::int64_t>> version;
    if (st.step())
        version.emplace(
            domain::parse_charge_state(st.text(0)).value_or(domain::charge_state::parked),
            st.int64(1));
    st.reset();
    return version;
}

std::optional<std::int64_t> store::insert_charge(const charge_record& c) {
    auto& st = st_->insert_charge;
    st.bind(1, c.subscription_id)
        .bind(2, c.period_index)
        .bind(3, c.period_start)
        .bind(4, c.merchant_uid)
        .bind(5, c.customer_uid)
        .bind(6, c.amount)
        .bind(7, c.currency)
        .bind(8, c.order_name)
        .bind(9, domain::to_string(c.state))
        .bind(10, c.attempt_count)
        .bind(11, c.next_action_at)
        .bind(12, c.park_reason)
        .bind(13, c.fail_reason)
        .bind(14, c.created_at);
    st.run();
    if (db_.changes() != 1) return std::nullopt;
    return db_.last_insert_rowid();
}

std::optional<charge_record> store::find_charge_by_period(std::int64_t subscription_id,
                                                          std::int64_t period_index) {
    auto& st = st_->find_charge_by_period;
    st.bind(1, subscription_id).bind(2, period_index);
    auto rows = collect<charge_record>(st, read_charge);
    if (rows.empty()) return std::nullopt;
    return rows.front();
}

std::optional<charge_record> store::find_charge(std::int64_t id) {
    auto& st = st_->find_charge;
    st.bind(1, id);
    auto rows = collect<charge_record>(st, read_charge);
    if (rows.empty()) return std::nullopt;
    return rows.front();
}

std::optional<charge_record> store::find_charge_by_merchant_uid(const std::string& merchant_uid) {
    auto& st = st_->find_charge_by_merchant_uid;
    st.bind(1, merchant_uid);
    auto rows = collect<charge_record>(st, read_charge);
    if (rows.empty()) return std::nullopt;
    return rows.front();
}

std::vector<charge_record> store::due_charges(std::int64_t now, int limit) {
    auto& st = st_->due_charges;
    st.bind(1, now).bind(2, limit);
    return collect<charge_record>(st, read_charge);
}

std::vector<charge_record> store::due_in_doubt_charges(std::int64_t now, int limit) {
    auto& st = st_->due_in_doubt_charges;
    st.bind(1, now).bind(2, limit);
    return collect<charge_record>(st, read_charge);
}

std::vector<charge_record> store::charges_in_state(domain::charge_state state, int limit) {
    auto& st = st_->charges_in_state;
    st.bind(1, domain::to_string(state)).bind(2, limit);
    return collect<charge_record>(st, read_charge);
}

std::vector<charge_record> store::charges_of_subscription(std::int64_t subscription_id) {
    auto& st = st_->charges_of_subscription;
    st.bind(1, subscription_id);
    return collect<charge_record>(st, read_charge);
}

void store::update_charge(const charge_record& c) {
    auto& st = st_->update_charge;
    st.bind(1, c.id)
        .bind(2, domain::to_string(c.state))
        .bind(3, c.attempt_count)
        .bind(4, c.decline_count)
        .bind(5, c.transient_count)
        .bind(6, c.lookup_count)
        .bind(7, c.first_declined_at)
        .bind(8, c.unknown_since)
        .bind(9, c.next_action_at)
        .bind(10, c.imp_uid)
        .bind(11, c.paid_at)
        .bind(12, c.fail_reason)
        .bind(13, c.park_reason)
        .bind(14, c.updated_at)
        .bind(15, c.refusal_count)
        .bind(16, c.last_refusal);
    st.run();
}

namespace {

// The mutable columns of a charge, in the order of their bits in an update's column set.
struct charge_column {
    std::string_view name;
    bool (*differs)(const charge_record&, const charge_record&);
    void (*bind)(statement&, int, const charge_record&);
};

#define BILLINGD_CHARGE_COLUMN(field, value)                                               \
    charge_column {                                                                        \
#field, [](const charge_record& a,                                                 \
                   const charge_record&                                                    \
                       b) { return a.field != b.field; }, [](statement & st, int i,        \
                                                             const charge_record&          \
                                                                 c) { st.bind(i, value); } \
    }
const charge_column mutable_charge_columns[] = {
    BILLINGD_CHARGE_COLUMN(state, domain::to_string(c.state)),
    BILLINGD_CHARGE_COLUMN(attempt_count, c.attempt_count),
    BILLINGD_CHARGE_COLUMN(decline_count, c.decline_count),
    BILLINGD_CHARGE_COLUMN(transient_count, c.transient_count),
    BILLINGD_CHARGE_COLUMN(lookup_count, c.lookup_count),
    BILLINGD_CHARGE_COLUMN(first_declined_at, c.first_declined_at),
    BILLINGD_CHARGE_COLUMN(unknown_since, c.unknown_since),
    BILLINGD_CHARGE_COLUMN(next_action_at, c.next_action_at),
    BILLINGD_CHARGE_COLUMN(imp_uid, c.imp_uid),
    BILLINGD_CHARGE_COLUMN(paid_at, c.paid_at),
    BILLINGD_CHARGE_COLUMN(fail_reason, c.fail_reason),
    BILLINGD_CHARGE_COLUMN(park_reason, c.park_reason),
    BILLINGD_CHARGE_COLUMN(updated_at, c.updated_at),
    BILLINGD_CHARGE_COLUMN(refusal_count, c.refusal_count),
    BILLINGD_CHARGE_COLUMN(last_refusal, c.last_refusal),
};
#undef BILLINGD_CHARGE_COLUMN

}  // namespace

void store::update_charge(const charge_record& before, const charge_record& after) {
    assert(before.id == after.id);
    std::uint32_t changed = 0;
    for (std::size_t i = 0; i < std::size(mutable_charge_columns); ++i)
        if (mutable_charge_columns[i].differs(before, after)) changed |= 1u << i;
    if (changed == 0) return;
    auto found = charge_updates_->by_columns.find(changed);
    if (found == charge_updates_->by_columns.end()) {
        std::string sql = "UPDATE charges SET ";
        int param = 2;
        for (std::size_t i = 0; i < std::size(mutable_charge_columns); ++i) {
            if (!(changed & (1u << i))) continue;
            if (param > 2) sql += ", ";
            sql += mutable_charge_columns[i].name;
            sql += " = ?" + std::to_string(param++);
        }
        sql += " WHERE id = ?1";
        found = charge_updates_->by_columns.emplace(changed, statement(db_, sql)).first;
    }
    auto& st = found->second;
    st.bind(1, after.id);
    int param = 2;
    for (std::size_t i = 0; i < std::size(mutable_charge_columns); ++i)
        if (changed & (1u << i)) mutable_charge_columns[i].bind(st, param++, after);
    st.run();
}

std::optional<std::int64_t> store::earliest_wakeup() {
    std::optional<std::int64_t> earliest;
    for (auto* st : {&st_->earliest_subscription, &st_->earliest_charge}) {
        st->step();
        if (auto t = st->optional_int64(0); t && (!earliest || *t < *earliest)) earliest = t;
        st->reset();
    }
    return earliest;
}

std::int64_t store::append_attempt(const attempt_record& a) {
    auto& st = st_->append_attempt;
    st.bind(1, a.at)
        .bind(2, a.charge_id)
        .bind(3, a.request_id)
        .bind(4, a.kind)
        .bind(5, a.phase)
        .bind(6, a.merchant_uid)
        .bind(7, a.attempt_number)
        .bind(8, a.amount)
        .bind(9, a.request_summary)
        .bind(10, a.request_written)
        .bind(11, a.http_status)
        .bind(12, a.portone_code)
        .bind(13, a.message)
        .bind(14, a.outcome)
        .bind(15, a.imp_uid)
        .bind(16, a.latency_ms)
        .bind(17, a.raw_answer);
    st.run();
    return db_.last_insert_rowid();
}

std::int64_t store::append_event(const event_record& e) {
    auto& st = st_->append_event;
    st.bind(1, e.at)
        .bind(2, e.subscription_id)
        .bind(3, e.charge_id)
        .bind(4, e.kind)
        .bind(5, e.from_state)
        .bind(6, e.to_state)
        .bind(7, e.detail)
        .bind(8, e.actor)
        .bind(9, e.data);
    st.run();
    return db_.last_insert_rowid();
}

std::vector<attempt_record> store::attempts_of_charge(std::int64_t charge_id) {
    auto& st = st_->attempts_of_charge;
    st.bind(1, charge_id);
    return collect<attempt_record>(st, read_attempt);
}

std::vector<event_record> store::events_of_subscription(std::int64_t subscription_id) {
    auto& st = st_->events_of_subscription;
    st.bind(1, subscription_id);
    return collect<event_record>(st, read_event);
}

std::optional<std::int64_t> store::last_charge_request_at(std::int64_t charge_id) {
    auto& st = st_->last_charge_request_at;
    st.bind(1, charge_id);
    st.step();
    auto at = st.optional_int64(0);
    st.reset();
    return at;
}

std::int64_t store::charge_requests_since(std::int64_t since) {
    auto& st = st_->charge_requests_since;
    st.bind(1, since);
    st.step();
    const auto n = st.int64(0);
    st.reset();
    return n;
}

std::optional<std::int64_t> store::charge_request_time(std::int64_t since, std::int64_t rank) {
    auto& st = st_->charge_request_time;
    st.bind(1, since).bind(2, rank);
    std::optional<std::int64_t> at;
    if (st.step()) at = st.int64(0);
    st.reset();
    return at;
}

install_record store::install() {
    auto& st = st_->read_install;
    install_record r;
    if (st.step()) {
        r.install_id = st.optional_text(0);
        r.created_at = st.int64(1);
        r.live_since = st.optional_int64(2);
    }
    st.reset();
    return r;
}

std::string store::claim_install_id(std::string_view configured_prefix) {
    auto current = install();
    if (!current.install_id) {
        auto tx = begin();
        if (configured_prefix.empty())
            st_->set_random_install_id.run();
        else
            st_->set_install_id.bind(1, configured_prefix).run();
        tx.commit();
        current = install();
    }
    if (!current.install_id) throw error("database " + db_.path() + " has no install row");
    if (!configured_prefix.empty() && *current.install_id != configured_prefix)
        throw install_mismatch("database " + db_.path() + " belongs to install id '" +
                               *current.install_id +
                               "', but the configuration names "
                               "merchant_uid_prefix '" +
                               std::string{configured_prefix} +
                               "'; every merchant_uid of this database starts with its install "
                               "id: remove merchant_uid_prefix or set it to '" +
                               *current.install_id + "'");
    return *current.install_id;
}

void store::mark_live(std::int64_t now) {
    st_->mark_live.bind(1, now).run();
}

}  // namespace billingd::storage
