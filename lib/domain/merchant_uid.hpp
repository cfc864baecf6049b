// Deterministic merchant_uid for one (subscription, billing period), unique across databases.
//
// Format: "<install_id>-<uid_key>-p<period_index>". The install id is created with the
// database (or is the configured merchant_uid_prefix), the uid_key is random per
// subscription and set once at insert; both are stored in the database. So the same
// (subscription, period) always yields the same string — every retry of a period reuses it
// and PortOne itself refuses a second payment for that period — and two databases on one
// PortOne account (staging and production, a re-created or restored database) never mint the
// same one. Version 1 databases made "<prefix>-s<id>-p<period>"; those charges keep theirs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace billingd::domain {

inline constexpr std::size_t max_merchant_uid_length = 40;
inline constexpr std::size_t max_merchant_uid_prefix_length = 12;  // also the install id's
inline constexpr std::int64_t max_period_index = 1'000'000;        // schema CHECK too
// The largest amount billingd charges (KRW): sums of a pass's amounts cannot overflow.
inline constexpr std::int64_t max_amount = 100'000'000'000;

// An error text when the prefix (install id) is unusable: empty is allowed here (it means
// "random"), too long or characters outside [A-Za-z0-9_-] are not.
std::optional<std::string> check_merchant_uid_prefix(std::string_view prefix);

// True when `text` is 1..40 characters of [A-Za-z0-9_-].
bool is_valid_merchant_uid(std::string_view text);

// std::nullopt when the install id or key is empty or malformed, or the period is outside
// 0..max_period_index; callers flag such a row instead of truncating. Never longer than 40:
// 12 + 1 + 16 + 2 + 7 characters at most.
std::optional<std::string> make_merchant_uid(std::string_view install_id, std::string_view uid_key,
                                             std::int64_t period_index);

}  // namespace billingd::domain
