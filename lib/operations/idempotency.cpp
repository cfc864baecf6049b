#include "operations/idempotency.hpp"

#include "storage/sqlite.hpp"

namespace billingd::operations {

struct idempotency_keys::statements {
    explicit statements(storage::connection& db)
        : db(db),
          find(db,
               "SELECT fingerprint, status, body FROM api_idempotency WHERE idempotency_key = ?1"),
          remember(db,
                   "INSERT INTO api_idempotency (idempotency_key, fingerprint, status, body, "
                   "actor, subscription_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
          forget(db,
                 "DELETE FROM api_idempotency WHERE idempotency_key IN (SELECT idempotency_key "
                 "FROM api_idempotency WHERE created_at < ?1 ORDER BY created_at LIMIT ?2)") {}
    storage::connection& db;
    storage::statement find;
    storage::statement remember;
    storage::statement forget;
};

idempotency_keys::idempotency_keys(storage::connection& db)
    : st_(std::make_unique<statements>(db)) {}

idempotency_keys::~idempotency_keys() = default;

std::optional<remembered_answer> idempotency_keys::find(std::string_view key) {
    auto& st = st_->find;
    st.bind(1, key);
    std::optional<remembered_answer> out;
    if (st.step()) out = remembered_answer{st.text(0), static_cast<int>(st.int64(1)), st.text(2)};
    st.reset();
    return out;
}

void idempotency_keys::remember(std::string_view key, const remembered_answer& answer,
                                std::string_view actor, std::optional<std::int64_t> subscription_id,
                                std::int64_t now) {
    auto& st = st_->remember;
    st.bind(1, key)
        .bind(2, answer.fingerprint)
        .bind(3, answer.status)
        .bind(4, answer.body)
        .bind(5, actor)
        .bind(6, subscription_id)
        .bind(7, now);
    st.run();
}

int idempotency_keys::forget_before(std::int64_t before, int limit) {
    auto& st = st_->forget;
    st.bind(1, before).bind(2, limit);
    st.run();
    return st_->db.changes();
}

}  // namespace billingd::operations
