// The operations layer: what an operator or the merchant's application may do to subscriptions
// and charges, implemented once and called by billingctl and by billingd's HTTP API.
//
// An operation validates its input, changes the database in one BEGIN IMMEDIATE transaction
// that re-reads the rows it changes (billingd may be charging at the same time), and writes an
// `events` row naming the caller as actor, in that same transaction. It never prints and never
// talks to the network itself: operations that need PortOne record a request that billingd
// carries out (a refund), or take what the caller learned from PortOne as input (a rekey).
//
// Errors: every refusal is an operations::error with a kind (how callers map it: billingctl
// to an exit code, the API to an HTTP status) and a stable `type` (the problem+json type
// suffix and a test's handle). The message is the text billingctl prints and the API returns
// as `detail`: one sentence the operator can act on.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

namespace billingd::storage {
class store;
}

namespace billingd::operations {

enum class error_kind {
    not_found,    // no such subscription / charge / refund (billingctl 65, API 404)
    invalid,      // a value is out of range or malformed (billingctl 65, API 422)
    conflict,     // the row's state does not allow it now (billingctl 65, API 409)
    unavailable,  // PortOne could not give a clear answer (billingctl 69, API 503)
};

class error : public std::runtime_error {
  public:
    error(error_kind kind, std::string type, const std::string& message)
        : std::runtime_error(message), kind_(kind), type_(std::move(type)) {}
    error_kind kind() const { return kind_; }
    // Stable, lowercase, hyphenated: "subscription-not-found", "refund-exceeds-paid", ...
    const std::string& type() const { return type_; }

  private:
    error_kind kind_;
    std::string type_;
};

// Who asks, and when (UNIX seconds; injected: tests and --as-of pass their own).
struct caller {
    std::string actor;  // events.actor: the operator's login or the API token's name
    std::int64_t now = 0;
};

// Appends an event row written by `who` (call inside the operation's write transaction).
// `data`: the JSON object the outbox delivers to the merchant's application.
std::int64_t record_event(storage::store& store, const caller& who,
                          std::optional<std::int64_t> subscription_id,
                          std::optional<std::int64_t> charge_id, std::string kind,
                          std::optional<std::string> from, std::optional<std::string> to,
                          std::string detail, std::optional<std::string> data = std::nullopt);

}  // namespace billingd::operations
