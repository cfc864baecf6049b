#include "operations/format.hpp"

#include <date/tz.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <iterator>

#include "calendar/calendar.hpp"

namespace billingd::operations {

std::string format_amount(std::int64_t amount, std::string_view currency) {
    // Currencies without a minor unit (ISO 4217 exponent 0) that PortOne supports.
    static constexpr std::string_view zero_decimal[] = {"KRW", "JPY", "VND", "CLP", "ISK", "TWD"};
    const bool whole = std::find(std::begin(zero_decimal), std::end(zero_decimal), currency) !=
                       std::end(zero_decimal);
    const bool negative = amount < 0;
    const std::uint64_t magnitude =
        negative ? 0 - static_cast<std::uint64_t>(amount) : static_cast<std::uint64_t>(amount);
    const std::uint64_t units = whole ? magnitude : magnitude / 100;
    std::string digits = std::to_string(units);
    std::string grouped;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) grouped += ',';
        grouped += digits[i];
    }
    if (!whole) grouped += fmt::format(".{:02}", magnitude % 100);
    return fmt::format("{}{} {}", negative ? "-" : "", grouped, currency);
}

std::string format_local(std::optional<std::int64_t> t, std::string_view time_zone) {
    if (!t) return "-";
    const std::chrono::sys_seconds at{std::chrono::seconds{*t}};
    const date::time_zone* zone = calendar::find_zone(time_zone);
    if (!zone) return date::format("%Y-%m-%d %H:%M:%S UTC", at);
    return date::format("%Y-%m-%d %H:%M %Z", date::zoned_seconds{zone, at});
}

}  // namespace billingd::operations
