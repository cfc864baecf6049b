// Amounts and instants as people read them, in messages and event details that billingctl and
// the API share ("9,900 KRW", "2024-01-31 10:00 KST"). Pure functions (the OS tz database).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace billingd::operations {

// "9,900 KRW", "12.50 USD" (amounts are in the currency's minor unit).
std::string format_amount(std::int64_t amount, std::string_view currency);
// "2024-01-31 10:00 KST" in `time_zone` (UTC when the zone is unknown); "-" when absent.
std::string format_local(std::optional<std::int64_t> t, std::string_view time_zone);

}  // namespace billingd::operations
