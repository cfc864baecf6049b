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
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace billingd::storage {
class store;
class connection;
}  // namespace billingd::storage

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
    // `field`: the input field the refusal is about, as the caller named it (input.hpp).
    error(error_kind kind, std::string type, const std::string& message, std::string field)
        : std::runtime_error(message),
          kind_(kind),
          type_(std::move(type)),
          field_(std::move(field)) {}
    error_kind kind() const { return kind_; }
    // Stable, lowercase, hyphenated: "subscription-not-found", "refund-exceeds-paid", ...
    const std::string& type() const { return type_; }
    // Empty when the refusal is not about one input field.
    const std::string& field() const { return field_; }

  private:
    error_kind kind_;
    std::string type_;
    std::string field_;
};

// Who asks, and when (UNIX seconds; injected: tests and --as-of pass their own).
struct caller {
    std::string actor;  // events.actor: the operator's login or the API token's name
    std::int64_t now = 0;
    // What the actor is, in event details the merchant's application receives ("paused by
    // operator"): never the actor's name itself.
    std::string role = "operator";  // "operator" (billingctl) | "API client"
};

// Appends an event row written by `who` (call inside the operation's write transaction).
// `data`: the JSON object the outbox delivers to the merchant's application.
std::int64_t record_event(storage::store& store, const caller& who,
                          std::optional<std::int64_t> subscription_id,
                          std::optional<std::int64_t> charge_id, std::string kind,
                          std::optional<std::string> from, std::optional<std::string> to,
                          std::string detail, std::optional<std::string> data = std::nullopt);

// The transaction an operation changes the database in. On its own (billingctl) it is a
// BEGIN IMMEDIATE transaction; inside another change_scope or a group_commit on the same
// connection (billingd's API commits the writes that arrive together at once, see below) it
// is a savepoint of that transaction. Either way the operation reads its rows under the write lock
// and its change, event included, is all or nothing. Destroyed without commit(): rolled back.
class change_scope {
  public:
    explicit change_scope(storage::store& store);
    ~change_scope();
    change_scope(const change_scope&) = delete;
    change_scope& operator=(const change_scope&) = delete;
    void commit();

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// One BEGIN IMMEDIATE transaction for the operations run while it lives on this store's
// connection (each in its own savepoint): one durable COMMIT (one fsync) for many changes. A
// refused operation rolls back its savepoint only; commit() failing (disk) or destruction
// without commit() rolls everything back. At most one per connection at a time; never held
// across an await (the event loop's other work waits for the write lock meanwhile).
class group_commit {
  public:
    explicit group_commit(storage::store& store);
    ~group_commit();
    group_commit(const group_commit&) = delete;
    group_commit& operator=(const group_commit&) = delete;
    void commit();

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace billingd::operations
