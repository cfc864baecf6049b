// Instants typed by an operator (--as-of): RFC 3339 with any offset
// ("2026-12-01T10:00:00+09:00", "2026-12-01T01:00:00Z", fractional seconds ignored, 't' or a
// space for 'T', 'z' for 'Z'), and, in UTC, 'YYYY-MM-DD HH:MM:SS' and a bare YYYY-MM-DD.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace billingd::ctl {

// UNIX seconds, or nullopt when `text` is none of the forms above (or out of 0001..9999).
std::optional<std::int64_t> parse_instant(std::string_view text);

}  // namespace billingd::ctl
