// Text forms: configuration and CLI input must round-trip and reject anything malformed.
#include <doctest/doctest.h>

#include <string>

#include "calendar/calendar.hpp"

namespace billingd::calendar {
namespace {

TEST_CASE("interval units parse from their exact names and print back") {
    const struct {
        const char* text;
        bool valid;
    } cases[] = {
        {"day", true},    {"week", true},    {"month", true}, {"year", true},       {"", false},
        {"Month", false}, {"months", false}, {" day", false}, {"fortnight", false},
    };
    for (const auto& c : cases) {
        CAPTURE(c.text);
        auto unit = parse_interval_unit(c.text);
        REQUIRE_EQ(unit.has_value(), c.valid);
        if (unit) CHECK_EQ(std::string{to_string(*unit)}, std::string{c.text});
    }
}

TEST_CASE("a charge time parses as HH:MM within one day and prints back") {
    const struct {
        const char* text;
        int minutes;  // -1: rejected
    } cases[] = {
        {"00:00", 0},     {"09:05", 545}, {"23:59", 1439}, {"12:30", 750}, {"24:00", -1},
        {"23:60", -1},    {"9:05", -1},   {"09:5", -1},    {"09-05", -1},  {"0905", -1},
        {"", -1},         {"abc", -1},    {"ab:cd", -1},   {"09:05 ", -1}, {" 09:05", -1},
        {"09:05:00", -1}, {"+9:05", -1},  {"-1:00", -1},
    };
    for (const auto& c : cases) {
        CAPTURE(c.text);
        auto parsed = parse_time_of_day(c.text);
        REQUIRE_EQ(parsed.has_value(), c.minutes >= 0);
        if (parsed) {
            CHECK_EQ(parsed->since_midnight.count(), c.minutes);
            CHECK_EQ(to_string(*parsed), std::string{c.text});
        }
    }
}

TEST_CASE("a local date parses only when it exists on the calendar") {
    const struct {
        const char* text;
        bool valid;
    } cases[] = {
        {"2024-02-29", true},   {"2025-02-28", true},
        {"2024-12-31", true},   {"2000-02-29", true},
        {"1970-01-01", true},   {"2024-02-30", false},
        {"2025-02-29", false},  {"2100-02-29", false},
        {"2024-04-31", false},  {"2024-13-01", false},
        {"2024-00-10", false},  {"2024-01-00", false},
        {"2024-1-01", false},   {"24-01-01", false},
        {"2024/01/01", false},  {"", false},
        {"abc", false},         {"2024-01-01x", false},
        {"2024-01-01 ", false}, {"2024-01-0x", false},
        {"+024-01-01", false},
    };
    for (const auto& c : cases) {
        CAPTURE(c.text);
        auto parsed = parse_local_date(c.text);
        REQUIRE_EQ(parsed.has_value(), c.valid);
        if (parsed) CHECK_EQ(format_local_date(*parsed), std::string{c.text});
    }
}

TEST_CASE("a UTC instant parses in ISO, space-separated and date-only forms") {
    const struct {
        const char* text;
        const char* canonical;  // nullptr: rejected
    } cases[] = {
        {"2024-02-29T01:00:00Z", "2024-02-29T01:00:00Z"},
        {"2024-12-31T23:59:59Z", "2024-12-31T23:59:59Z"},
        {"1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"},
        {"1969-12-31T23:59:59Z", "1969-12-31T23:59:59Z"},
        {"2024-02-29 01:00:00", "2024-02-29T01:00:00Z"},
        {"2024-02-29", "2024-02-29T00:00:00Z"},
        {"2024-02-30T00:00:00Z", nullptr},
        {"2024-02-29T24:00:00Z", nullptr},
        {"2024-02-29T23:60:00Z", nullptr},
        {"2024-02-29T23:59:60Z", nullptr},
        {"2024-02-29T01:00:00", nullptr},
        {"2024-02-29T01:00:00z", nullptr},
        {"2024-02-29T01:00Z", nullptr},
        {"2024-02-29T01:00:00+09:00", nullptr},
        {"2024-02-29 01:00:00Z", nullptr},
        {"2024-02-29T01:00:00Zjunk", nullptr},
        {"2024-02-29x", nullptr},
        {"", nullptr},
        {"abc", nullptr},
    };
    for (const auto& c : cases) {
        CAPTURE(c.text);
        auto parsed = parse_utc(c.text);
        REQUIRE_EQ(parsed.has_value(), c.canonical != nullptr);
        if (parsed) CHECK_EQ(format_utc(*parsed), std::string{c.canonical});
    }
}

TEST_CASE("a UTC instant counts seconds from the Unix epoch") {
    const struct {
        const char* text;
        long long seconds;
    } cases[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"1969-12-31T23:59:59Z", -1},
        {"2024-02-29T00:00:00Z", 1709164800},
        {"2038-01-19T03:14:08Z", 2147483648LL},
    };
    for (const auto& c : cases) {
        CAPTURE(c.text);
        auto parsed = parse_utc(c.text);
        REQUIRE(parsed.has_value());
        CHECK_EQ(static_cast<long long>(parsed->time_since_epoch().count()), c.seconds);
    }
}

}  // namespace
}  // namespace billingd::calendar
