// Control endpoints of the simulator (`/__sim/...`): not part of PortOne, no token needed.
//   GET  /__sim/ledger        every payment record ever created, in creation order
//   GET  /__sim/stats         request counts per endpoint, answers per status, fault firings
//   GET  /__sim/faults        the current fault set and seed
//   POST /__sim/faults        {"faults":["charge:http503_before:1.0"], "seed":N?} replaces it
//   POST /__sim/customers     {"customers":{...},"prefixes":{...}} adds/overrides behaviours
//   POST /__sim/token/expire  invalidates the current access token
//   GET  /__sim/modes         {"ok":true,"record_at":"arrival","failed_uid_reuse":"allow",
//                             "cancel_refusal_status":200,"partial_cancel_status":"paid"}
//   POST /__sim/modes         any of those keys, e.g. {"record_at":"answer"}
//   GET  /__sim/requests      per-merchant_uid and per-imp_uid request counts
//                             (?merchant_uid=X or ?imp_uid=X for one)
//   POST /__sim/console-cancel {"imp_uid"|"merchant_uid", "amount"?, "reason"?}: a refund made
//                             in PortOne's console (no checksum, not a counted request)
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "simulator.hpp"
#include "wire.hpp"

namespace portone_sim {
namespace {

using nlohmann::json;

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

http_response control_error(int status, std::string_view message) {
    return json_response(status, dump({{"ok", false}, {"error", message}}));
}

json faults_json(const fault_plan& plan) {
    json list = json::array();
    for (const auto& f : plan.faults()) list.push_back(f.text);
    return {{"ok", true}, {"seed", plan.seed()}, {"faults", list}};
}

// Applies `{"record_at":..., "failed_uid_reuse":..., "cancel_refusal_status":...,
// "partial_cancel_status":...}` (any may be left out) to a copy, so a bad value changes nothing.
sim_modes parse_modes(const json& body, sim_modes modes) {
    if (!body.is_object())
        throw std::invalid_argument(
            R"(expected {"record_at":..., "failed_uid_reuse":..., "cancel_refusal_status":..., )"
            R"("partial_cancel_status":...})");
    for (const auto& [key, value] : body.items()) {
        const auto text = value.is_string() ? value.get<std::string>() : value.dump();
        if (key == "record_at") {
            const auto r = parse_record_at(text);
            if (!r) throw std::invalid_argument("record_at is arrival or answer, not " + text);
            modes.record_at = *r;
        } else if (key == "failed_uid_reuse") {
            const auto f = parse_failed_uid_reuse(text);
            if (!f) throw std::invalid_argument("failed_uid_reuse is allow or refuse, not " + text);
            modes.failed_uid_reuse = *f;
        } else if (key == "cancel_refusal_status") {
            const auto c = parse_cancel_refusal_status(text);
            if (!c) throw std::invalid_argument("cancel_refusal_status is 200 or 400, not " + text);
            modes.cancel_refusal_status = *c;
        } else if (key == "partial_cancel_status") {
            const auto c = parse_partial_cancel_status(text);
            if (!c)
                throw std::invalid_argument("partial_cancel_status is paid or cancelled, not " +
                                            text);
            modes.partial_cancel_status = *c;
        } else {
            throw std::invalid_argument("unknown mode " + key);
        }
    }
    return modes;
}

}  // namespace

void simulator::control(const http_request& request, const std::vector<std::string>& segments,
                        std::int64_t now_ms, plan& p) {
    const std::string what = segments.size() >= 2 ? segments[1] : std::string();
    const bool get = request.method == "GET", post = request.method == "POST";
    try {
        if (get && what == "ledger" && segments.size() == 2) {
            p.response = json_response(200, dump(ledger_.to_json()));
        } else if (get && what == "stats" && segments.size() == 2) {
            p.response = json_response(200, dump(stats_json()));
        } else if (get && what == "faults" && segments.size() == 2) {
            p.response = json_response(200, dump(faults_json(faults_)));
        } else if (post && what == "faults" && segments.size() == 2) {
            const auto body = json::parse(request.body);
            if (!body.is_object() || !body.contains("faults") || !body["faults"].is_array())
                throw std::invalid_argument(
                    "expected {\"faults\": [\"ENDPOINT:KIND:P[:COUNT]\", ...]}");
            std::vector<fault_spec> specs;
            for (const auto& f : body["faults"]) specs.push_back(parse_fault(f.get<std::string>()));
            const auto seed =
                body.contains("seed") ? body["seed"].get<std::uint64_t>() : faults_.seed();
            faults_.replace(std::move(specs), seed);
            p.response = json_response(200, dump(faults_json(faults_)));
        } else if (post && what == "customers" && segments.size() == 2) {
            const auto rules = json::parse(request.body);
            customer_book scratch;
            scratch.load_rules(rules);  // validate everything before changing anything
            customers_.load_rules(rules);
            p.response = json_response(200, dump({{"ok", true}}));
        } else if (get && what == "modes" && segments.size() == 2) {
            p.response = json_response(200, dump(modes_json()));
        } else if (post && what == "modes" && segments.size() == 2) {
            config_.modes = parse_modes(json::parse(request.body), config_.modes);
            p.response = json_response(200, dump(modes_json()));
        } else if (get && what == "requests" && segments.size() == 2) {
            const auto query = split_target(request.target).query;
            const auto param = [&](const char* key) {
                const auto it = query.find(key);
                return it == query.end() ? std::nullopt : std::optional(it->second);
            };
            p.response =
                json_response(200, dump(requests_json(param("merchant_uid"), param("imp_uid"))));
        } else if (post && what == "console-cancel" && segments.size() == 2) {
            const auto body = json::parse(request.body);
            if (!body.is_object()) throw std::invalid_argument("expected a JSON object");
            const auto text = [&](const char* key) {
                return body.contains(key) ? body[key].get<std::string>() : std::string();
            };
            std::optional<std::int64_t> amount;
            if (body.contains("amount") && !body["amount"].is_null()) {
                if (!body["amount"].is_number_integer() || body["amount"].get<std::int64_t>() <= 0)
                    throw std::invalid_argument("amount must be a positive integer");
                amount = body["amount"].get<std::int64_t>();
            }
            const auto imp_uid = text("imp_uid"), merchant_uid = text("merchant_uid");
            if (imp_uid.empty() && merchant_uid.empty())
                throw std::invalid_argument("imp_uid or merchant_uid is required");
            auto done = console_cancel(imp_uid, merchant_uid, amount, text("reason"), now_ms);
            p.response =
                done.record
                    ? json_response(
                          200, dump({{"ok", true},
                                     {"payment", to_payment_json(ledger_.all()[*done.record])}}))
                    : control_error(done.status, done.error);
        } else if (post && what == "token" && segments.size() == 3 && segments[2] == "expire") {
            tokens_.expire();
            p.response = json_response(200, dump({{"ok", true}}));
        } else {
            p.response = control_error(404, "unknown control endpoint");
        }
    } catch (const std::exception& e) {
        // json::exception and std::invalid_argument: the test sent something malformed.
        p.response = control_error(400, e.what());
    }
}

}  // namespace portone_sim
