#include "ledger.hpp"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "random.hpp"

namespace portone_sim {
namespace {

// Year and month of a UNIX millisecond instant in Asia/Seoul (UTC+9, no DST since 1988).
std::int64_t seoul_month(std::int64_t ms) {
    std::int64_t days = (ms / 1000 + 9 * 3600) / 86400;
    // civil_from_days (Howard Hinnant)
    days += 719468;
    const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    const std::int64_t doe = days - era * 146097;
    const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const std::int64_t mp = (5 * doy + 2) / 153;
    const std::int64_t month = mp < 10 ? mp + 3 : mp - 9;
    const std::int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
    return year * 12 + month;
}

nlohmann::json optional_string(const std::optional<std::string>& s) {
    return s ? nlohmann::json(*s) : nlohmann::json(nullptr);
}

nlohmann::json string_or_null(const std::string& s) {
    return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s);
}

std::int64_t sort_key(const payment_record& p, sort_order o) {
    switch (o) {
        case sort_order::paid_desc:
        case sort_order::paid_asc:
            return p.paid_ms;
        case sort_order::updated_desc:
        case sort_order::updated_asc:
            return p.updated_ms;
        default:
            return p.started_ms;
    }
}

bool descending(sort_order o) {
    return o == sort_order::started_desc || o == sort_order::paid_desc ||
           o == sort_order::updated_desc;
}

// The time a record reached `status`, in UNIX seconds, for GET /payments/status/{status}.
std::int64_t status_time_s(const payment_record& p, const std::string& status) {
    if (status == "paid") return p.paid_ms / 1000;
    if (status == "failed") return p.failed_ms / 1000;
    if (status == "cancelled") return p.cancelled_ms / 1000;
    return p.started_ms / 1000;
}

nlohmann::json cancel_history_json(const payment_record& p) {
    auto out = nlohmann::json::array();
    for (const auto& c : p.cancel_history)
        out.push_back({{"pg_tid", c.pg_tid},
                       {"amount", c.amount},
                       {"cancelled_at", c.cancelled_ms / 1000},
                       {"reason", c.reason},
                       {"cancellation_id", c.cancellation_id},
                       {"receipt_url", c.receipt_url}});
    return out;
}

void sort_records(std::vector<const payment_record*>& records, sort_order order) {
    std::stable_sort(records.begin(), records.end(), [order](const auto* a, const auto* b) {
        const auto ka = sort_key(*a, order), kb = sort_key(*b, order);
        if (ka != kb) return descending(order) ? ka > kb : ka < kb;
        return descending(order) ? a->seq > b->seq : a->seq < b->seq;
    });
}

}  // namespace

nlohmann::json to_payment_json(const payment_record& p) {
    const bool paid = p.status == "paid" || p.status == "cancelled";
    auto cancel_receipts = nlohmann::json::array();
    for (const auto& c : p.cancel_history) cancel_receipts.push_back(c.receipt_url);
    return {
        {"imp_uid", p.imp_uid},
        {"merchant_uid", p.merchant_uid},
        {"pay_method", "card"},
        {"channel", "api"},
        {"pg_provider", "kakaopay"},
        {"emb_pg_provider", nullptr},
        {"pg_tid", p.pg_tid},
        {"pg_id", "TCSUBSCRIP"},
        {"escrow", false},
        {"apply_num", p.apply_num},
        {"bank_code", nullptr},
        {"bank_name", nullptr},
        {"card_code", "361"},
        {"card_name", "BC카드"},
        {"card_quota", p.card_quota},
        {"card_number", p.card_number},
        {"card_type", nullptr},
        {"vbank_code", nullptr},
        {"vbank_name", nullptr},
        {"vbank_num", nullptr},
        {"vbank_holder", nullptr},
        {"vbank_date", 0},
        {"vbank_issued_at", 0},
        {"name", p.name},
        {"amount", p.amount},
        {"cancel_amount", p.cancel_amount},
        {"currency", p.currency},
        {"buyer_name", optional_string(p.buyer_name)},
        {"buyer_email", optional_string(p.buyer_email)},
        {"buyer_tel", optional_string(p.buyer_tel)},
        {"buyer_addr", optional_string(p.buyer_addr)},
        {"buyer_postcode", optional_string(p.buyer_postcode)},
        {"custom_data", optional_string(p.custom_data)},
        {"user_agent", "sorry_not_supported"},
        {"status", p.status},
        {"started_at", p.started_ms / 1000},
        {"paid_at", p.paid_ms / 1000},
        {"failed_at", p.failed_ms / 1000},
        {"cancelled_at", p.cancelled_ms / 1000},
        {"fail_reason", string_or_null(p.fail_reason)},
        {"cancel_reason", p.cancel_history.empty()
                              ? nlohmann::json(nullptr)
                              : nlohmann::json(p.cancel_history.back().reason)},
        {"receipt_url",
         paid ? "https://mockup-pg-web.kakao.com/v1/confirmation/p/" + p.pg_tid : std::string()},
        {"cancel_history", cancel_history_json(p)},
        {"cancel_receipt_urls", cancel_receipts},
        {"cash_receipt_issued", false},
        {"customer_uid", p.customer_uid},
        {"customer_uid_usage", "payment"},
        {"promotion", nullptr},
        {"sandbox", false},
    };
}

std::optional<sort_order> parse_sorting(std::string_view text) {
    if (text.empty() || text == "-started") return sort_order::started_desc;
    if (text == "started") return sort_order::started_asc;
    if (text == "-paid") return sort_order::paid_desc;
    if (text == "paid") return sort_order::paid_asc;
    if (text == "-updated") return sort_order::updated_desc;
    if (text == "updated") return sort_order::updated_asc;
    return std::nullopt;
}

ledger::ledger(std::uint64_t seed)
    : imp_base_(100000000000ULL +
                random_stream(seed ^ stable_hash("imp_uid")).next() % 800000000000ULL) {}

std::size_t ledger::create(payment_record draft, std::int64_t now_ms) {
    const std::size_t index = records_.size();
    draft.seq = index + 1;
    char buf[32];
    std::snprintf(buf, sizeof buf, "imp_%012llu",
                  static_cast<unsigned long long>(imp_base_ + draft.seq));
    draft.imp_uid = buf;
    random_stream tid(imp_base_ ^ draft.seq);
    std::snprintf(buf, sizeof buf, "T%019llu",
                  static_cast<unsigned long long>(tid.next() % 10000000000000000000ULL));
    draft.pg_tid = buf;
    draft.status = "ready";
    draft.started_ms = draft.updated_ms = now_ms;
    by_imp_.emplace(draft.imp_uid, index);
    by_merchant_[draft.merchant_uid].push_back(index);
    by_customer_[draft.customer_uid].push_back(index);
    records_.push_back(std::move(draft));
    return index;
}

const payment_record* ledger::by_imp_uid(const std::string& imp_uid) const {
    const auto it = by_imp_.find(imp_uid);
    return it == by_imp_.end() ? nullptr : &records_[it->second];
}

std::vector<const payment_record*> ledger::by_merchant_uid(const std::string& merchant_uid,
                                                           const std::string& status,
                                                           sort_order order) const {
    std::vector<const payment_record*> out;
    const auto it = by_merchant_.find(merchant_uid);
    if (it == by_merchant_.end()) return out;
    for (auto index : it->second) {
        const auto& p = records_[index];
        if (status.empty() || p.status == status) out.push_back(&p);
    }
    sort_records(out, order);
    return out;
}

std::vector<const payment_record*> ledger::by_status(const std::string& status, std::int64_t from_s,
                                                     std::int64_t to_s, sort_order order) const {
    std::vector<const payment_record*> out;
    for (const auto& p : records_) {
        if (status != "all" && p.status != status) continue;
        const auto at = status_time_s(p, status);
        if (at >= from_s && at <= to_s) out.push_back(&p);
    }
    sort_records(out, order);
    return out;
}

std::optional<std::size_t> ledger::index_of(const std::string& imp_uid) const {
    const auto it = by_imp_.find(imp_uid);
    if (it == by_imp_.end()) return std::nullopt;
    return it->second;
}

void ledger::cancel(std::size_t index, std::int64_t amount, std::string reason,
                    const std::string& partial_status, std::int64_t now_ms) {
    auto& p = records_.at(index);
    cancel_entry entry;
    entry.pg_tid = p.pg_tid;  // KakaoPay cancels under the payment's own tid
    entry.amount = amount;
    entry.cancelled_ms = now_ms;
    entry.reason = std::move(reason);
    char buf[40];
    std::snprintf(buf, sizeof buf, "C%012llu%02zu",
                  static_cast<unsigned long long>(imp_base_ + p.seq), p.cancel_history.size() + 1);
    entry.cancellation_id = buf;
    entry.receipt_url = "https://mockup-pg-web.kakao.com/v1/confirmation/c/" + p.pg_tid + "/" +
                        std::to_string(p.cancel_history.size() + 1);
    p.cancel_history.push_back(std::move(entry));
    p.cancel_amount += amount;
    p.cancelled_ms = p.updated_ms = now_ms;
    p.status = p.cancel_amount >= p.amount ? "cancelled" : partial_status;
}

bool ledger::merchant_uid_taken(const std::string& merchant_uid) const {
    const auto it = by_merchant_.find(merchant_uid);
    if (it == by_merchant_.end()) return false;
    return std::any_of(it->second.begin(), it->second.end(), [this](std::size_t i) {
        return records_[i].status == "paid" || records_[i].status == "cancelled";
    });
}

std::int64_t ledger::paid_in_month(const std::string& customer_uid, std::int64_t now_ms) const {
    const auto it = by_customer_.find(customer_uid);
    if (it == by_customer_.end()) return 0;
    const auto month = seoul_month(now_ms);
    return std::count_if(it->second.begin(), it->second.end(), [&](std::size_t i) {
        return records_[i].status == "paid" && seoul_month(records_[i].paid_ms) == month;
    });
}

nlohmann::json ledger::to_json() const {
    auto out = nlohmann::json::array();
    for (const auto& p : records_) {
        auto j = to_payment_json(p);
        j["seq"] = p.seq;
        j["started_at_ms"] = p.started_ms;
        out.push_back(std::move(j));
    }
    return out;
}

}  // namespace portone_sim
