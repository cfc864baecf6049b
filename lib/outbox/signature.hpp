// Standard Webhooks signatures (https://www.standardwebhooks.com/):
//   webhook-signature: v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>
// The key is the base64 part of a `whsec_<base64>` secret. During a rotation two secrets are
// configured and both signatures are sent, space-separated; a receiver accepts either.
// Errors: parse_secret returns what is wrong (never the secret itself).
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace billingd::outbox {

// The decoded key of a `whsec_...` secret (24 to 64 bytes), or an error text.
std::variant<std::string, std::string> parse_secret(std::string_view secret);
inline bool is_key(const std::variant<std::string, std::string>& v) {
    return v.index() == 0;
}

std::string base64_encode(std::string_view bytes);

// "v1,<base64>" for one key.
std::string sign(std::string_view key, std::string_view id, std::int64_t timestamp,
                 std::string_view body);

// The header value: one signature per key, space-separated, current key first.
std::string signature_header(const std::vector<std::string>& keys, std::string_view id,
                             std::int64_t timestamp, std::string_view body);

}  // namespace billingd::outbox
