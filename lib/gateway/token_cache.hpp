// Internal to lib/gateway: the PortOne access token, fetched once and shared.
//
// get() returns the cached token while it is valid and not within the refresh margin of its
// expiry; otherwise it fetches a new one with the injected `fetch` (POST /users/getToken).
// Expiry is computed on the local clock as local_now + (expired_at - now), so a skewed
// PortOne clock does not matter; the margin is min(refresh_margin, lifetime / 2).
// Only one fetch is ever outstanding: concurrent callers wait for it and share its result.
// A caller whose request was answered 401 passes the generation it used; that token is then
// never returned again (a newer one is, or a fresh one is fetched).
// When a refresh-ahead fetch fails but the cached token has not expired yet, the cached token
// is returned; otherwise the fetch's failure comes back in `lease::failure`.
//
// Thread safety: one io_context thread. Errors: never throws for fetch failures.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gateway/wire.hpp"

namespace billingd::gateway {

class token_cache {
  public:
    using clock_fn = std::function<std::chrono::steady_clock::time_point()>;
    using fetch_fn = std::function<boost::asio::awaitable<wire::token_result>()>;

    struct lease {
        std::string token;
        std::uint64_t generation = 0;     // 0 when there is no token
        std::optional<exchange> failure;  // set when no token could be had
    };

    token_cache(boost::asio::any_io_executor executor, fetch_fn fetch,
                std::chrono::seconds refresh_margin, clock_fn now = {});
    token_cache(const token_cache&) = delete;
    token_cache& operator=(const token_cache&) = delete;

    boost::asio::awaitable<lease> get(std::uint64_t rejected_generation = 0);

    // The current and the previous token (for scrubbing them out of journal records).
    std::vector<std::string> recent_tokens() const;
    std::size_t fetches() const { return fetches_; }

  private:
    struct flight;

    boost::asio::any_io_executor executor_;
    fetch_fn fetch_;
    std::chrono::seconds refresh_margin_;
    clock_fn now_;
    std::string token_;
    std::string previous_token_;
    std::uint64_t generation_ = 0;
    std::chrono::steady_clock::time_point expires_{};
    std::chrono::steady_clock::time_point refresh_at_{};
    std::shared_ptr<flight> flight_;
    std::size_t fetches_ = 0;
};

}  // namespace billingd::gateway
