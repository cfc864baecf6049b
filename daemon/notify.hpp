// sd_notify(3) for Type=notify units: READY, STATUS, WATCHDOG, STOPPING. Every call is a
// no-op when billingd does not run under systemd (no $NOTIFY_SOCKET).
// Thread safety: stateless; call from the event loop thread.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace billingd::daemon::notify {

void ready(std::string_view status);
void status(std::string_view text);
void watchdog();
void stopping(std::string_view status);

// The interval at which WATCHDOG=1 must be sent (WatchdogSec= / 2), when the watchdog is on.
std::optional<std::chrono::microseconds> watchdog_interval();

}  // namespace billingd::daemon::notify
