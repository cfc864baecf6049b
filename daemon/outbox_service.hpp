// The outbox in the daemon: the delivery worker on the daemon's io_context, and the notice
// producer (charge.upcoming, subscription.trial_will_end) between charging passes.
//
// Delivery is independent of charging: its own concurrency bound and timeouts, its own short
// transactions on the daemon's connection (never inside a charging transaction), and nothing
// it does feeds the PortOne circuit breaker. Without a configured channel nothing is
// delivered (events are still written: the merchant's application may read them), but
// notices are still produced.
//
// Errors: the constructor throws config_error for a channel that cannot be set up; storage
// errors in the producer propagate (the caller's pass boundary logs them); the worker reports
// its own. Thread safety: the io_context's thread.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <optional>

#include "daemon/config.hpp"
#include "scheduler/clock.hpp"
#include "storage/store.hpp"

namespace boost::asio {
class io_context;
}

namespace billingd::daemon {

class outbox_service {
  public:
    outbox_service(boost::asio::io_context& io, storage::store& store,
                   const scheduler::clock& clock, const config& cfg);
    ~outbox_service();
    outbox_service(const outbox_service&) = delete;
    outbox_service& operator=(const outbox_service&) = delete;

    // The daemon: starts the delivery worker (if a channel is configured).
    void start();
    // After a charging pass: writes the notices that are due (it looks at most once a minute
    // unless one is due), and wakes the worker for the events the pass wrote.
    void after_pass();
    // When the next notice is due, to fold into the daemon's sleep.
    std::optional<std::chrono::sys_seconds> next_wakeup() const;
    // SIGTERM: no new attempts; those in flight finish (their own timeouts) and are recorded.
    void stop();
    // Completes when the worker has stopped (immediately when none runs).
    boost::asio::awaitable<void> stopped();
    // How long stopping may take: the longest attempt.
    std::chrono::seconds drain_bound() const;

    // --once: notices due now, then every delivery possible now, each attempted once.
    boost::asio::awaitable<void> run_once();

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace billingd::daemon
