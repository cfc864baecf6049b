// Helpers for driving the simulator's pure behaviour layer in tests.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "simulator.hpp"

namespace sim_test {

using nlohmann::json;
using portone_sim::completion;
using portone_sim::http_request;
using portone_sim::simulator;

// 2024-11-27 09:33:20 UTC; tests move time explicitly.
inline constexpr std::int64_t t0 = 1732700000000;

struct answer {
    int status = 0;
    json body;
    completion raw;
};

inline answer to_answer(completion c) {
    answer a;
    a.status = c.response.status;
    a.body = json::parse(c.response.body, nullptr, false);
    a.raw = std::move(c);
    return a;
}

inline answer send(simulator& sim, std::string method, std::string target, std::string body,
                   std::int64_t now, std::string token = {}) {
    http_request r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.body = std::move(body);
    r.content_type = "application/json";
    if (!token.empty()) r.authorization = "Bearer " + token;
    return to_answer(sim.serve(r, now));
}

inline std::string token(simulator& sim, std::int64_t now) {
    auto a = send(sim, "POST", "/users/getToken",
                  R"({"imp_key":"sim_key","imp_secret":"sim_secret"})", now);
    return a.body["response"]["access_token"].get<std::string>();
}

inline json charge_body(const std::string& customer, const std::string& merchant,
                        std::int64_t amount = 9900) {
    return {{"customer_uid", customer},
            {"merchant_uid", merchant},
            {"amount", amount},
            {"name", "monthly plan"}};
}

inline answer charge(simulator& sim, const std::string& customer, const std::string& merchant,
                     std::int64_t now, std::int64_t amount = 9900) {
    const auto tok = token(sim, now);
    return send(sim, "POST", "/subscribe/payments/again",
                charge_body(customer, merchant, amount).dump(), now, tok);
}

inline answer get(simulator& sim, const std::string& target, std::int64_t now) {
    const auto tok = token(sim, now);
    return send(sim, "GET", target, "", now, tok);
}

}  // namespace sim_test
