#include "daemon/notify.hpp"

#include <systemd/sd-daemon.h>

#include <cstdint>
#include <string>

namespace billingd::daemon::notify {
namespace {

void send(const std::string& message) {
    ::sd_notify(0, message.c_str());
}

}  // namespace

void ready(std::string_view status) {
    send("READY=1\nSTATUS=" + std::string(status));
}

void status(std::string_view text) {
    send("STATUS=" + std::string(text));
}

void watchdog() {
    send("WATCHDOG=1");
}

void stopping(std::string_view status) {
    send("STOPPING=1\nSTATUS=" + std::string(status));
}

std::optional<std::chrono::microseconds> watchdog_interval() {
    std::uint64_t usec = 0;
    if (::sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
    return std::chrono::microseconds{static_cast<std::int64_t>(usec / 2)};
}

}  // namespace billingd::daemon::notify
