// Control endpoints of the simulator (`/__sim/...`): not part of PortOne, no token needed.
//   GET  /__sim/ledger        every payment record ever created, in creation order
//   GET  /__sim/stats         request counts per endpoint, answers per status, fault firings
//   GET  /__sim/faults        the current fault set and seed
//   POST /__sim/faults        {"faults":["charge:http503_before:1.0"], "seed":N?} replaces it
//   POST /__sim/customers     {"customers":{...},"prefixes":{...}} adds/overrides behaviours
//   POST /__sim/token/expire  invalidates the current access token
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "simulator.hpp"

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
