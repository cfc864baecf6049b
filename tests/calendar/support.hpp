// Literal helpers for the calendar tests: they abort loudly on a malformed literal, so a typo
// in a table cannot turn into a silently passing case.
#pragma once

#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "calendar/calendar.hpp"

namespace billingd::calendar::test {

inline local_days day(std::string_view text) {
    auto parsed = parse_local_date(text);
    REQUIRE_MESSAGE(parsed.has_value(), "bad date literal ", std::string{text});
    return *parsed;
}

inline sys_seconds utc(std::string_view text) {
    auto parsed = parse_utc(text);
    REQUIRE_MESSAGE(parsed.has_value(), "bad instant literal ", std::string{text});
    return *parsed;
}

inline time_of_day at(std::string_view text) {
    auto parsed = parse_time_of_day(text);
    REQUIRE_MESSAGE(parsed.has_value(), "bad time literal ", std::string{text});
    return *parsed;
}

inline const date::time_zone* zone(std::string_view name) {
    auto found = find_zone(name);
    REQUIRE_MESSAGE(found != nullptr, "tz database lacks ", std::string{name});
    return found;
}

}  // namespace billingd::calendar::test
