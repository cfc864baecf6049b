// What billingctl accepts from an operator's command line: whole numbers in base 10 only, and
// text without control characters.
//
// CLI11 reads integers as C literals (010 is octal 8, 0x10 is 16) and clamps what does not
// fit, so no option or positional is bound to an integer directly: add_integer takes the text
// and read_integer reads it, the one place billingctl turns typed text into a number. A number
// is ASCII digits, optionally led by '-', with no '+', no leading zero (in money it is more
// likely a typo than a wish for octal), no spaces, separators, fractions or exponents, and
// nothing after it. Exit codes follow `billingctl --help`: text that is not such a number is
// a bad command line (CLI::ValidationError, 64); a number outside the option's range is an
// invalid value (failure, 65), refused while the command line is parsed, before any command
// touches the database. The ranges are the operations' (operations/subscriptions.hpp ...).
#pragma once

#include <CLI/CLI.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "operations/input.hpp"

namespace billingd::ctl {

// The largest id billingctl accepts: 2^53, the largest integer every JSON reader (JavaScript,
// jq) holds exactly.
inline constexpr std::int64_t max_id = std::int64_t{1} << 53;

// The value of `text` if it is a base-10 integer in [min, max]. Otherwise `malformed` tells a
// syntax problem (exit 64) from a number out of range (exit 65), and `error` says what is
// wrong and how to type it, without the option's name.
struct integer_reading {
    std::optional<std::int64_t> value;
    bool malformed = false;
    std::string error;
};
integer_reading read_integer(std::string_view text, std::int64_t min, std::int64_t max);

// Adds the option (or positional) `name` to `app`; its text is read by read_integer into
// `target` while the command line is parsed. Throws CLI::ValidationError (exit 64) for
// malformed text and failure(exit_code::data) for a number outside [min, max], naming `name`.
CLI::Option* add_integer(CLI::App* app, const std::string& name, std::int64_t& target,
                         std::int64_t min, std::int64_t max, const std::string& description);

// Text typed by an operator that reaches the database, an event row, a terminal or PortOne:
// operations::check_labelled_text naming `option` (valid UTF-8 of min..max characters without
// control characters; `trimmed`: no white space at either end). Throws operations::error
// (invalid, exit 65). Values an operation takes are checked by the operation itself.
inline void check_text(std::string_view option, std::string_view value, std::size_t min,
                       std::size_t max, bool trimmed = false) {
    operations::check_labelled_text(option, value, min, max, trimmed);
}
using operations::shown;

}  // namespace billingd::ctl
