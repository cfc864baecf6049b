#include "gateway/token_cache.hpp"

#include <algorithm>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace billingd::gateway {

namespace asio = boost::asio;

// One getToken request and everyone waiting for it. Waiters sleep on `done`, which is
// cancelled when the result is in.
struct token_cache::flight {
    explicit flight(const asio::any_io_executor& executor) : done(executor) {
        done.expires_at(std::chrono::steady_clock::time_point::max());
    }
    asio::steady_timer done;
    std::optional<lease> result;
};

token_cache::token_cache(asio::any_io_executor executor, fetch_fn fetch,
                         std::chrono::seconds refresh_margin, clock_fn now)
    : executor_(std::move(executor)),
      fetch_(std::move(fetch)),
      refresh_margin_(refresh_margin),
      now_(now ? std::move(now) : clock_fn([] { return std::chrono::steady_clock::now(); })) {}

std::vector<std::string> token_cache::recent_tokens() const {
    std::vector<std::string> tokens;
    if (!token_.empty()) tokens.push_back(token_);
    if (!previous_token_.empty()) tokens.push_back(previous_token_);
    return tokens;
}

asio::awaitable<token_cache::lease> token_cache::get(std::uint64_t rejected_generation) {
    for (;;) {
        const bool usable = !token_.empty() && generation_ != rejected_generation;
        if (usable && now_() < refresh_at_) co_return lease{token_, generation_, std::nullopt};

        if (flight_) {
            auto joined = flight_;
            boost::system::error_code ec;
            co_await joined->done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            if (joined->result) {
                const lease& shared = *joined->result;
                if (shared.failure || shared.generation != rejected_generation) co_return shared;
            }
            continue;  // the fetch was abandoned, or it returned the token we must not use
        }

        auto mine = std::make_shared<flight>(executor_);
        flight_ = mine;
        ++fetches_;
        wire::token_result fetched;
        try {
            fetched = co_await fetch_();
        } catch (...) {
            flight_.reset();
            mine->done.cancel();
            throw;
        }

        lease result;
        if (fetched.token) {
            const auto now = now_();
            // PortOne's tokens live 30 minutes; a lifetime beyond a day is not believed (and a
            // huge one would overflow the steady clock).
            const auto lifetime =
                std::min<std::chrono::seconds>(fetched.token->lifetime(), std::chrono::hours{24});
            const auto margin = std::min<std::chrono::seconds>(refresh_margin_, lifetime / 2);
            if (fetched.token->access_token != token_) {
                previous_token_ = std::move(token_);
                token_ = fetched.token->access_token;
                ++generation_;
            } else if (generation_ == rejected_generation) {
                // PortOne handed back the token that was just refused: it will be refused
                // again, but there is nothing better; give it a new generation so a second
                // 401 ends in a configuration error instead of a loop.
                ++generation_;
            }
            expires_ = now + lifetime;
            refresh_at_ = expires_ - margin;
            result = lease{token_, generation_, std::nullopt};
        } else if (!token_.empty() && generation_ != rejected_generation && now_() < expires_) {
            // Refresh-ahead failed: keep the valid token and try again a little later, not
            // before every request.
            refresh_at_ = std::min(expires_, now_() + std::chrono::seconds{5});
            result = lease{token_, generation_, std::nullopt};
        } else {
            result.failure = std::move(fetched.journal);
        }
        mine->result = result;
        flight_.reset();
        mine->done.cancel();
        co_return result;
    }
}

}  // namespace billingd::gateway
