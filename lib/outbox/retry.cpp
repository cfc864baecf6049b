#include "outbox/retry.hpp"

#include <algorithm>
#include <cmath>

namespace billingd::outbox {

std::chrono::seconds retry_delay(const retry_policy& p, int failures, double unit_random) {
    const double base = static_cast<double>(p.base.count());
    const double cap = static_cast<double>(p.cap.count());
    const double exponential = std::min(cap, base * std::pow(2.0, std::clamp(failures - 1, 0, 60)));
    const double jitter = 0.5 + 0.5 * std::clamp(unit_random, 0.0, 1.0);
    const auto delay = static_cast<std::int64_t>(std::ceil(exponential * jitter));
    return std::chrono::seconds{std::max<std::int64_t>(delay, 1)};
}

}  // namespace billingd::outbox
