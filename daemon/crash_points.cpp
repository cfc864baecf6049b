#include "daemon/crash_points.hpp"

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <memory>
#include <string>

namespace billingd::daemon {
namespace {

struct crash_point {
    std::string step;
    long remaining = 1;

    void reached(std::string_view where) {
        if (where != step || --remaining > 0) return;
        ::kill(::getpid(), SIGKILL);
        ::pause();
    }
};

}  // namespace

void install_crash_points(config& cfg) {
    const char* value = std::getenv("BILLINGD_CRASH_AT");
    if (!value || !*value) return;
    std::string text{value};
    auto point = std::make_shared<crash_point>();
    const auto colon = text.find(':');
    point->step = text.substr(0, colon);
    if (colon != std::string::npos) {
        char* end = nullptr;
        point->remaining = std::strtol(text.c_str() + colon + 1, &end, 10);
        if (*end != '\0' || point->remaining < 1)
            throw config_error("BILLINGD_CRASH_AT: occurrence must be a positive integer");
    }
    const std::string_view steps[] = {"before_write_ahead_commit", "after_write_ahead_commit",
                                      "after_request_written", "before_outcome_commit"};
    bool known = false;
    for (auto s : steps) known = known || s == point->step;
    if (!known) throw config_error("BILLINGD_CRASH_AT: unknown step '" + point->step + "'");
    cfg.engine.at_step = [point](std::string_view step) { point->reached(step); };
    cfg.portone.after_charge_written = [point](std::string_view) {
        point->reached("after_request_written");
    };
    cfg.portone.after_cancel_written = [point](std::string_view) {
        point->reached("after_request_written");
    };
}

}  // namespace billingd::daemon
