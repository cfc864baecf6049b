#include "storage/change_store.hpp"

#include <unordered_map>

namespace billingd::storage {

// Statements keyed by the address of their SQL literal: each call site names one literal.
struct change_store::cache {
    std::unordered_map<const char*, statement> by_sql;
};

change_store::change_store(connection& db) : db_(db), cache_(std::make_unique<cache>()) {}
change_store::~change_store() = default;

statement& change_store::prepared(const char* sql) {
    auto it = cache_->by_sql.find(sql);
    if (it == cache_->by_sql.end()) it = cache_->by_sql.emplace(sql, statement{db_, sql}).first;
    it->second.reset();
    return it->second;
}

namespace {

template <typename Record, typename Reader>
std::optional<Record> first(statement& st, Reader read) {
    std::optional<Record> row;
    if (st.step()) row = read(st);
    st.reset();
    return row;
}

std::optional<std::int64_t> single_optional(statement& st) {
    std::optional<std::int64_t> v;
    if (st.step()) v = st.optional_int64(0);
    st.reset();
    return v;
}

price_entry read_price(const statement& st) {
    price_entry e;
    e.id = st.int64(0);
    e.subscription_id = st.int64(1);
    e.from_period = st.int64(2);
    e.amount = st.int64(3);
    e.order_name = st.text(4);
    e.created_by = st.text(5);
    e.created_at = st.int64(6);
    e.applied_at = st.optional_int64(7);
    return e;
}

#define REFUND_COLUMNS                                                                        \
    "id, charge_id, subscription_id, source, state, amount, checksum, reason, requested_by, " \
    "requested_at, attempt_count, lookup_count, next_action_at, refunded_at, pg_tid, "        \
    "cancellation_id, receipt_url, fail_reason, updated_at"

refund_record read_refund(const statement& st) {
    refund_record r;
    r.id = st.int64(0);
    r.charge_id = st.int64(1);
    r.subscription_id = st.int64(2);
    r.source = st.text(3);
    r.state = st.text(4);
    r.amount = st.int64(5);
    r.checksum = st.int64(6);
    r.reason = st.text(7);
    r.requested_by = st.text(8);
    r.requested_at = st.int64(9);
    r.attempt_count = st.int64(10);
    r.lookup_count = st.int64(11);
    r.next_action_at = st.optional_int64(12);
    r.refunded_at = st.optional_int64(13);
    r.pg_tid = st.optional_text(14);
    r.cancellation_id = st.optional_text(15);
    r.receipt_url = st.optional_text(16);
    r.fail_reason = st.optional_text(17);
    r.updated_at = st.int64(18);
    return r;
}

}  // namespace

// --- price schedule ---

std::vector<price_entry> change_store::price_entries(std::int64_t subscription_id) {
    static constexpr const char* sql =
        "SELECT id, subscription_id, from_period, amount, order_name, created_by, created_at, "
        "applied_at FROM price_schedule WHERE subscription_id = ?1 ORDER BY from_period";
    auto& st = prepared(sql);
    st.bind(1, subscription_id);
    return collect<price_entry>(st, read_price);
}

std::optional<price_entry> change_store::price_at(std::int64_t subscription_id,
                                                  std::int64_t period) {
    static constexpr const char* sql =
        "SELECT id, subscription_id, from_period, amount, order_name, created_by, created_at, "
        "applied_at FROM price_schedule WHERE subscription_id = ?1 AND from_period <= ?2 "
        "ORDER BY from_period DESC LIMIT 1";
    auto& st = prepared(sql);
    st.bind(1, subscription_id).bind(2, period);
    return first<price_entry>(st, read_price);
}

bool change_store::put_price_entry(const price_entry& e) {
    static constexpr const char* sql =
        "INSERT INTO price_schedule (subscription_id, from_period, amount, order_name, "
        "created_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
        "ON CONFLICT (subscription_id, from_period) DO UPDATE SET amount = excluded.amount, "
        "order_name = excluded.order_name, created_by = excluded.created_by, "
        "created_at = excluded.created_at WHERE applied_at IS NULL";
    auto& st = prepared(sql);
    st.bind(1, e.subscription_id)
        .bind(2, e.from_period)
        .bind(3, e.amount)
        .bind(4, e.order_name)
        .bind(5, e.created_by)
        .bind(6, e.created_at);
    st.run();
    return db_.changes() > 0;
}

void change_store::mark_prices_applied(std::int64_t subscription_id, std::int64_t period,
                                       std::int64_t now) {
    static constexpr const char* sql =
        "UPDATE price_schedule SET applied_at = ?3 WHERE subscription_id = ?1 AND "
        "from_period <= ?2 AND applied_at IS NULL";
    prepared(sql).bind(1, subscription_id).bind(2, period).bind(3, now).run();
}

std::optional<std::int64_t> change_store::next_price_period(std::int64_t subscription_id,
                                                            std::int64_t after) {
    static constexpr const char* sql =
        "SELECT min(from_period) FROM price_schedule WHERE subscription_id = ?1 AND "
        "from_period > ?2 AND applied_at IS NULL";
    auto& st = prepared(sql);
    st.bind(1, subscription_id).bind(2, after);
    return single_optional(st);
}

void change_store::set_price_change_period(std::int64_t subscription_id,
                                           std::optional<std::int64_t> period, std::int64_t now) {
    static constexpr const char* sql =
        "UPDATE subscriptions SET price_change_period = ?2, updated_at = ?3 WHERE id = ?1";
    prepared(sql).bind(1, subscription_id).bind(2, period).bind(3, now).run();
}

void change_store::set_price(std::int64_t subscription_id, std::int64_t amount,
                             const std::string& order_name, std::int64_t now) {
    static constexpr const char* sql =
        "UPDATE subscriptions SET amount = ?2, order_name = ?3, updated_at = ?4 WHERE id = ?1";
    prepared(sql).bind(1, subscription_id).bind(2, amount).bind(3, order_name).bind(4, now).run();
}

// --- consent ---

bool change_store::has_consent(std::int64_t subscription_id, std::int64_t period) {
    static constexpr const char* sql =
        "SELECT 1 FROM consents WHERE subscription_id = ?1 AND period_index = ?2";
    auto& st = prepared(sql);
    st.bind(1, subscription_id).bind(2, period);
    const bool found = st.step();
    st.reset();
    return found;
}

void change_store::insert_consent(std::int64_t subscription_id, std::int64_t period,
                                  std::int64_t now, const std::string& actor) {
    static constexpr const char* sql =
        "INSERT INTO consents (subscription_id, period_index, given_at, given_by) "
        "VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING";
    prepared(sql).bind(1, subscription_id).bind(2, period).bind(3, now).bind(4, actor).run();
}

void change_store::set_consent_hold(std::int64_t subscription_id,
                                    std::optional<std::int64_t> period,
                                    std::optional<std::int64_t> since, std::int64_t now) {
    static constexpr const char* sql =
        "UPDATE subscriptions SET consent_period = ?2, consent_since = ?3, updated_at = ?4 "
        "WHERE id = ?1";
    prepared(sql).bind(1, subscription_id).bind(2, period).bind(3, since).bind(4, now).run();
}

// --- calendar and card ---

void change_store::set_calendar(std::int64_t subscription_id, const std::string& anchor_date,
                                const std::string& charge_time, const std::string& interval_unit,
                                std::int64_t interval_count, std::int64_t anchor_period,
                                std::optional<std::int64_t> next_due_at, std::int64_t now) {
    static constexpr const char* sql =
        "UPDATE subscriptions SET anchor_date = ?2, charge_time = ?3, interval_unit = ?4, "
        "interval_count = ?5, anchor_period = ?6, next_due_at = ?7, updated_at = ?8 "
        "WHERE id = ?1";
    prepared(sql)
        .bind(1, subscription_id)
        .bind(2, anchor_date)
        .bind(3, charge_time)
        .bind(4, interval_unit)
        .bind(5, interval_count)
        .bind(6, anchor_period)
        .bind(7, next_due_at)
        .bind(8, now)
        .run();
}

void change_store::set_customer_uid(std::int64_t subscription_id, const std::string& customer_uid,
                                    std::int64_t now) {
    static constexpr const char* sql =
        "UPDATE subscriptions SET customer_uid = ?2, updated_at = ?3 WHERE id = ?1";
    prepared(sql).bind(1, subscription_id).bind(2, customer_uid).bind(3, now).run();
}

// --- rekeys ---

std::vector<rekey_record> change_store::rekeys_of_charge(std::int64_t charge_id) {
    static constexpr const char* sql =
        "SELECT id, charge_id, old_merchant_uid, old_customer_uid, new_merchant_uid, "
        "new_customer_uid, old_state, lookup, at, actor FROM charge_rekeys WHERE charge_id = ?1 "
        "ORDER BY id";
    auto& st = prepared(sql);
    st.bind(1, charge_id);
    return collect<rekey_record>(st, [](const statement& row) {
        rekey_record r;
        r.id = row.int64(0);
        r.charge_id = row.int64(1);
        r.old_merchant_uid = row.text(2);
        r.old_customer_uid = row.text(3);
        r.new_merchant_uid = row.text(4);
        r.new_customer_uid = row.text(5);
        r.old_state = row.text(6);
        r.lookup = row.text(7);
        r.at = row.int64(8);
        r.actor = row.text(9);
        return r;
    });
}

void change_store::rekey(const rekey_record& r) {
    static constexpr const char* insert =
        "INSERT INTO charge_rekeys (charge_id, old_merchant_uid, old_customer_uid, "
        "new_merchant_uid, new_customer_uid, old_state, lookup, at, actor) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
    prepared(insert)
        .bind(1, r.charge_id)
        .bind(2, r.old_merchant_uid)
        .bind(3, r.old_customer_uid)
        .bind(4, r.new_merchant_uid)
        .bind(5, r.new_customer_uid)
        .bind(6, r.old_state)
        .bind(7, r.lookup)
        .bind(8, r.at)
        .bind(9, r.actor)
        .run();
    static constexpr const char* move =
        "UPDATE charges SET merchant_uid = ?2, customer_uid = ?3, updated_at = ?4 WHERE id = ?1";
    prepared(move)
        .bind(1, r.charge_id)
        .bind(2, r.new_merchant_uid)
        .bind(3, r.new_customer_uid)
        .bind(4, r.at)
        .run();
}

// --- refunds ---

std::int64_t change_store::insert_refund(const refund_record& r) {
    static constexpr const char* sql =
        "INSERT INTO refunds (charge_id, subscription_id, source, state, amount, checksum, "
        "reason, requested_by, requested_at, attempt_count, lookup_count, next_action_at, "
        "refunded_at, pg_tid, cancellation_id, receipt_url, fail_reason, updated_at) VALUES "
        "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)";
    prepared(sql)
        .bind(1, r.charge_id)
        .bind(2, r.subscription_id)
        .bind(3, r.source)
        .bind(4, r.state)
        .bind(5, r.amount)
        .bind(6, r.checksum)
        .bind(7, r.reason)
        .bind(8, r.requested_by)
        .bind(9, r.requested_at)
        .bind(10, r.attempt_count)
        .bind(11, r.lookup_count)
        .bind(12, r.next_action_at)
        .bind(13, r.refunded_at)
        .bind(14, r.pg_tid)
        .bind(15, r.cancellation_id)
        .bind(16, r.receipt_url)
        .bind(17, r.fail_reason)
        .bind(18, r.updated_at)
        .run();
    return db_.last_insert_rowid();
}

std::optional<refund_record> change_store::find_refund(std::int64_t id) {
    static constexpr const char* sql = "SELECT " REFUND_COLUMNS " FROM refunds WHERE id = ?1";
    auto& st = prepared(sql);
    st.bind(1, id);
    return first<refund_record>(st, read_refund);
}

std::vector<refund_record> change_store::refunds_of_charge(std::int64_t charge_id) {
    static constexpr const char* sql =
        "SELECT " REFUND_COLUMNS " FROM refunds WHERE charge_id = ?1 ORDER BY id";
    auto& st = prepared(sql);
    st.bind(1, charge_id);
    return collect<refund_record>(st, read_refund);
}

std::optional<refund_record> change_store::open_refund_of_charge(std::int64_t charge_id) {
    // The condition of the partial UNIQUE index refunds_one_open.
    static constexpr const char* sql =
        "SELECT " REFUND_COLUMNS
        " FROM refunds WHERE charge_id = ?1 AND "
        "(state = 'requested' OR state = 'sending' OR state = 'unknown')";
    auto& st = prepared(sql);
    st.bind(1, charge_id);
    return first<refund_record>(st, read_refund);
}

std::vector<refund_record> change_store::due_refunds(std::int64_t now, int limit) {
    static constexpr const char* sql = "SELECT " REFUND_COLUMNS
                                       " FROM refunds WHERE next_action_at IS NOT NULL AND "
                                       "next_action_at <= ?1 ORDER BY next_action_at LIMIT ?2";
    auto& st = prepared(sql);
    st.bind(1, now).bind(2, limit);
    return collect<refund_record>(st, read_refund);
}

std::vector<refund_record> change_store::refunds_in_state(const std::string& state, int limit) {
    static constexpr const char* sql =
        "SELECT " REFUND_COLUMNS " FROM refunds WHERE state = ?1 ORDER BY id LIMIT ?2";
    auto& st = prepared(sql);
    st.bind(1, state).bind(2, limit);
    return collect<refund_record>(st, read_refund);
}

std::vector<refund_record> change_store::refunds_on_the_wire(int limit) {
    static constexpr const char* sql =
        "SELECT " REFUND_COLUMNS
        " FROM refunds WHERE next_action_at IS NULL AND "
        "(state = 'sending' OR state = 'unknown') ORDER BY id LIMIT ?1";
    auto& st = prepared(sql);
    st.bind(1, limit);
    return collect<refund_record>(st, read_refund);
}

void change_store::stop_refund(std::int64_t id, std::optional<std::string> reason,
                               std::int64_t now) {
    static constexpr const char* sql =
        "UPDATE refunds SET next_action_at = NULL, fail_reason = coalesce(?2, fail_reason), "
        "updated_at = ?3 WHERE id = ?1";
    prepared(sql).bind(1, id).bind(2, reason).bind(3, now).run();
}

std::optional<std::int64_t> change_store::earliest_refund_action() {
    static constexpr const char* sql =
        "SELECT min(next_action_at) FROM refunds WHERE next_action_at IS NOT NULL";
    return single_optional(prepared(sql));
}

void change_store::update_refund(const refund_record& r) {
    static constexpr const char* sql =
        "UPDATE refunds SET state = ?2, attempt_count = ?3, lookup_count = ?4, "
        "next_action_at = ?5, refunded_at = ?6, pg_tid = ?7, cancellation_id = ?8, "
        "receipt_url = ?9, fail_reason = ?10, updated_at = ?11 WHERE id = ?1";
    prepared(sql)
        .bind(1, r.id)
        .bind(2, r.state)
        .bind(3, r.attempt_count)
        .bind(4, r.lookup_count)
        .bind(5, r.next_action_at)
        .bind(6, r.refunded_at)
        .bind(7, r.pg_tid)
        .bind(8, r.cancellation_id)
        .bind(9, r.receipt_url)
        .bind(10, r.fail_reason)
        .bind(11, r.updated_at)
        .run();
}

bool change_store::knows_cancellation(std::int64_t charge_id, const std::string& cancellation_id,
                                      const std::string& pg_tid, std::int64_t amount) {
    static constexpr const char* sql =
        "SELECT 1 FROM refunds WHERE charge_id = ?1 AND state = 'refunded' AND "
        "((?2 <> '' AND cancellation_id = ?2) OR (?2 = '' AND ?3 <> '' AND pg_tid = ?3 AND "
        "amount = ?4))";
    auto& st = prepared(sql);
    st.bind(1, charge_id).bind(2, cancellation_id).bind(3, pg_tid).bind(4, amount);
    const bool found = st.step();
    st.reset();
    return found;
}

void change_store::set_refunded_amount(std::int64_t charge_id, std::int64_t amount,
                                       std::int64_t now) {
    static constexpr const char* sql =
        "UPDATE charges SET refunded_amount = ?2, updated_at = ?3 WHERE id = ?1";
    prepared(sql).bind(1, charge_id).bind(2, amount).bind(3, now).run();
}

std::int64_t change_store::append_refund_attempt(const refund_attempt_record& a) {
    static constexpr const char* sql =
        "INSERT INTO refund_attempts (at, refund_id, charge_id, request_id, kind, phase, "
        "imp_uid, amount, checksum, request_summary, request_written, http_status, "
        "portone_code, message, outcome, latency_ms, raw_answer) VALUES (?1, ?2, ?3, ?4, ?5, "
        "?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";
    prepared(sql)
        .bind(1, a.at)
        .bind(2, a.refund_id)
        .bind(3, a.charge_id)
        .bind(4, a.request_id)
        .bind(5, a.kind)
        .bind(6, a.phase)
        .bind(7, a.imp_uid)
        .bind(8, a.amount)
        .bind(9, a.checksum)
        .bind(10, a.request_summary)
        .bind(11, a.request_written)
        .bind(12, a.http_status)
        .bind(13, a.portone_code)
        .bind(14, a.message)
        .bind(15, a.outcome)
        .bind(16, a.latency_ms)
        .bind(17, a.raw_answer)
        .run();
    return db_.last_insert_rowid();
}

std::vector<refund_attempt_record> change_store::refund_attempts(std::int64_t refund_id) {
    static constexpr const char* sql =
        "SELECT id, at, refund_id, charge_id, request_id, kind, phase, imp_uid, amount, "
        "checksum, request_summary, request_written, http_status, portone_code, message, "
        "outcome, latency_ms, raw_answer FROM refund_attempts WHERE refund_id = ?1 ORDER BY id";
    auto& st = prepared(sql);
    st.bind(1, refund_id);
    return collect<refund_attempt_record>(st, [](const statement& row) {
        refund_attempt_record a;
        a.id = row.int64(0);
        a.at = row.int64(1);
        a.refund_id = row.optional_int64(2);
        a.charge_id = row.optional_int64(3);
        a.request_id = row.optional_int64(4);
        a.kind = row.text(5);
        a.phase = row.text(6);
        a.imp_uid = row.optional_text(7);
        a.amount = row.optional_int64(8);
        a.checksum = row.optional_int64(9);
        a.request_summary = row.optional_text(10);
        a.request_written = row.optional_int64(11);
        a.http_status = row.optional_int64(12);
        a.portone_code = row.optional_int64(13);
        a.message = row.optional_text(14);
        a.outcome = row.optional_text(15);
        a.latency_ms = row.optional_int64(16);
        a.raw_answer = row.optional_text(17);
        return a;
    });
}

// --- console check ---

std::optional<std::int64_t> change_store::console_checked_to() {
    static constexpr const char* sql = "SELECT checked_to FROM refund_checks WHERE singleton = 1";
    return single_optional(prepared(sql));
}

std::optional<std::int64_t> change_store::console_checked_at() {
    static constexpr const char* sql = "SELECT checked_at FROM refund_checks WHERE singleton = 1";
    return single_optional(prepared(sql));
}

void change_store::set_console_checked(std::int64_t checked_to, std::int64_t at) {
    static constexpr const char* sql =
        "UPDATE refund_checks SET checked_to = ?1, checked_at = ?2 WHERE singleton = 1";
    prepared(sql).bind(1, checked_to).bind(2, at).run();
}

std::vector<std::pair<std::int64_t, std::string>> change_store::charges_to_sweep(
    std::int64_t after, std::int64_t paid_since, int limit) {
    // By rowid from the cursor: a bounded walk, whatever the size of the table.
    static constexpr const char* sql =
        "SELECT id, imp_uid FROM charges WHERE id > ?1 AND state = 'paid' AND paid_at >= ?2 AND "
        "imp_uid IS NOT NULL AND refunded_amount < amount ORDER BY id LIMIT ?3";
    auto& st = prepared(sql);
    st.bind(1, after).bind(2, paid_since).bind(3, limit);
    return collect<std::pair<std::int64_t, std::string>>(
        st, [](const statement& row) { return std::make_pair(row.int64(0), row.text(1)); });
}

std::int64_t change_store::console_swept_after() {
    static constexpr const char* sql = "SELECT swept_after FROM refund_checks WHERE singleton = 1";
    return single_optional(prepared(sql)).value_or(0);
}

void change_store::set_console_swept_after(std::int64_t charge_id) {
    static constexpr const char* sql =
        "UPDATE refund_checks SET swept_after = ?1 WHERE singleton = 1";
    prepared(sql).bind(1, charge_id).run();
}

}  // namespace billingd::storage
