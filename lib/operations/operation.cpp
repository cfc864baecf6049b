#include "operations/operation.hpp"

#include <cassert>

#include "storage/store.hpp"

namespace billingd::operations {

std::int64_t record_event(storage::store& store, const caller& who,
                          std::optional<std::int64_t> subscription_id,
                          std::optional<std::int64_t> charge_id, std::string kind,
                          std::optional<std::string> from, std::optional<std::string> to,
                          std::string detail, std::optional<std::string> data) {
    storage::event_record e;
    e.at = who.now;
    e.subscription_id = subscription_id;
    e.charge_id = charge_id;
    e.kind = std::move(kind);
    e.from_state = std::move(from);
    e.to_state = std::move(to);
    e.detail = std::move(detail);
    e.actor = who.actor;
    e.data = std::move(data);
    return store.append_event(e);
}

namespace {

// The connection on which a change_scope or group_commit holds the write transaction, if any
// (a connection belongs to one thread): a scope opened inside it is a savepoint.
thread_local const storage::connection* in_transaction = nullptr;

}  // namespace

struct change_scope::impl {
    std::optional<storage::write_transaction> alone;
    std::optional<storage::savepoint> nested;
    ~impl() {
        if (alone) in_transaction = nullptr;
    }
};

change_scope::change_scope(storage::store& store) : impl_(std::make_unique<impl>()) {
    if (in_transaction == &store.db()) {
        impl_->nested.emplace(store.db());
    } else {
        impl_->alone.emplace(store.db());
        in_transaction = &store.db();
    }
}

change_scope::~change_scope() = default;

void change_scope::commit() {
    if (impl_->nested) {
        impl_->nested->release();
    } else {
        in_transaction = nullptr;
        impl_->alone->commit();
    }
}

struct group_commit::impl {
    explicit impl(storage::connection& db) : tx(db) {}
    ~impl() { in_transaction = nullptr; }
    storage::write_transaction tx;
};

group_commit::group_commit(storage::store& store) {
    assert(in_transaction == nullptr);
    impl_ = std::make_unique<impl>(store.db());
    in_transaction = &store.db();
}

group_commit::~group_commit() = default;

void group_commit::commit() {
    in_transaction = nullptr;
    impl_->tx.commit();
}

}  // namespace billingd::operations
