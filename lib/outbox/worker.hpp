// The delivery worker: delivers merchant events at least once, in order per subscription, to
// each configured channel (webhook, exec hook), on the daemon's io_context.
//
// Per channel: a cursor over events.id (outbox_channels) and a bounded window of the events
// after it in memory. An event is sent when no earlier event of its subscription is unsettled
// (in the window, or pending in outbox_deliveries); a delivered event needs no write, a failed
// one gets a pending row with its retry time (retry.hpp), or a dead row past the horizon. The
// cursor moves over the settled prefix of the window only, so a crash at any point leaves
// every undelivered event after the cursor or in a row: it is sent again (same id), never lost.
//
// Delivery never blocks charging: at most `max_in_flight` attempts per channel, each bounded
// by its transport's timeouts; memory is bounded by `window` whatever the receiver does; its
// SQL runs in short transactions of its own.
//
// Errors: a transport never throws (a failure is an attempt_result); storage errors are caught
// per step, reported through on_error, and the channel's window is rebuilt from the database.
// Thread safety: the io_context's one thread; the store and clock must outlive the worker.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outbox/outbox_store.hpp"
#include "outbox/retry.hpp"
#include "scheduler/clock.hpp"

namespace billingd::outbox {

// One event as a transport sends it: the same id and body for every attempt.
struct outgoing {
    std::int64_t event_id = 0;
    std::string id;  // delivery_id(): webhook-id
    std::string type;
    std::int64_t timestamp = 0;  // webhook-timestamp: this attempt's time
    std::string body;            // payload() bytes
};

struct attempt_result {
    bool delivered = false;
    std::string error;  // why not (no secret, bounded length)
};

// A delivery channel's transport. deliver() must finish within its own timeouts and never
// throw; it is called at most max_in_flight times concurrently.
class channel {
  public:
    virtual ~channel() = default;
    virtual std::string_view name() const = 0;  // "webhook" | "exec"
    virtual boost::asio::awaitable<attempt_result> deliver(outgoing message) = 0;
};

struct worker_config {
    retry_policy retry;
    std::size_t max_in_flight = 4;  // per channel
    std::size_t window = 256;       // events held in memory per channel
    // How often run() looks for new events when nobody poke()s it.
    std::chrono::milliseconds poll_interval{1000};
    std::string install_id;  // part of every delivery id
};

// One attempt's outcome, for the caller to log.
struct delivery_note {
    std::string channel;
    std::int64_t event_id = 0;
    std::string type;
    bool delivered = false;
    bool dead = false;
    std::int64_t attempts = 0;
    std::optional<std::int64_t> next_attempt_at;
    std::string error;
};

class worker {
  public:
    // `unit_random` returns values in [0, 1) for the retry jitter (nullptr: a seeded PRNG).
    worker(outbox_store& store, const scheduler::clock& clock, worker_config config,
           std::vector<std::unique_ptr<channel>> channels,
           std::function<double()> unit_random = nullptr);
    ~worker();
    worker(const worker&) = delete;
    worker& operator=(const worker&) = delete;

    void on_result(std::function<void(const delivery_note&)> sink);
    void on_error(std::function<void(const std::exception&)> sink);

    // Opens every channel's cursor (a new channel starts at the newest event).
    void open();
    // The daemon: delivers until stop(), then lets the attempts in flight finish and records
    // them. Wakes every poll_interval, at the next retry, or on poke().
    boost::asio::awaitable<void> run();
    // --once: attempts everything deliverable at clock.now() once (and what becomes
    // deliverable as earlier events of its subscription are delivered), then returns.
    boost::asio::awaitable<void> run_until_idle();
    void poke();
    void stop();

    std::size_t in_flight() const;

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace billingd::outbox
