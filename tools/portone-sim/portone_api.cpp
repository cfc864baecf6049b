// The PortOne V1 endpoints of the simulator (see PORTONE_V1.md).
#include <array>
#include <cmath>
#include <cstdio>
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
