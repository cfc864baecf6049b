#include "domain/retry_policy.hpp"

#include <algorithm>
#include <cmath>

namespace billingd::domain {

std::optional<seconds> transient_delay(const transient_policy& p, int tries_so_far,
                                       double unit_random) {
    if (tries_so_far >= p.max_tries) return std::nullopt;
    const int exponent = std::clamp(tries_so_far - 1, 0, 30);
    const double ceiling =
        std::min(static_cast<double>(p.cap.count()),
                 static_cast<double>(p.base.count()) * std::ldexp(1.0, exponent));
    const double r = std::clamp(unit_random, 0.0, 1.0);
    return seconds{static_cast<std::int64_t>(std::floor(ceiling * r))};
}

std::optional<seconds> reconcile_delay(const unknown_policy& p, int lookups_done,
                                       seconds unknown_for) {
    if (unknown_for >= p.give_up_after) return std::nullopt;
    if (lookups_done >= 0 && static_cast<std::size_t>(lookups_done) < p.first_delays.size())
        return p.first_delays[static_cast<std::size_t>(lookups_done)];
    return p.then_every;
}

std::optional<std::chrono::days> dunning_offset(const dunning_policy& p, int declines_so_far) {
    if (declines_so_far < 1 || static_cast<std::size_t>(declines_so_far) > p.retry_after.size())
        return std::nullopt;
    return p.retry_after[static_cast<std::size_t>(declines_so_far - 1)];
}

}  // namespace billingd::domain
