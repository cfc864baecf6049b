// Deterministic merchant_uid for one (subscription, billing period).
//
// Format: "<prefix>-s<subscription_id>-p<period_index>", or "s<id>-p<period>" without a
// prefix. The same pair always yields the same string, so every retry of a period reuses it
// and PortOne itself refuses a second payment for that period. Distinct pairs never collide:
// the prefix is fixed per deployment and the decimal fields are delimited.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace billingd::domain {

inline constexpr std::size_t max_merchant_uid_length = 40;
inline constexpr std::size_t max_merchant_uid_prefix_length = 12;

// An error text when the prefix is unusable (too long, characters outside [A-Za-z0-9_-]).
std::optional<std::string> check_merchant_uid_prefix(std::string_view prefix);

// True when `text` is 1..40 characters of [A-Za-z0-9_-].
bool is_valid_merchant_uid(std::string_view text);

// std::nullopt only when ids are negative or the result would exceed 40 characters
// (ids beyond ~10^12 with a long prefix); callers park such a row instead of truncating.
std::optional<std::string> make_merchant_uid(std::string_view prefix, std::int64_t subscription_id,
                                             std::int64_t period_index);

}  // namespace billingd::domain
