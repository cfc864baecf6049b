#include "domain/merchant_uid.hpp"

#include <algorithm>

namespace billingd::domain {
namespace {

bool is_uid_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

}  // namespace

std::optional<std::string> check_merchant_uid_prefix(std::string_view prefix) {
    if (prefix.size() > max_merchant_uid_prefix_length)
        return "merchant_uid prefix must be at most 12 characters";
    if (!std::all_of(prefix.begin(), prefix.end(), is_uid_char))
        return "merchant_uid prefix may only contain A-Z, a-z, 0-9, '_' and '-'";
    return std::nullopt;
}

bool is_valid_merchant_uid(std::string_view text) {
    return !text.empty() && text.size() <= max_merchant_uid_length &&
           std::all_of(text.begin(), text.end(), is_uid_char);
}

std::optional<std::string> make_merchant_uid(std::string_view install_id, std::string_view uid_key,
                                             std::int64_t period_index) {
    if (install_id.empty() || check_merchant_uid_prefix(install_id)) return {};
    if (uid_key.size() < 8 || uid_key.size() > 16 ||
        !std::all_of(uid_key.begin(), uid_key.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'); }))
        return {};
    if (period_index < 0 || period_index > max_period_index) return {};
    std::string uid;
    uid.reserve(max_merchant_uid_length);
    uid.append(install_id);
    uid.push_back('-');
    uid.append(uid_key);
    uid.append("-p");
    uid.append(std::to_string(period_index));
    if (uid.size() > max_merchant_uid_length) return {};
    return uid;
}

}  // namespace billingd::domain
