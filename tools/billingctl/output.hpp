// billingctl output: aligned text tables for people, JSON for scripts.
//
// JSON keys are the column names of schema/0001_initial.sql; instants are UNIX seconds (UTC)
// and absent values are null, so scripts can rely on every key being present. Tables show
// amounts with their currency and instants in the subscription's local time zone.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/records.hpp"

namespace billingd::ctl {

class table {
  public:
    explicit table(std::vector<std::string> headers);
    void add(std::vector<std::string> row);
    bool empty() const { return rows_.empty(); }
    // Prints the header and rows with columns padded to their widest cell; "(none)" if empty.
    void print() const;

  private:
    std::vector<std::string> headers_;
    std::vector<std::vector<std::string>> rows_;
};

// Display width of UTF-8 text in code points.
std::size_t text_length(std::string_view utf8);

// "9,900 KRW", "12.50 USD" (amounts are in the currency's minor unit).
std::string format_amount(std::int64_t amount, std::string_view currency);
// "2024-01-31 10:00 KST" in `time_zone` (UTC when the zone is unknown); "-" when absent.
std::string format_local(std::optional<std::int64_t> t, std::string_view time_zone);
std::string or_dash(const std::optional<std::string>& s);
std::string or_dash(const std::optional<std::int64_t>& v);

nlohmann::json to_json(const storage::subscription_record& s);
nlohmann::json to_json(const storage::charge_record& c);
nlohmann::json to_json(const storage::attempt_record& a);
nlohmann::json to_json(const storage::event_record& e);

template <typename Record>
nlohmann::json to_json(const std::vector<Record>& rows) {
    auto out = nlohmann::json::array();
    for (const auto& r : rows) out.push_back(to_json(r));
    return out;
}

void print_json(const nlohmann::json& j);

// Time zone of a subscription by id, looked up once ("UTC" when the row is gone).
class zone_cache {
  public:
    explicit zone_cache(std::function<std::optional<std::string>(std::int64_t)> lookup)
        : lookup_(std::move(lookup)) {}
    const std::string& of(std::int64_t subscription_id);

  private:
    std::function<std::optional<std::string>(std::int64_t)> lookup_;
    std::map<std::int64_t, std::string> zones_;
};

}  // namespace billingd::ctl
