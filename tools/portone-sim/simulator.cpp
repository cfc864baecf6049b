#include "simulator.hpp"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "wire.hpp"

namespace portone_sim {
namespace {

struct route {
    endpoint ep;
    std::string name;
};

// Maps method + path to a PortOne endpoint; nullopt for anything else.
std::optional<route> match(const std::string& method, const std::vector<std::string>& seg) {
    const auto n = seg.size();
    if (method == "POST" && n == 2 && seg[0] == "users" && seg[1] == "getToken")
        return route{endpoint::token, "token"};
    if (method == "POST" && n == 3 && seg[0] == "subscribe" && seg[1] == "payments" &&
        seg[2] == "again")
        return route{endpoint::charge, "charge"};
    if ((method == "GET" || method == "DELETE") && n == 3 && seg[0] == "subscribe" &&
        seg[1] == "customers")
        return route{endpoint::customer, "customer"};
    if (method == "POST" && n == 2 && seg[0] == "payments" && seg[1] == "cancel")
        return route{endpoint::cancel, "cancel"};
    if (method == "GET" && n >= 2 && seg[0] == "payments") {
        if ((n == 3 || n == 4) && seg[1] == "find") return route{endpoint::find, "find"};
        if ((n == 3 || n == 4) && seg[1] == "findAll") return route{endpoint::find_all, "findAll"};
        if (n == 3 && seg[1] == "status") return route{endpoint::status, "status"};
        if (n == 2) return route{endpoint::payment, "payment"};
    }
    return std::nullopt;
}

// The merchant_uid a counted charge or lookup is about; nullopt for other requests.
std::optional<std::string> counted_merchant_uid(endpoint ep, const http_request& request,
                                                const std::vector<std::string>& segments) {
    if (ep == endpoint::find || ep == endpoint::find_all)
        return segments[2].empty() ? std::nullopt : std::optional(segments[2]);
    if (ep != endpoint::charge) return std::nullopt;
    const auto body = nlohmann::json::parse(request.body, nullptr, false);
    if (!body.is_object()) return std::nullopt;
    const auto it = body.find("merchant_uid");
    if (it == body.end() || !it->is_string() || it->get_ref<const std::string&>().empty())
        return std::nullopt;
    return it->get<std::string>();
}

std::string padded(const std::string& body, std::size_t size) {
    // Keep it valid JSON: add a huge member to the envelope object.
    if (body.empty() || body.back() != '}') return std::string(size, ' ') + body;
    std::string out = body.substr(0, body.size() - 1);
    out += ",\"padding\":\"";
    out.append(size > out.size() ? size - out.size() : 0, 'x');
    out += "\"}";
    return out;
}

}  // namespace

http_response json_response(int status, std::string body) {
    http_response r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

http_response html_response(int status) {
    const char* reason = status == 500   ? "Internal Server Error"
                         : status == 502 ? "Bad Gateway"
                         : status == 503 ? "Service Temporarily Unavailable"
                                         : "OK";
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n<center><h1>%d "
                  "%s</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
                  status, reason, status, reason);
    http_response r;
    r.status = status;
    r.content_type = "text/html";
    r.body = buf;
    return r;
}

std::string_view to_string(record_at r) {
    return r == record_at::answer ? "answer" : "arrival";
}

std::string_view to_string(failed_uid_reuse f) {
    return f == failed_uid_reuse::refuse ? "refuse" : "allow";
}

std::string_view to_string(cancel_refusal_status s) {
    return s == cancel_refusal_status::http400 ? "400" : "200";
}

std::string_view to_string(partial_cancel_status s) {
    return s == partial_cancel_status::cancelled ? "cancelled" : "paid";
}

std::optional<cancel_refusal_status> parse_cancel_refusal_status(std::string_view text) {
    if (text == "200") return cancel_refusal_status::http200;
    if (text == "400") return cancel_refusal_status::http400;
    return std::nullopt;
}

std::optional<partial_cancel_status> parse_partial_cancel_status(std::string_view text) {
    if (text == "paid") return partial_cancel_status::paid;
    if (text == "cancelled") return partial_cancel_status::cancelled;
    return std::nullopt;
}

std::optional<record_at> parse_record_at(std::string_view text) {
    if (text == "arrival") return record_at::arrival;
    if (text == "answer") return record_at::answer;
    return std::nullopt;
}

std::optional<failed_uid_reuse> parse_failed_uid_reuse(std::string_view text) {
    if (text == "allow") return failed_uid_reuse::allow;
    if (text == "refuse") return failed_uid_reuse::refuse;
    return std::nullopt;
}

std::string masked_card_number(const std::string& customer_uid) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "536181******%04u",
                  static_cast<unsigned>(stable_hash(customer_uid.c_str()) % 10000));
    return buf;
}

simulator::simulator(sim_config config)
    : config_(std::move(config)),
      faults_(config_.seed),
      tokens_(config_.tokens, config_.seed),
      ledger_(config_.seed) {}

plan simulator::handle(const http_request& request, std::int64_t now_ms) {
    plan p;
    const auto parts = split_target(request.target);
    if (!parts.segments.empty() && parts.segments[0] == "__sim") {
        ++requests_["sim"];
        control(request, parts.segments, now_ms, p);
        return p;
    }
    const auto r = match(request.method, parts.segments);
    if (!r) {
        ++requests_["other"];
        p.response = json_response(404, envelope(-1, "Not Found", nullptr));
        return p;
    }
    ++requests_[r->name];

    if (r->ep != endpoint::token &&
        !tokens_.authorize(presented_token(request.authorization, request.imp_token_header),
                           now_ms)) {
        p.response = json_response(401, envelope(-1, "Unauthorized", nullptr));
        return p;
    }
    // Counted before the fault draw: a request answered by a fault still reached the PG.
    if (auto merchant_uid = counted_merchant_uid(r->ep, request, parts.segments))
        track({std::move(*merchant_uid), r->ep == endpoint::charge, {}, false}, now_ms, p);
    if (r->ep == endpoint::payment && !parts.segments[1].empty())
        track({{}, false, parts.segments[1], false}, now_ms, p);
    if (r->ep == endpoint::cancel)
        if (auto imp_uid = cancel_imp_uid(request)) track({{}, false, *imp_uid, true}, now_ms, p);

    const auto decision = faults_.draw(r->ep);
    p.delay = decision.delay;
    p.variant = decision.variant;
    if (decision.kind && is_before(*decision.kind)) {
        switch (*decision.kind) {
            case fault_kind::http429:
                p.response = json_response(429, envelope(-1, "Too Many Requests", nullptr));
                p.response.headers.emplace_back("Retry-After", "1");
                break;
            case fault_kind::pg_failure:
                p.response = json_response(200, envelope(-1, msg_pg_failure, nullptr));
                break;
            case fault_kind::http500_before:
                p.response = html_response(500);
                break;
            case fault_kind::http502_before:
                p.response = html_response(502);
                break;
            default:
                p.response = html_response(503);
                break;
        }
        return p;
    }
    if (decision.kind && *decision.kind != fault_kind::token_expire_early) p.after = decision.kind;

    const bool single_use = decision.kind == fault_kind::token_expire_early;
    switch (r->ep) {
        case endpoint::token:
            get_token(request, single_use, now_ms, p);
            break;
        case endpoint::charge:
            charge(request, now_ms, p);
            break;
        case endpoint::find:
            find(parts.segments, parts.query, false, p);
            break;
        case endpoint::find_all:
            find(parts.segments, parts.query, true, p);
            break;
        case endpoint::payment:
            get_payment(parts.segments[1], p);
            break;
        case endpoint::customer:
            customer(request.method, parts.segments[2], now_ms, p);
            break;
        case endpoint::cancel:
            cancel(request, p);
            break;
        case endpoint::status:
            payments_by_status(parts.segments[2], parts.query, now_ms, p);
            break;
    }
    return p;
}

completion simulator::complete(plan p, std::int64_t now_ms) {
    if (p.charge) settle(*p.charge, now_ms, p);
    if (p.cancel) apply_cancel(*p.cancel, now_ms, p);
    completion c;
    c.response = std::move(p.response);
    if (p.after) {
        switch (*p.after) {
            case fault_kind::http500_after:
                c.response = html_response(500);
                break;
            case fault_kind::http503_after:
                c.response = html_response(503);
                break;
            case fault_kind::hang_after:
                c.action = transport_action::hang;
                break;
            case fault_kind::reset_after:
                c.action = transport_action::reset;
                break;
            case fault_kind::non_json:
                c.response = html_response((p.variant & 1) != 0 ? 502 : 200);
                if (c.response.status == 200)
                    c.response.body =
                        "<html><body><h1>I'mport</h1><p>점검 중입니다.</p></body></html>";
                break;
            case fault_kind::oversize:
                c.response.body = padded(c.response.body, config_.oversize_bytes);
                break;
            default:
                break;
        }
    }
    switch (c.action) {
        case transport_action::respond:
            ++responses_[std::to_string(c.response.status)];
            break;
        case transport_action::reset:
            ++responses_["reset"];
            break;
        case transport_action::hang:
            ++responses_["hang"];
            break;
    }
    if (p.tracked) {
        if (c.action == transport_action::hang)
            c.held = std::move(p.tracked);
        else
            release(*p.tracked);
    }
    return c;
}

completion simulator::serve(const http_request& request, std::int64_t now_ms) {
    auto c = complete(handle(request, now_ms), now_ms);
    if (c.held) release(*c.held);
    c.held.reset();
    return c;
}

void simulator::track(tracked_request request, std::int64_t now_ms, plan& p) {
    if (!request.imp_uid.empty()) {
        auto& c = imp_counters_[request.imp_uid];
        c.max_concurrent = std::max(c.max_concurrent, ++c.in_progress);
        if (request.cancel) {
            ++c.cancels;
            c.max_concurrent_cancels = std::max(c.max_concurrent_cancels, ++c.in_progress_cancels);
            c.cancel_arrivals_ms.push_back(now_ms);
        } else {
            ++c.lookups;
        }
        p.tracked = std::move(request);
        return;
    }
    auto& c = counters_[request.merchant_uid];
    c.max_concurrent = std::max(c.max_concurrent, ++c.in_progress);
    if (request.charge) {
        ++c.charges;
        c.max_concurrent_charges = std::max(c.max_concurrent_charges, ++c.in_progress_charges);
        c.charge_arrivals_ms.push_back(now_ms);
    } else {
        ++c.lookups;
    }
    p.tracked = std::move(request);
}

void simulator::release(const tracked_request& request) {
    if (!request.imp_uid.empty()) {
        auto& c = imp_counters_.at(request.imp_uid);
        assert(c.in_progress > 0 && (!request.cancel || c.in_progress_cancels > 0));
        --c.in_progress;
        if (request.cancel) --c.in_progress_cancels;
        return;
    }
    auto& c = counters_.at(request.merchant_uid);
    assert(c.in_progress > 0 && (!request.charge || c.in_progress_charges > 0));
    --c.in_progress;
    if (request.charge) --c.in_progress_charges;
}

nlohmann::json simulator::stats_json() const {
    nlohmann::json requests = nlohmann::json::object();
    for (const auto& [name, n] : requests_) requests[name] = n;
    nlohmann::json responses = nlohmann::json::object();
    for (const auto& [status, n] : responses_) responses[status] = n;
    nlohmann::json faults = nlohmann::json::array();
    for (const auto& f : faults_.faults()) {
        faults.push_back({{"spec", f.text},
                          {"fired", f.fired},
                          {"remaining", f.count ? nlohmann::json(*f.count) : nullptr}});
    }
    return {{"requests", requests},
            {"responses", responses},
            {"faults", faults},
            {"seed", faults_.seed()},
            {"payments", ledger_.all().size()}};
}

nlohmann::json simulator::modes_json() const {
    return {{"ok", true},
            {"record_at", to_string(config_.modes.record_at)},
            {"failed_uid_reuse", to_string(config_.modes.failed_uid_reuse)},
            {"cancel_refusal_status",
             config_.modes.cancel_refusal_status == cancel_refusal_status::http400 ? 400 : 200},
            {"partial_cancel_status", to_string(config_.modes.partial_cancel_status)}};
}

nlohmann::json simulator::requests_json(const std::optional<std::string>& only,
                                        const std::optional<std::string>& imp_uid) const {
    auto by_imp = [](const imp_uid_counter& c) {
        return nlohmann::json{{"cancels", c.cancels},
                              {"lookups", c.lookups},
                              {"max_concurrent_cancels", c.max_concurrent_cancels},
                              {"max_concurrent", c.max_concurrent},
                              {"cancel_arrivals_ms", c.cancel_arrivals_ms}};
    };
    if (imp_uid) {
        const auto it = imp_counters_.find(*imp_uid);
        nlohmann::json imps = nlohmann::json::object();
        imps[*imp_uid] = by_imp(it == imp_counters_.end() ? imp_uid_counter{} : it->second);
        return {{"imp_uids", std::move(imps)}};
    }
    auto one = [](const request_counter& c) {
        return nlohmann::json{{"charges", c.charges},
                              {"lookups", c.lookups},
                              {"max_concurrent_charges", c.max_concurrent_charges},
                              {"max_concurrent", c.max_concurrent},
                              {"charge_arrivals_ms", c.charge_arrivals_ms}};
    };
    nlohmann::json uids = nlohmann::json::object();
    if (only) {
        const auto it = counters_.find(*only);
        uids[*only] = one(it == counters_.end() ? request_counter{} : it->second);
        return {{"merchant_uids", std::move(uids)}};
    }
    for (const auto& [uid, c] : counters_) uids[uid] = one(c);
    nlohmann::json imps = nlohmann::json::object();
    for (const auto& [uid, c] : imp_counters_) imps[uid] = by_imp(c);
    return {{"merchant_uids", std::move(uids)}, {"imp_uids", std::move(imps)}};
}

}  // namespace portone_sim
