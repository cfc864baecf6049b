// The PortOne V1 endpoints of the simulator (see PORTONE_V1.md).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <tuple>

#include "simulator.hpp"
#include "wire.hpp"

namespace portone_sim {
namespace {

using nlohmann::json;

http_response bad_request(std::string_view message) {
    return json_response(400, envelope(-1, message, nullptr));
}

http_response payment_not_found() {
    return json_response(404, envelope(-1, msg_not_found, nullptr));
}

bool known_status(const std::string& s) {
    return s == "ready" || s == "paid" || s == "failed" || s == "cancelled";
}

// A required string parameter; returns an error message or empty.
std::string check_string(const json& body, const char* key, std::size_t max_chars,
                         std::string& out) {
    const auto it = body.find(key);
    if (it == body.end() || it->is_null() ||
        (it->is_string() && it->get_ref<const std::string&>().empty()))
        return std::string(key) + " 파라미터가 누락되었습니다.";
    if (!it->is_string()) return std::string(key) + " 파라미터는 문자열이어야 합니다.";
    out = it->get<std::string>();
    if (utf8_length(out) > max_chars)
        return std::string(key) + " 파라미터는 " + std::to_string(max_chars) +
               "자 이하여야 합니다.";
    return {};
}

std::optional<std::string> optional_text(const json& body, const char* key) {
    const auto it = body.find(key);
    if (it == body.end() || it->is_null()) return std::nullopt;
    return it->is_string() ? it->get<std::string>() : it->dump();
}

// A POST body as PortOne reads it: a JSON object, or form fields (as strings).
json body_params(const std::string& body) {
    const auto first = body.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && body[first] == '{') {
        auto j = json::parse(body, nullptr, false);
        return j.is_object() ? j : json();  // null: not an object
    }
    json j = json::object();
    for (auto& [key, value] : parse_form(body)) j[key] = std::move(value);
    return j;
}

std::string text_param(const json& params, const char* key) {
    const auto it = params.find(key);
    return it != params.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// An amount parameter: absent/null -> nullopt in `out`; a whole number (JSON, or digits in a
// form) >= `min` -> its value; anything else -> an error message.
std::string amount_param(const json& params, const char* key, std::int64_t min,
                         std::optional<std::int64_t>& out) {
    const auto it = params.find(key);
    out.reset();
    if (it == params.end() || it->is_null()) return {};
    double value = -1;
    if (it->is_number()) {
        value = it->get<double>();
    } else if (it->is_string() && !it->get_ref<const std::string&>().empty()) {
        const auto& text = it->get_ref<const std::string&>();
        char* end = nullptr;
        value = std::strtod(text.c_str(), &end);
        if (*end != '\0') value = -1;
    }
    if (!(value >= static_cast<double>(min)) || value > 9e15 || std::floor(value) != value)
        return std::string(key) + " 파라미터는 " + std::to_string(min) + " 이상의 정수여야 합니다.";
    out = static_cast<std::int64_t>(value);
    return {};
}

// Whether a cancel of `amount` (none: everything left) with `checksum` may be applied to `p`:
// the amount to cancel, or the refusal's message.
struct cancel_decision {
    std::int64_t amount = 0;
    std::string refusal;
};

cancel_decision decide_cancel(const payment_record& p, std::optional<std::int64_t> amount,
                              std::optional<std::int64_t> checksum) {
    const std::int64_t remaining = p.amount - p.cancel_amount;
    const auto detail = " (취소가능금액 " + std::to_string(remaining) + "원)";
    if (p.status != "paid" && p.status != "cancelled")
        return {0, std::string(msg_cancel_not_paid) + " (status: " + p.status + ")"};
    if (remaining <= 0) return {0, std::string(msg_fully_cancelled)};
    if (checksum && *checksum != remaining) return {0, std::string(msg_checksum_mismatch) + detail};
    const auto wanted = amount.value_or(remaining);
    if (wanted > remaining) return {0, std::string(msg_cancel_too_much) + detail};
    return {wanted, {}};
}

json customer_json(const std::string& uid, const customer_state& st) {
    return {{"customer_uid", uid},
            {"pg_provider", "kakaopay"},
            {"pg_id", "TCSUBSCRIP"},
            {"card_name", "BC카드"},
            {"card_code", "361"},
            {"card_number", masked_card_number(uid)},
            {"card_type", nullptr},
            {"customer_name", nullptr},
            {"customer_tel", nullptr},
            {"customer_email", nullptr},
            {"customer_addr", nullptr},
            {"customer_postcode", nullptr},
            {"inserted", st.inserted_ms / 1000},
            {"updated", st.updated_ms / 1000}};
}

}  // namespace

void simulator::get_token(const http_request& request, bool single_use, std::int64_t now_ms,
                          plan& p) {
    std::string key, secret;
    const auto& body = request.body;
    const auto first = body.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && body[first] == '{') {
        const auto j = json::parse(body, nullptr, false);
        if (j.is_object()) {
            if (j.contains("imp_key") && j["imp_key"].is_string()) key = j["imp_key"];
            if (j.contains("imp_secret") && j["imp_secret"].is_string()) secret = j["imp_secret"];
        }
    } else {
        auto form = parse_form(body);
        key = form["imp_key"];
        secret = form["imp_secret"];
    }
    if (key != config_.imp_key || secret != config_.imp_secret) {
        p.response = json_response(
            401, envelope(-1, "imp_key, imp_secret 파라미터가 누락되었거나 올바르지 않습니다.",
                          nullptr));
        return;
    }
    const auto t = tokens_.issue(now_ms, single_use);
    p.response = json_response(
        200,
        envelope(0, nullptr,
                 {{"access_token", t.access_token}, {"now", t.now}, {"expired_at", t.expired_at}}));
}

void simulator::charge(const http_request& request, std::int64_t now_ms, plan& p) {
    const auto body = json::parse(request.body, nullptr, false);
    if (!body.is_object()) {
        p.response = bad_request("요청 본문이 올바른 JSON 형식이 아닙니다.");
        return;
    }
    payment_record draft;
    const std::array<std::tuple<const char*, std::size_t, std::string*>, 3> required{{
        {"customer_uid", 80, &draft.customer_uid},
        {"merchant_uid", 40, &draft.merchant_uid},
        {"name", 40, &draft.name},
    }};
    for (const auto& [key, max, out] : required) {
        if (auto error = check_string(body, key, max, *out); !error.empty()) {
            p.response = bad_request(error);
            return;
        }
    }
    const auto amount = body.find("amount");
    if (amount == body.end() || !amount->is_number()) {
        p.response = bad_request("amount 파라미터가 누락되었거나 숫자가 아닙니다.");
        return;
    }
    const double value = amount->get<double>();
    if (!(value > 0) || value > 9e15 || std::floor(value) != value) {
        p.response = bad_request("amount 파라미터는 0보다 큰 정수여야 합니다.");
        return;
    }
    draft.amount = static_cast<std::int64_t>(value);
    if (auto currency = optional_text(body, "currency")) draft.currency = *currency;
    if (auto quota = body.find("card_quota"); quota != body.end() && quota->is_number_integer())
        draft.card_quota = quota->get<std::int64_t>();
    draft.buyer_name = optional_text(body, "buyer_name");
    draft.buyer_email = optional_text(body, "buyer_email");
    draft.buyer_tel = optional_text(body, "buyer_tel");
    draft.buyer_addr = optional_text(body, "buyer_addr");
    draft.buyer_postcode = optional_text(body, "buyer_postcode");
    draft.custom_data = optional_text(body, "custom_data");
    draft.notice_url = optional_text(body, "notice_url");

    // In refuse mode PortOne will not re-use a merchant_uid after a failed payment either, and
    // says so with the same message. The checks see only what is recorded so far.
    const bool failed_before =
        config_.modes.failed_uid_reuse == failed_uid_reuse::refuse &&
        !ledger_.by_merchant_uid(draft.merchant_uid, "failed", sort_order::started_asc).empty();
    if (failed_before || ledger_.merchant_uid_taken(draft.merchant_uid)) {
        p.response = json_response(200, envelope(1, msg_duplicate, nullptr));
        return;
    }
    const auto rule = customers_.lookup(draft.customer_uid);
    if (rule.type == behaviour::kind::unregistered) {
        p.response =
            json_response(200, envelope(config_.unknown_customer_code, msg_unregistered, nullptr));
        return;
    }
    auto& state = customers_.state(draft.customer_uid, now_ms);
    draft.card_number = masked_card_number(draft.customer_uid);
    pending_charge pending;
    pending.arrived_ms = now_ms;
    pending.rule = rule;
    pending.attempt = ++state.charge_requests;
    if (config_.modes.record_at == record_at::arrival)
        pending.record = ledger_.create(std::move(draft), now_ms);
    else
        pending.draft = std::move(draft);
    p.charge = std::move(pending);
}

void simulator::settle(pending_charge& pending, std::int64_t now_ms, plan& p) {
    // record_at::answer: the ledger first hears of the charge now; it started on arrival.
    if (!pending.record)
        pending.record = ledger_.create(std::move(pending.draft), pending.arrived_ms);
    auto& record = ledger_.at(*pending.record);
    const auto& rule = pending.rule;
    std::string reason;
    switch (rule.type) {
        case behaviour::kind::pay:
            break;
        case behaviour::kind::decline_first:
            if (pending.attempt <= rule.n) reason = rule.reason;
            break;
        case behaviour::kind::cap:
            if (ledger_.paid_in_month(record.customer_uid, now_ms) >= rule.n)
                reason = std::string(cap_decline_reason);
            break;
        default:
            reason = rule.reason;
            break;
    }
    record.updated_ms = now_ms;
    if (reason.empty()) {
        record.status = "paid";
        record.paid_ms = now_ms;
        char buf[16];
        std::snprintf(buf, sizeof buf, "%08u",
                      static_cast<unsigned>(stable_hash(record.pg_tid.c_str()) % 100000000));
        record.apply_num = buf;
    } else {
        record.status = "failed";
        record.failed_ms = now_ms;
        record.fail_reason = std::move(reason);
    }
    p.response = json_response(200, envelope(0, nullptr, to_payment_json(record)));
}

void simulator::find(const std::vector<std::string>& segments,
                     const std::map<std::string, std::string>& query, bool all, plan& p) {
    const std::string& merchant_uid = segments[2];
    const std::string status = segments.size() == 4 ? segments[3] : std::string();
    if (!status.empty() && !known_status(status)) {
        p.response =
            bad_request("status 파라미터는 ready, paid, failed, cancelled 중 하나여야 합니다.");
        return;
    }
    const auto sorting_it = query.find("sorting");
    const auto order = parse_sorting(sorting_it == query.end() ? "" : sorting_it->second);
    if (!order) {
        p.response = bad_request("sorting 파라미터가 올바르지 않습니다.");
        return;
    }
    const auto found = ledger_.by_merchant_uid(merchant_uid, status, *order);
    if (found.empty()) {
        p.response = payment_not_found();
        return;
    }
    if (!all) {
        p.response = json_response(200, envelope(0, nullptr, to_payment_json(*found.front())));
        return;
    }
    auto number = [&](const char* key, long long fallback) {
        const auto it = query.find(key);
        if (it == query.end() || it->second.empty()) return fallback;
        char* end = nullptr;
        const long long v = std::strtoll(it->second.c_str(), &end, 10);
        return *end == '\0' ? v : -1LL;
    };
    const long long page = number("page", 1), limit = number("limit", 20);
    if (page < 1 || limit < 1 || limit > 1000) {
        p.response = bad_request("page는 1 이상, limit은 1 이상 1000 이하여야 합니다.");
        return;
    }
    const auto total = static_cast<long long>(found.size());
    json list = json::array();
    for (long long i = (page - 1) * limit; i < std::min(total, page * limit); ++i)
        list.push_back(to_payment_json(*found[static_cast<std::size_t>(i)]));
    json response = {{"total", total},
                     {"previous", page > 1 ? page - 1 : 0},
                     {"next", page * limit < total ? page + 1 : 0},
                     {"list", std::move(list)}};
    p.response = json_response(200, envelope(0, nullptr, response));
}

void simulator::get_payment(const std::string& imp_uid, plan& p) {
    const auto* record = ledger_.by_imp_uid(imp_uid);
    p.response = record == nullptr
                     ? payment_not_found()
                     : json_response(200, envelope(0, nullptr, to_payment_json(*record)));
}

std::optional<std::size_t> simulator::cancel_target(const std::string& imp_uid,
                                                    const std::string& merchant_uid) const {
    // imp_uid wins; a merchant_uid means its paid payment, else its latest one.
    if (!imp_uid.empty()) return ledger_.index_of(imp_uid);
    if (merchant_uid.empty()) return std::nullopt;
    const auto found = ledger_.by_merchant_uid(merchant_uid, "", sort_order::started_desc);
    if (found.empty()) return std::nullopt;
    const auto paid = std::find_if(found.begin(), found.end(),
                                   [](const payment_record* r) { return r->status == "paid"; });
    return ledger_.index_of((paid != found.end() ? *paid : found.front())->imp_uid);
}

std::optional<std::string> simulator::cancel_imp_uid(const http_request& request) const {
    const auto params = body_params(request.body);
    if (!params.is_object()) return std::nullopt;
    if (auto imp_uid = text_param(params, "imp_uid"); !imp_uid.empty()) return imp_uid;
    const auto index = cancel_target({}, text_param(params, "merchant_uid"));
    if (!index) return std::nullopt;
    return ledger_.all()[*index].imp_uid;
}

void simulator::cancel(const http_request& request, plan& p) {
    const auto params = body_params(request.body);
    if (!params.is_object()) {
        p.response = bad_request("요청 본문이 올바른 JSON 형식이 아닙니다.");
        return;
    }
    pending_cancel pending;
    pending.imp_uid = text_param(params, "imp_uid");
    pending.merchant_uid = text_param(params, "merchant_uid");
    if (pending.imp_uid.empty() && pending.merchant_uid.empty()) {
        p.response = bad_request("imp_uid 또는 merchant_uid 파라미터가 누락되었습니다.");
        return;
    }
    for (auto [key, min, out] :
         {std::tuple{"amount", 1, &pending.amount}, std::tuple{"checksum", 0, &pending.checksum}}) {
        if (auto error = amount_param(params, key, min, *out); !error.empty()) {
            p.response = bad_request(error);
            return;
        }
    }
    pending.reason = text_param(params, "reason");
    pending.modes = config_.modes;
    p.cancel = std::move(pending);
}

void simulator::apply_cancel(pending_cancel& pending, std::int64_t now_ms, plan& p) {
    const auto index = cancel_target(pending.imp_uid, pending.merchant_uid);
    if (!index) {
        p.response = payment_not_found();
        return;
    }
    const auto decision = decide_cancel(ledger_.at(*index), pending.amount, pending.checksum);
    if (!decision.refusal.empty()) {
        const int status =
            pending.modes.cancel_refusal_status == cancel_refusal_status::http400 ? 400 : 200;
        p.response = json_response(status, envelope(1, decision.refusal, nullptr));
        return;
    }
    ledger_.cancel(*index, decision.amount, std::move(pending.reason),
                   std::string(to_string(pending.modes.partial_cancel_status)), now_ms);
    p.response = json_response(200, envelope(0, nullptr, to_payment_json(ledger_.at(*index))));
}

simulator::console_cancel_result simulator::console_cancel(const std::string& imp_uid,
                                                           const std::string& merchant_uid,
                                                           std::optional<std::int64_t> amount,
                                                           std::string reason,
                                                           std::int64_t now_ms) {
    console_cancel_result r;
    r.record = cancel_target(imp_uid, merchant_uid);
    if (!r.record) {
        r.status = 404;
        r.error = std::string(msg_not_found);
        return r;
    }
    const auto decision = decide_cancel(ledger_.at(*r.record), amount, std::nullopt);
    if (!decision.refusal.empty()) {
        r.status = 409;
        r.error = decision.refusal;
        r.record.reset();
        return r;
    }
    ledger_.cancel(*r.record, decision.amount, std::move(reason),
                   std::string(to_string(config_.modes.partial_cancel_status)), now_ms);
    return r;
}

void simulator::payments_by_status(const std::string& status,
                                   const std::map<std::string, std::string>& query,
                                   std::int64_t now_ms, plan& p) {
    if (status != "all" && !known_status(status)) {
        p.response = bad_request(
            "payment_status 파라미터는 all, ready, paid, failed, cancelled 중 하나여야 합니다.");
        return;
    }
    const auto sorting_it = query.find("sorting");
    const auto order = parse_sorting(sorting_it == query.end() ? "" : sorting_it->second);
    if (!order) {
        p.response = bad_request("sorting 파라미터가 올바르지 않습니다.");
        return;
    }
    // Each query number, or its default; a value that is not an integer fails the request.
    bool numbers_ok = true;
    auto number = [&](const char* key, long long fallback) {
        const auto it = query.find(key);
        if (it == query.end() || it->second.empty()) return fallback;
        char* end = nullptr;
        const long long v = std::strtoll(it->second.c_str(), &end, 10);
        if (*end != '\0') numbers_ok = false;
        return v;
    };
    // Bounds that keep the arithmetic below far from overflow (year 9999, 10^12 pages).
    constexpr long long max_window_s = 90LL * 86400, max_time_s = 253402300799LL;
    const long long to = number("to", now_ms / 1000);
    const long long from = number("from", to - max_window_s);
    const long long page = number("page", 1), limit = number("limit", 20);
    if (!numbers_ok || to < 0 || to > max_time_s || from < -max_time_s || from > max_time_s ||
        page < 1 || page > 1000000000000LL || limit < 1 || limit > 1000) {
        p.response = bad_request(
            "from, to는 UNIX timestamp, page는 1 이상, limit은 1 이상 1000 이하여야 합니다.");
        return;
    }
    if (from > to || to - from > max_window_s) {
        p.response = bad_request("조회 기간(from ~ to)은 최대 90일까지 지정할 수 있습니다.");
        return;
    }
    const auto found = ledger_.by_status(status, from, to, *order);
    const auto total = static_cast<long long>(found.size());
    if (page > 1 && (page - 1) * limit >= total) {
        p.response = bad_request("데이터 범위를 넘어선 page입니다.");
        return;
    }
    json list = json::array();
    for (long long i = (page - 1) * limit; i < std::min(total, page * limit); ++i)
        list.push_back(to_payment_json(*found[static_cast<std::size_t>(i)]));
    json response = {{"total", total},
                     {"previous", page > 1 ? page - 1 : 0},
                     {"next", page * limit < total ? page + 1 : 0},
                     {"list", std::move(list)}};
    p.response = json_response(200, envelope(0, nullptr, response));
}

void simulator::customer(const std::string& method, const std::string& customer_uid,
                         std::int64_t now_ms, plan& p) {
    if (!customers_.registered(customer_uid)) {
        p.response = json_response(404, envelope(-1,
                                                 "요청하신 customer_uid(" + customer_uid +
                                                     ")로 등록된 정보를 찾을 수 없습니다.",
                                                 nullptr));
        return;
    }
    auto info = customer_json(customer_uid, customers_.state(customer_uid, now_ms));
    if (method == "DELETE") {
        customers_.remove(customer_uid, now_ms);
        info["updated"] = now_ms / 1000;
    }
    p.response = json_response(200, envelope(0, nullptr, info));
}

}  // namespace portone_sim
