// billingd's log: spdlog to the journal when stderr is connected to it ($JOURNAL_STREAM),
// else colour stderr. Only task boundaries log (main, the daemon loop, --once), one line per
// decision with key=value context. Nothing logged here may contain a secret: callers pass
// decisions and summaries, never configuration secrets or request bodies.
#pragma once

#include <string_view>

#include "scheduler/engine.hpp"

namespace billingd::daemon {

// Installs the default logger; `level` is a validated config value ("info", ...).
void setup_logging(std::string_view level);

// One line per engine decision: subscription_id= merchant_uid= outcome= detail=.
void log_decision(const scheduler::decision& d);

// One line per pass that did something (quiet passes log at debug level).
void log_pass(const scheduler::pass_summary& s);

}  // namespace billingd::daemon
