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

std::optional<std::string> make_merchant_uid(std::string_view prefix, std::int64_t subscription_id,
                                             std::int64_t period_index) {
    if (subscription_id < 0 || period_index < 0 || check_merchant_uid_prefix(prefix)) return {};
    std::string uid;
    if (!prefix.empty()) {
        uid.append(prefix);
        uid.push_back('-');
    }
    uid.push_back('s');
    uid.append(std::to_string(subscription_id));
    uid.append("-p");
    uid.append(std::to_string(period_index));
    if (uid.size() > max_merchant_uid_length) return {};
    return uid;
}

}  // namespace billingd::domain
