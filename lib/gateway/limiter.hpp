// Internal to lib/gateway: bounds how many requests a client has outstanding and paces them.
//
// acquire() waits (without blocking the thread) until fewer than `max_in_flight` slots are
// held, then until the pacing interval (1 / max_per_second, 0 = unpaced) since the previous
// grant has passed. Slots are granted first come, first served and released by the slot's
// destructor. A waiter whose coroutine is cancelled throws
// boost::system::system_error(operation_aborted) and takes no slot.
//
// Thread safety: one io_context thread.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>

namespace billingd::gateway {

class request_limiter {
  public:
    request_limiter(boost::asio::any_io_executor executor, std::size_t max_in_flight,
                    double max_per_second);
    request_limiter(const request_limiter&) = delete;
    request_limiter& operator=(const request_limiter&) = delete;

    class slot {
      public:
        slot() = default;
        explicit slot(request_limiter* owner) : owner_(owner) {}
        slot(slot&& other) noexcept : owner_(other.owner_) { other.owner_ = nullptr; }
        slot& operator=(slot&& other) noexcept;
        slot(const slot&) = delete;
        slot& operator=(const slot&) = delete;
        ~slot() { release(); }
        void release();

      private:
        request_limiter* owner_ = nullptr;
    };

    boost::asio::awaitable<slot> acquire();

    std::size_t in_flight() const { return in_flight_; }
    std::size_t waiting() const { return waiters_.size(); }

  private:
    struct waiter {
        explicit waiter(const boost::asio::any_io_executor& executor) : wakeup(executor) {}
        boost::asio::steady_timer wakeup;
        bool granted = false;
    };

    void release_one();

    boost::asio::any_io_executor executor_;
    std::size_t max_in_flight_;
    std::chrono::steady_clock::duration interval_{0};
    std::chrono::steady_clock::time_point next_start_{};
    std::size_t in_flight_ = 0;
    std::deque<std::shared_ptr<waiter>> waiters_;
};

}  // namespace billingd::gateway
