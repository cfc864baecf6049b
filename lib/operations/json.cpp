#include "operations/json.hpp"

namespace billingd::operations {

namespace {

template <typename T>
nlohmann::json opt(const std::optional<T>& v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

nlohmann::json to_json(const storage::subscription_record& s) {
    return {{"id", s.id},
            {"uid_key", s.uid_key},
            {"customer_uid", s.customer_uid},
            {"amount", s.amount},
            {"currency", s.currency},
            {"order_name", s.order_name},
            {"interval_unit", s.interval_unit},
            {"interval_count", s.interval_count},
            {"anchor_date", s.anchor_date},
            {"charge_time", s.charge_time},
            {"time_zone", s.time_zone},
            {"status", std::string{domain::to_string(s.status)}},
            {"trial_end_at", opt(s.trial_end_at)},
            {"cancel_at_period_end", s.cancel_at_period_end},
            {"max_periods", opt(s.max_periods)},
            {"buyer_name", opt(s.buyer_name)},
            {"buyer_email", opt(s.buyer_email)},
            {"buyer_tel", opt(s.buyer_tel)},
            {"next_period", s.next_period},
            {"next_due_at", opt(s.next_due_at)},
            {"needs_attention", opt(s.needs_attention)},
            {"created_at", s.created_at},
            {"updated_at", s.updated_at}};
}

nlohmann::json to_json(const storage::charge_record& c) {
    return {{"id", c.id},
            {"subscription_id", c.subscription_id},
            {"period_index", c.period_index},
            {"period_start", c.period_start},
            {"merchant_uid", c.merchant_uid},
            {"customer_uid", c.customer_uid},
            {"amount", c.amount},
            {"currency", c.currency},
            {"order_name", c.order_name},
            {"state", std::string{domain::to_string(c.state)}},
            {"attempt_count", c.attempt_count},
            {"decline_count", c.decline_count},
            {"transient_count", c.transient_count},
            {"lookup_count", c.lookup_count},
            {"refusal_count", c.refusal_count},
            {"last_refusal", opt(c.last_refusal)},
            {"refunded_amount", c.refunded_amount},
            {"first_declined_at", opt(c.first_declined_at)},
            {"unknown_since", opt(c.unknown_since)},
            {"next_action_at", opt(c.next_action_at)},
            {"imp_uid", opt(c.imp_uid)},
            {"paid_at", opt(c.paid_at)},
            {"fail_reason", opt(c.fail_reason)},
            {"park_reason", opt(c.park_reason)},
            {"created_at", c.created_at},
            {"updated_at", c.updated_at}};
}

nlohmann::json to_json(const storage::attempt_record& a) {
    return {{"id", a.id},
            {"at", a.at},
            {"charge_id", opt(a.charge_id)},
            {"request_id", opt(a.request_id)},
            {"kind", a.kind},
            {"phase", a.phase},
            {"merchant_uid", opt(a.merchant_uid)},
            {"attempt_number", opt(a.attempt_number)},
            {"amount", opt(a.amount)},
            {"request_summary", opt(a.request_summary)},
            {"request_written", opt(a.request_written)},
            {"http_status", opt(a.http_status)},
            {"portone_code", opt(a.portone_code)},
            {"message", opt(a.message)},
            {"outcome", opt(a.outcome)},
            {"imp_uid", opt(a.imp_uid)},
            {"latency_ms", opt(a.latency_ms)},
            {"raw_answer", opt(a.raw_answer)}};
}

nlohmann::json to_json(const storage::event_record& e) {
    return {{"id", e.id},
            {"at", e.at},
            {"subscription_id", opt(e.subscription_id)},
            {"charge_id", opt(e.charge_id)},
            {"kind", e.kind},
            {"from_state", opt(e.from_state)},
            {"to_state", opt(e.to_state)},
            {"detail", opt(e.detail)},
            {"actor", e.actor}};
}

nlohmann::json to_json(const storage::price_entry& p) {
    return {{"id", p.id},
            {"subscription_id", p.subscription_id},
            {"from_period", p.from_period},
            {"amount", p.amount},
            {"order_name", p.order_name},
            {"created_by", p.created_by},
            {"created_at", p.created_at},
            {"applied_at", opt(p.applied_at)}};
}

nlohmann::json to_json(const storage::refund_record& r) {
    return {{"id", r.id},
            {"charge_id", r.charge_id},
            {"subscription_id", r.subscription_id},
            {"source", r.source},
            {"state", r.state},
            {"amount", r.amount},
            {"checksum", r.checksum},
            {"reason", r.reason},
            {"requested_by", r.requested_by},
            {"requested_at", r.requested_at},
            {"attempt_count", r.attempt_count},
            {"lookup_count", r.lookup_count},
            {"next_action_at", opt(r.next_action_at)},
            {"refunded_at", opt(r.refunded_at)},
            {"pg_tid", opt(r.pg_tid)},
            {"cancellation_id", opt(r.cancellation_id)},
            {"receipt_url", opt(r.receipt_url)},
            {"fail_reason", opt(r.fail_reason)},
            {"updated_at", r.updated_at}};
}

}  // namespace billingd::operations
