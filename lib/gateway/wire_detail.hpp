// What the wire layer's translation units share (wire.cpp: charges, findAll, customers,
// tokens; wire_refunds.cpp: cancels, payments, the cancelled list): reading PortOne's JSON and
// filling an `exchange`. Internal to lib/gateway: nothing outside wire*.cpp includes it, so
// JSON stays inside the wire layer. Pure functions; none throws for any input.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "gateway/types.hpp"
#include "gateway/wire.hpp"

namespace billingd::gateway::wire::detail {

using json = nlohmann::json;

// Compact JSON text; invalid UTF-8 is replaced, never thrown on.
std::string dump(const json& j);
// The whole text with the JSON library (bytes that are not UTF-8 kept as "\\xHH" text);
// nullopt when it is not JSON.
std::optional<json> parse_json(std::string_view text);
// An answer whose response is one payment (charge, cancel, GET /payments/{imp_uid}), read
// without building more than the envelope and the payment's fields billingd uses (see the
// scanner in wire_detail.cpp); nullopt when it is not JSON.
std::optional<json> parse_payment_envelope(std::string_view text);

// A string member, "" when absent or not a string.
std::string string_field(const json& object, const char* key);
// Integers, or floats with an integral value; nullopt for anything else that is present.
// Absent or null fields read as 0.
std::optional<std::int64_t> integer_field(const json& object, const char* key);
// A payment object (with its cancel_history); nullopt when it is not an object or a number
// or the cancel_history is not what PortOne sends.
std::optional<payment> payment_from(const json& j);
// nullopt unless `j` is an object with an integer `code`.
std::optional<envelope> envelope_from(const json& j);

// Fills the fields every classification shares; result and message are decided by the caller.
exchange base_exchange(std::string kind, std::string summary, const http_answer& answer);
// "not sent: ..." or "no complete answer after the request was sent: ...".
std::string transport_message(const http_answer& answer);
// "HTTP <status>[: <envelope message>]".
std::string http_message(int status, const std::optional<envelope>& env);

}  // namespace billingd::gateway::wire::detail
