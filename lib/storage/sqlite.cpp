#include "storage/sqlite.hpp"

#include <sqlite3.h>

#include <chrono>
#include <string>

#include "storage/migrations.hpp"

namespace billingd::storage {
namespace {

bool is_busy(int rc) {
    const int primary = rc & 0xff;
    return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

}  // namespace

// --- connection -------------------------------------------------------------------------

connection::connection(open_options options) : options_(std::move(options)) {
    int flags =
        options_.read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    // A read-only "file:...?immutable=1" URI (billingctl on a database nothing has open) must
    // not depend on SQLite having been built with URI names enabled.
    if (options_.read_only && options_.path.rfind("file:", 0) == 0) flags |= SQLITE_OPEN_URI;
    const int rc =
        sqlite3_open_v2(options_.path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
        std::string message = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
        sqlite3_close(db_);
        db_ = nullptr;
        throw open_error("cannot open database " + options_.path + ": " + message);
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, static_cast<int>(options_.busy_timeout.count()));
    try {
        exec("PRAGMA foreign_keys = ON");
        if (!options_.read_only) {
            exec("PRAGMA journal_mode = WAL");
            exec("PRAGMA synchronous = FULL");
            migrate();
        }
    } catch (...) {
        sqlite3_close(db_);
        db_ = nullptr;
        throw;
    }
}

connection::~connection() {
    if (db_) sqlite3_close_v2(db_);
}

void connection::fail(int rc, std::string_view context) const {
    // Name the file: an operator with several databases must know which one is corrupt or full.
    std::string message = "database " + options_.path + ": ";
    message += context;
    message += ": ";
    message += db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    if ((rc & 0xff) == SQLITE_CONSTRAINT) throw constraint_error(message);
    throw error(message);
}

void connection::wait_busy(std::string_view what) {
    if (options_.on_busy) options_.on_busy(what);
    // sqlite3_busy_timeout already waited; loop in the caller retries.
}

void connection::exec(std::string_view sql) {
    const std::string text{sql};
    for (;;) {
        char* err = nullptr;
        const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
        sqlite3_free(err);
        if (rc == SQLITE_OK) return;
        if (is_busy(rc)) {
            wait_busy(sql);
            continue;
        }
        fail(rc, sql.substr(0, 60));
    }
}

int connection::schema_version() {
    statement st(*this, "PRAGMA user_version");
    st.step();
    return static_cast<int>(st.int64(0));
}

std::int64_t connection::data_version() {
    statement st(*this, "PRAGMA data_version");
    st.step();
    return st.int64(0);
}

std::int64_t connection::last_insert_rowid() const {
    return sqlite3_last_insert_rowid(db_);
}
int connection::changes() const {
    return sqlite3_changes(db_);
}

void connection::migrate() {
    const auto& all = migrations();
    const int current = schema_version();
    if (current > static_cast<int>(all.size()))
        throw error("database " + options_.path + " has schema version " + std::to_string(current) +
                    ", newer than this billingd knows (" + std::to_string(all.size()) +
                    "); upgrade billingd");
    if (current == static_cast<int>(all.size())) return;
    // Foreign keys are off while migrations run, so a migration can rebuild a table that
    // others reference (SQLite's documented ALTER TABLE procedure); each migration is then
    // checked with foreign_key_check before it commits. The pragma is a no-op inside a
    // transaction, hence here.
    exec("PRAGMA foreign_keys = OFF");
    try {
        for (const auto& m : all) {
            if (m.version <= current) continue;
            write_transaction tx(*this);
            exec(m.sql);
            statement check(*this, "PRAGMA foreign_key_check");
            if (check.step())
                throw error("migration " + std::string{m.name} + " of " + options_.path +
                            " leaves a broken reference in table " + check.text(0));
            check.reset();
            exec("PRAGMA user_version = " + std::to_string(m.version));
            tx.commit();
        }
    } catch (...) {
        exec("PRAGMA foreign_keys = ON");
        throw;
    }
    exec("PRAGMA foreign_keys = ON");
}

// --- statement --------------------------------------------------------------------------

statement::statement(connection& db, std::string_view sql) : db_(&db), stmt_(nullptr) {
    const int rc = sqlite3_prepare_v3(db.handle(), sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
    if (rc != SQLITE_OK) db.fail(rc, "prepare " + std::string{sql.substr(0, 60)});
}

statement::statement(statement&& other) noexcept : db_(other.db_), stmt_(other.stmt_) {
    other.stmt_ = nullptr;
}

statement::~statement() {
    if (stmt_) sqlite3_finalize(stmt_);
}

statement& statement::bind(int index, std::int64_t value) {
    const int rc = sqlite3_bind_int64(stmt_, index, value);
    if (rc != SQLITE_OK) db_->fail(rc, "bind");
    return *this;
}

statement& statement::bind(int index, std::string_view value) {
    const int rc = sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT,
                                       SQLITE_UTF8);
    if (rc != SQLITE_OK) db_->fail(rc, "bind");
    return *this;
}

statement& statement::bind_null(int index) {
    const int rc = sqlite3_bind_null(stmt_, index);
    if (rc != SQLITE_OK) db_->fail(rc, "bind");
    return *this;
}

bool statement::step() {
    for (;;) {
        const int rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        if (is_busy(rc)) {
            // Only retried from the start of a statement; SQLite allows that after BUSY.
            sqlite3_reset(stmt_);
            db_->wait_busy(sqlite3_sql(stmt_));
            continue;
        }
        const std::string sql = sqlite3_sql(stmt_);
        sqlite3_reset(stmt_);
        db_->fail(rc, sql.substr(0, 60));
    }
}

void statement::run() {
    try {
        while (step()) {
        }
    } catch (...) {
        reset();  // leave it reusable after a constraint error
        throw;
    }
    reset();
}

void statement::reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
}

bool statement::is_null(int column) const {
    return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

std::int64_t statement::int64(int column) const {
    return sqlite3_column_int64(stmt_, column);
}

std::string statement::text(int column) const {
    const auto* p = sqlite3_column_text(stmt_, column);
    const int n = sqlite3_column_bytes(stmt_, column);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n))
             : std::string{};
}

std::optional<std::int64_t> statement::optional_int64(int column) const {
    if (is_null(column)) return std::nullopt;
    return int64(column);
}

std::optional<std::string> statement::optional_text(int column) const {
    if (is_null(column)) return std::nullopt;
    return text(column);
}

// --- write_transaction --------------------------------------------------------------------

write_transaction::write_transaction(connection& db) : db_(db) {
    db_.exec("BEGIN IMMEDIATE");
}

write_transaction::~write_transaction() {
    if (open_) sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void write_transaction::commit() {
    const commit_observer& observer = db_.observer();
    if (!observer.observe) {
        db_.exec("COMMIT");
        open_ = false;
        return;
    }
    // steady_clock measures a duration; it is not the injected wall clock of the scheduler.
    const auto started = std::chrono::steady_clock::now();
    db_.exec("COMMIT");
    open_ = false;
    observer.observe(observer.context, std::chrono::steady_clock::now() - started);
}

savepoint::savepoint(connection& db) : db_(db) {
    db_.exec("SAVEPOINT row");
}

savepoint::~savepoint() {
    if (!open_) return;
    sqlite3_exec(db_.handle(), "ROLLBACK TO row", nullptr, nullptr, nullptr);
    sqlite3_exec(db_.handle(), "RELEASE row", nullptr, nullptr, nullptr);
}

void savepoint::release() {
    db_.exec("RELEASE row");
    open_ = false;
}

}  // namespace billingd::storage
