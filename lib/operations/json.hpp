// The JSON of billingd's rows, one representation for `billingctl --json` and the HTTP API.
//
// Keys are the column names of the schema; instants are UNIX seconds (UTC) and absent values
// are null, so a client can rely on every key being present. Invalid UTF-8 in a row written by
// hand is the caller's to replace when it serialises (dump with error_handler_t::replace).
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "storage/records.hpp"

namespace billingd::operations {

nlohmann::json to_json(const storage::subscription_record& s);
nlohmann::json to_json(const storage::charge_record& c);
nlohmann::json to_json(const storage::attempt_record& a);
nlohmann::json to_json(const storage::event_record& e);
nlohmann::json to_json(const storage::price_entry& p);
nlohmann::json to_json(const storage::refund_record& r);

template <typename Record>
nlohmann::json to_json(const std::vector<Record>& rows) {
    auto out = nlohmann::json::array();
    for (const auto& r : rows) out.push_back(to_json(r));
    return out;
}

}  // namespace billingd::operations
