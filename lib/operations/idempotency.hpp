// The API's idempotency keys (table api_idempotency, schema/0008_api.sql): the first answer
// to a create, remembered with the fingerprint of its request. Statements are prepared at
// construction.
//
// remember() belongs in the change_scope of the change it answers, so that the key and the
// row it created commit together or not at all: a request whose change was refused leaves no
// key, and its retry is decided afresh. Errors: storage::error; storage::constraint_error for
// a key already remembered (the caller looks it up first, in the same write transaction).
// Thread safety: one thread, like the connection (which must outlive this).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace billingd::storage {
class connection;
}

namespace billingd::operations {

inline constexpr std::size_t max_idempotency_key = 255;

struct remembered_answer {
    std::string fingerprint;
    int status = 0;
    std::string body;
};

class idempotency_keys {
  public:
    explicit idempotency_keys(storage::connection& db);
    ~idempotency_keys();
    idempotency_keys(const idempotency_keys&) = delete;
    idempotency_keys& operator=(const idempotency_keys&) = delete;

    std::optional<remembered_answer> find(std::string_view key);
    void remember(std::string_view key, const remembered_answer& answer, std::string_view actor,
                  std::optional<std::int64_t> subscription_id, std::int64_t now);
    // Deletes at most `limit` keys created before `before`; returns how many.
    int forget_before(std::int64_t before, int limit);

  private:
    struct statements;
    std::unique_ptr<statements> st_;
};

}  // namespace billingd::operations
