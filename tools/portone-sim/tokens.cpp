#include "tokens.hpp"

#include <cstdio>

namespace portone_sim {

token_store::token_store(token_config config, std::uint64_t seed)
    : config_(config), random_(seed ^ stable_hash("token")) {}

issued_token token_store::issue(std::int64_t now_ms, bool single_use) {
    if (!valid(now_ms) || single_use) {
        char buf[48];
        std::snprintf(buf, sizeof buf, "%016llx%016llx%08llx",
                      static_cast<unsigned long long>(random_.next()),
                      static_cast<unsigned long long>(random_.next()),
                      static_cast<unsigned long long>(random_.next() & 0xFFFFFFFFULL));
        token_ = buf;
        expires_ms_ = now_ms + config_.ttl_s * 1000;
        uses_left_ = single_use ? 1 : -1;
    } else if (expires_ms_ - now_ms <= config_.extend_window_s * 1000) {
        expires_ms_ += config_.extend_s * 1000;
    }
    return {token_, now_ms / 1000, expires_ms_ / 1000};
}

bool token_store::authorize(std::string_view presented, std::int64_t now_ms) {
    if (presented.empty() || presented != token_ || !valid(now_ms)) return false;
    if (uses_left_ > 0) --uses_left_;
    return true;
}

std::string_view presented_token(std::string_view authorization, std::string_view imp_header) {
    auto trim = [](std::string_view s) {
        while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
        while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
        return s;
    };
    authorization = trim(authorization);
    if (authorization.size() > 7) {
        const auto scheme = authorization.substr(0, 7);
        bool bearer = true;
        for (std::size_t i = 0; i < 6; ++i) bearer = bearer && (scheme[i] | 0x20) == "bearer"[i];
        if (bearer && scheme[6] == ' ') return trim(authorization.substr(7));
    }
    if (!authorization.empty()) return authorization;
    return trim(imp_header);
}

}  // namespace portone_sim
