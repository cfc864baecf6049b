// Crash tests: BILLINGD_CRASH_AT=<step>[:<n>] makes billingd kill itself with SIGKILL the
// n-th time (default 1) it reaches <step> of the charge protocol:
//   before_write_ahead_commit, after_write_ahead_commit, after_request_written,
//   before_outcome_commit.
// Unset in production; the variable is read once at start.
#pragma once

#include "daemon/config.hpp"

namespace billingd::daemon {

// Installs the hooks into the engine and HTTP client options when the variable is set.
// Throws config_error for a malformed value.
void install_crash_points(config& cfg);

}  // namespace billingd::daemon
