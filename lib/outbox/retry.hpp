// When a failed delivery is tried again: exponential backoff with jitter, up to a horizon
// after which the event is dead-lettered (an operator may redeliver it).
// Thread safety: pure functions.
#pragma once

#include <chrono>

namespace billingd::outbox {

struct retry_policy {
    std::chrono::seconds base{5};        // delay after the first failure (before jitter)
    std::chrono::seconds cap{6 * 3600};  // longest delay
    // Retried until this long after the delivery first failed (or first had to wait behind
    // an earlier event of its subscription); the next failure after that makes it dead.
    std::chrono::seconds horizon{3 * 24 * 3600};
};

// Delay before attempt `failures + 1`, failures >= 1: min(cap, base * 2^(failures-1)), scaled
// by a jitter factor in [0.5, 1] from `unit_random` in [0, 1). Never less than a second.
std::chrono::seconds retry_delay(const retry_policy& p, int failures, double unit_random);

}  // namespace billingd::outbox
