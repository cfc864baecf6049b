#include "output.hpp"

#include <date/tz.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "calendar/calendar.hpp"

namespace billingd::ctl {

table::table(std::vector<std::string> headers) : headers_(std::move(headers)) {}

void table::add(std::vector<std::string> row) {
    row.resize(headers_.size());
    rows_.push_back(std::move(row));
}

void table::print() const {
    if (rows_.empty()) {
        fmt::print("(none)\n");
        return;
    }
    std::vector<std::size_t> width(headers_.size());
    for (std::size_t i = 0; i < headers_.size(); ++i) width[i] = text_length(headers_[i]);
    for (const auto& row : rows_)
        for (std::size_t i = 0; i < row.size(); ++i)
            width[i] = std::max(width[i], text_length(row[i]));
    auto line = [&](const std::vector<std::string>& cells) {
        std::string out;
        for (std::size_t i = 0; i < cells.size(); ++i) {
            out += cells[i];
            if (i + 1 < cells.size()) out.append(width[i] - text_length(cells[i]) + 2, ' ');
        }
        while (!out.empty() && out.back() == ' ') out.pop_back();
        fmt::print("{}\n", out);
    };
    line(headers_);
    for (const auto& row : rows_) line(row);
}

std::size_t text_length(std::string_view utf8) {
    return static_cast<std::size_t>(std::count_if(utf8.begin(), utf8.end(), [](char ch) {
        return (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
    }));
}

std::string format_amount(std::int64_t amount, std::string_view currency) {
    // Currencies without a minor unit (ISO 4217 exponent 0) that PortOne supports.
    static constexpr std::string_view zero_decimal[] = {"KRW", "JPY", "VND", "CLP", "ISK", "TWD"};
    const bool whole = std::find(std::begin(zero_decimal), std::end(zero_decimal), currency) !=
                       std::end(zero_decimal);
    const bool negative = amount < 0;
    const std::uint64_t magnitude =
        negative ? 0 - static_cast<std::uint64_t>(amount) : static_cast<std::uint64_t>(amount);
    const std::uint64_t units = whole ? magnitude : magnitude / 100;
    std::string digits = std::to_string(units);
    std::string grouped;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) grouped += ',';
        grouped += digits[i];
    }
    if (!whole) grouped += fmt::format(".{:02}", magnitude % 100);
    return fmt::format("{}{} {}", negative ? "-" : "", grouped, currency);
}

std::string format_local(std::optional<std::int64_t> t, std::string_view time_zone) {
    if (!t) return "-";
    const std::chrono::sys_seconds at{std::chrono::seconds{*t}};
    const date::time_zone* zone = calendar::find_zone(time_zone);
    if (!zone) return date::format("%Y-%m-%d %H:%M:%S UTC", at);
    return date::format("%Y-%m-%d %H:%M %Z", date::zoned_seconds{zone, at});
}

std::string or_dash(const std::optional<std::string>& s) {
    return s && !s->empty() ? *s : "-";
}
std::string or_dash(const std::optional<std::int64_t>& v) {
    return v ? std::to_string(*v) : "-";
}

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

void print_json(const nlohmann::json& j) {
    // Replace invalid UTF-8 (a hand-edited row) instead of throwing.
    fmt::print("{}\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
}

const std::string& zone_cache::of(std::int64_t subscription_id) {
    auto it = zones_.find(subscription_id);
    if (it == zones_.end())
        it = zones_.emplace(subscription_id, lookup_(subscription_id).value_or("UTC")).first;
    return it->second;
}

}  // namespace billingd::ctl
