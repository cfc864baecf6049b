// The two ways billingd runs, shared by main.cpp: `--once` (charge what is due, report, exit)
// and the long-running daemon. Both take the configuration already validated.
//
// Errors: both return an exit code for the outcomes they expect (exit_code below) and throw
// for infrastructure failures (storage::error, std::bad_alloc, ...), which main maps to 70.
#pragma once

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string_view>

#include "daemon/config.hpp"
#include "daemon/version.hpp"

namespace billingd::daemon {

// sysexits.h values where one fits.
namespace exit_code {
inline constexpr int ok = 0;
inline constexpr int needs_attention = 1;  // --once: parked, in-doubt or halted work remains
inline constexpr int usage = 64;           // EX_USAGE: bad command line
inline constexpr int software = 70;        // EX_SOFTWARE: internal error, or the stop grace ran out
inline constexpr int cannot_create = 73;   // EX_CANTCREAT: the database or its lock file
inline constexpr int locked = 75;          // EX_TEMPFAIL: another billingd holds the database
inline constexpr int config = 78;          // EX_CONFIG: bad configuration or missing secrets
}  // namespace exit_code


// A request the command line may not make of this database (exit 64).
class usage_error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// `as_of` runs on a test clock; a database that ever ran on the real clock refuses it unless
// `test_db_confirmed` (--i-know-this-is-a-test-db).
int run_once(const config& cfg, std::optional<std::chrono::sys_seconds> as_of,
             bool test_db_confirmed);
int run_daemon(const config& cfg);

}  // namespace billingd::daemon
