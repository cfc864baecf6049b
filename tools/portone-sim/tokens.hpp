// Access tokens of the simulated `POST /users/getToken`.
//
// PortOne V1 rules: one token at a time; asking again while it is valid returns the same
// token; asking in its last `extend_window_s` seconds extends it by `extend_s`; an expired
// token is replaced by a new one. A token issued with `single_use` (fault
// token_expire_early) authorizes exactly one request and is invalid afterwards.
// Times are UNIX milliseconds supplied by the caller.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "random.hpp"

namespace portone_sim {

struct token_config {
    std::int64_t ttl_s = 1800;
    std::int64_t extend_window_s = 60;
    std::int64_t extend_s = 300;
};

struct issued_token {
    std::string access_token;
    std::int64_t now = 0;         // UNIX seconds
    std::int64_t expired_at = 0;  // UNIX seconds
};

class token_store {
  public:
    token_store(token_config config, std::uint64_t seed);

    issued_token issue(std::int64_t now_ms, bool single_use = false);

    // True when `presented` is the current valid token; consumes the single use if any.
    bool authorize(std::string_view presented, std::int64_t now_ms);

    // Makes the current token invalid (control endpoint, tests).
    void expire() { expires_ms_ = 0; }

    const token_config& config() const { return config_; }

  private:
    bool valid(std::int64_t now_ms) const {
        return !token_.empty() && now_ms < expires_ms_ && uses_left_ != 0;
    }

    token_config config_;
    random_stream random_;
    std::string token_;
    std::int64_t expires_ms_ = 0;
    std::int64_t uses_left_ = -1;  // -1: unlimited
};

// The token a request presents: `Authorization: Bearer <t>` or a bare token in Authorization,
// else X-ImpTokenHeader. Empty when none.
std::string_view presented_token(std::string_view authorization, std::string_view imp_header);

}  // namespace portone_sim
