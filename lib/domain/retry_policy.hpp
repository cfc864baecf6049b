// Retry schedules of DESIGN.md ("Retry policies") as pure functions.
//
// The scheduler asks "when next?" after each outcome; randomness (full jitter) is passed in
// so tests are deterministic. Defaults are DESIGN.md's; the daemon's config may override them.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

namespace billingd::domain {

using std::chrono::seconds;

struct transient_policy {
    seconds base{2};
    seconds cap{600};
    int max_tries = 8;  // then the row waits for the next scheduler pass (`pass_delay`)
    seconds pass_delay{900};
};

struct unknown_policy {
    // Reconcile after each delay in turn, then every `then_every` until `give_up_after`
    // (measured from the first unknown outcome) has passed: then park.
    std::vector<seconds> first_delays{seconds{10}, seconds{60}, seconds{300}, seconds{1800}};
    seconds then_every{3600};
    seconds give_up_after{24 * 3600};
};

enum class dunning_exhausted_action { mark_unpaid, cancel };

struct dunning_policy {
    // Days after the first decline on which the charge is retried.
    std::vector<std::chrono::days> retry_after{std::chrono::days{1}, std::chrono::days{3},
                                               std::chrono::days{5}, std::chrono::days{7}};
    dunning_exhausted_action when_exhausted = dunning_exhausted_action::mark_unpaid;
};

// Delay before transient retry number `tries_so_far` (1-based count of transient failures),
// exponential with full jitter: uniform in [0, min(cap, base * 2^(tries-1))].
// `unit_random` is in [0, 1). Returns std::nullopt once max_tries is reached: the caller then
// waits `pass_delay` and starts counting again.
std::optional<seconds> transient_delay(const transient_policy& p, int tries_so_far,
                                       double unit_random);

// Delay before reconciliation lookup number `lookups_done + 1`, or std::nullopt when the
// charge has been unknown for `give_up_after` already (park it).
std::optional<seconds> reconcile_delay(const unknown_policy& p, int lookups_done,
                                       seconds unknown_for);

// Offset from the first decline of the next dunning retry after `declines_so_far` declines
// (1-based), or std::nullopt when the schedule is exhausted.
std::optional<std::chrono::days> dunning_offset(const dunning_policy& p, int declines_so_far);

}  // namespace billingd::domain
