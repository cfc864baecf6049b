// The API's bearer tokens: who may call it, under which name, and whether only to read.
//
// They come from the systemd credential `api_tokens` ($CREDENTIALS_DIRECTORY/api_tokens) or,
// for development, the environment variable BILLINGD_API_TOKENS, never from the TOML file.
// One token per line, `NAME SCOPE TOKEN`, blank lines and `#` comments ignored:
//
//   # name         scope  token (at least 32 characters, printable ASCII, no spaces)
//   shop-2026-05   write  0f5c3c1d8f0e4a7b9a1e2d3c4b5a69788796a5b4c3d2e1f0
//   shop-2026-11   write  7d1e...   (the next one, during a rotation both are accepted)
//   reporting      read   c0ff...   (GET only)
//
// NAME (1..64 of [A-Za-z0-9._-]) is the `actor` of the events the token's requests cause.
// Names and tokens are unique. Tokens are kept only as SHA-256 digests; a presented token is
// digested and compared with every known digest in constant time (CRYPTO_memcmp, no early
// exit), so neither timing nor a log line can give one away.
//
// Errors: parse_api_tokens throws config_error naming the line (never the token).
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "daemon/config.hpp"

namespace billingd::daemon {

inline constexpr std::string_view api_tokens_credential = "api_tokens";
inline constexpr std::string_view api_tokens_env = "BILLINGD_API_TOKENS";

// The holder of `token`, or nullptr for an unknown token.
const api_token* authenticate(const std::vector<api_token>& tokens, std::string_view token);

// Parses the credential's text; `source` names it in messages. At least one token.
std::vector<api_token> parse_api_tokens(std::string_view text, const std::string& source);

// Reads them from the credentials directory or the environment (credentials.hpp).
std::vector<api_token> load_api_tokens(const environment& env);

}  // namespace billingd::daemon
