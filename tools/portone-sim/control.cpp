// Control endpoints of the simulator (`/__sim/...`): not part of PortOne, no token needed.
//   GET  /__sim/ledger        every payment record ever created, in creation order
//   GET  /__sim/stats         request counts per endpoint, answers per status, fault firings
//   GET  /__sim/faults        the current fault set and seed
//   POST /__sim/faults        {"faults":["charge:http503_before:1.0"], "seed":N?} replaces it
//   POST /__sim/customers     {"customers":{...},"prefixes":{...}} adds/overrides behaviours
//   POST /__sim/token/expire  invalidates the current access token
//   GET  /__sim/modes         {"ok":true,"record_at":"arrival","failed_uid_reuse":"allow"}
//   POST /__sim/modes         {"record_at":"answer"} and/or {"failed_uid_reuse":"refuse"}
//   GET  /__sim/requests      per-merchant_uid request counts (?merchant_uid=X for one)
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

// Applies `{"record_at":..., "failed_uid_reuse":...}` (either may be left out) to a copy, so a
// bad value changes nothing.
sim_modes parse_modes(const json& body, sim_modes modes) {
    if (!body.is_object())
        throw std::invalid_argument(R"(expected {"record_at":..., "failed_uid_reuse":...})");
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
        } else {
            throw std::invalid_argument("unknown mode " + key);
        }
    }
    return modes;
}

}  // namespace

void simulator::control(const http_request& request, const std::vector<std::string>& segments,
                        plan& p) {
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
            const auto only = query.find("merchant_uid");
            p.response = json_response(
                200, dump(requests_json(only == query.end() ? std::nullopt
                                                            : std::optional(only->second))));
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
