#include "context.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

namespace billingd::ctl {

context::context(global_options options) : options_(std::move(options)) {}
context::~context() = default;

std::int64_t context::now() const {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

const daemon::config* context::config() {
    if (!config_read_) {
        config_read_ = true;
        if (options_.database.empty() || options_.config_given)
            config_ = daemon::parse_config_file(options_.config_path);
    }
    return config_ ? &*config_ : nullptr;
}

daemon::config context::portone_config() {
    auto c = daemon::load_config(options_.config_path);
    if (!options_.database.empty()) c.database = options_.database;
    return c;
}

storage::store& context::store(bool create) {
    if (store_) return *store_;
    const std::string path = options_.database.empty() ? config()->database : options_.database;
    std::error_code ec;
    if (!create && !std::filesystem::exists(path, ec))
        throw failure(exit_code::config,
                      fmt::format("{}: no such database (check --database or `database` in {})",
                                  path, options_.config_path));
    storage::open_options o;
    o.path = path;
    o.on_busy = [warned = false](std::string_view) mutable {
        if (!warned)
            std::fputs(
                "billingctl: waiting for a database lock held by another connection "
                "(billingd or sqlite3)...\n",
                stderr);
        warned = true;
    };
    try {
        store_ = std::make_unique<storage::store>(std::move(o));
        // The database's merchant_uid namespace: set once, and a configuration naming another
        // prefix belongs to another database. With --database alone there is no configuration
        // to speak for: billingd names a new database's install id when it first opens it.
        if (options_.config_given || options_.database.empty())
            store_->claim_install_id(config()->engine.merchant_uid_prefix);
    } catch (const storage::install_mismatch& e) {
        store_.reset();
        throw failure(exit_code::config, e.what());
    } catch (const storage::error& e) {
        throw failure(exit_code::config,
                      fmt::format("{}: cannot open database: {}", path, e.what()));
    }
    return *store_;
}

void context::event(std::optional<std::int64_t> subscription_id,
                    std::optional<std::int64_t> charge_id, std::string kind,
                    std::optional<std::string> from, std::optional<std::string> to,
                    std::string detail) {
    storage::event_record e;
    e.at = now();
    e.subscription_id = subscription_id;
    e.charge_id = charge_id;
    e.kind = std::move(kind);
    e.from_state = std::move(from);
    e.to_state = std::move(to);
    e.detail = std::move(detail);
    e.actor = options_.actor;
    store().append_event(e);
}

storage::subscription_record context::subscription(std::int64_t id) {
    auto s = store().find_subscription(id);
    if (!s) throw failure(exit_code::data, fmt::format("no subscription with id {}", id));
    return *s;
}

storage::charge_record context::charge(std::int64_t id) {
    auto c = store().find_charge(id);
    if (!c) throw failure(exit_code::data, fmt::format("no charge with id {}", id));
    return *c;
}

}  // namespace billingd::ctl
