#include "gateway/limiter.hpp"

#include <algorithm>
#include <boost/asio/error.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

namespace billingd::gateway {

namespace asio = boost::asio;

request_limiter::request_limiter(asio::any_io_executor executor, std::size_t max_in_flight,
                                 double max_per_second)
    : executor_(std::move(executor)), max_in_flight_(std::max<std::size_t>(1, max_in_flight)) {
    if (max_per_second > 0) {
        interval_ = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>(1.0 / max_per_second));
    }
}

request_limiter::slot& request_limiter::slot::operator=(slot&& other) noexcept {
    if (this != &other) {
        release();
        owner_ = other.owner_;
        other.owner_ = nullptr;
    }
    return *this;
}

void request_limiter::slot::release() {
    if (owner_) owner_->release_one();
    owner_ = nullptr;
}

void request_limiter::release_one() {
    if (!waiters_.empty()) {
        // Hand the slot straight to the oldest waiter: in_flight_ stays the same.
        auto next = waiters_.front();
        waiters_.pop_front();
        next->granted = true;
        next->wakeup.cancel();
        return;
    }
    --in_flight_;
}

asio::awaitable<request_limiter::slot> request_limiter::acquire() {
    if (in_flight_ < max_in_flight_) {
        ++in_flight_;
    } else {
        auto me = std::make_shared<waiter>(executor_);
        me->wakeup.expires_at(std::chrono::steady_clock::time_point::max());
        waiters_.push_back(me);
        boost::system::error_code ec;
        co_await me->wakeup.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (!me->granted) {
            // Cancelled from outside: leave the queue without a slot.
            std::erase(waiters_, me);
            throw boost::system::system_error(asio::error::operation_aborted);
        }
    }
    slot held(this);

    if (interval_.count() > 0) {
        const auto now = std::chrono::steady_clock::now();
        const auto start = std::max(now, next_start_);
        next_start_ = start + interval_;
        if (start > now) {
            asio::steady_timer pause(executor_);
            pause.expires_at(start);
            boost::system::error_code ec;
            co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
    }
    co_return held;
}

}  // namespace billingd::gateway
