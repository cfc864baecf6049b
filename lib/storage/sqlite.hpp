// A small RAII layer over SQLite: connection, prepared statements and write transactions.
//
// Opening a database applies the pragmas billingd relies on (WAL, foreign keys,
// synchronous=FULL for durable journaling) and every pending migration, one transaction each.
// Errors: infrastructure failures (cannot open, disk I/O, corrupt file) throw storage::error;
// constraint violations throw storage::constraint_error so callers can tell bad input apart.
// SQLITE_BUSY is never an error: writes wait (busy timeout) and then retry until they succeed,
// calling options::on_busy so the caller can log that an operator is holding a lock.
//
// Thread safety: a connection belongs to one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace billingd::storage {

class error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class constraint_error : public error {
  public:
    using error::error;
};

// The database file cannot be opened or created (missing or unwritable directory, not a
// database).
class open_error : public error {
  public:
    using error::error;
};

class connection;

class statement {
  public:
    statement(connection& db, std::string_view sql);
    ~statement();
    statement(const statement&) = delete;
    statement& operator=(const statement&) = delete;
    statement(statement&& other) noexcept;
    statement& operator=(statement&&) = delete;

    // Parameters are 1-based, like SQLite's.
    statement& bind(int index, std::int64_t value);
    statement& bind(int index, int value) { return bind(index, static_cast<std::int64_t>(value)); }
    statement& bind(int index, std::string_view value);
    statement& bind(int index, const char* value) { return bind(index, std::string_view{value}); }
    statement& bind(int index, const std::string& value) {
        return bind(index, std::string_view{value});
    }
    statement& bind_null(int index);
    template <typename T>
    statement& bind(int index, const std::optional<T>& value) {
        return value ? bind(index, *value) : bind_null(index);
    }

    // Runs one step: true when a row is available. Waits out SQLITE_BUSY.
    bool step();
    // Steps to completion and resets, also when it throws: for statements without rows.
    void run();
    // Resets and clears bindings so the statement can be reused.
    void reset();

    bool is_null(int column) const;
    std::int64_t int64(int column) const;
    std::string text(int column) const;
    std::optional<std::int64_t> optional_int64(int column) const;
    std::optional<std::string> optional_text(int column) const;

  private:
    connection* db_;
    sqlite3_stmt* stmt_;
};

struct open_options {
    std::string path;
    std::chrono::milliseconds busy_timeout{2000};
    bool read_only = false;
    // Called each time a write had to wait longer than busy_timeout; it then retries.
    std::function<void(std::string_view what)> on_busy;
};

// Told how long each write_transaction's COMMIT took (metrics). A plain function pointer and
// a context: when none is set, commit() does not even read the clock.
struct commit_observer {
    void (*observe)(void* context, std::chrono::nanoseconds took) = nullptr;
    void* context = nullptr;
};

class connection {
  public:
    // Opens (creating if needed unless read_only), sets pragmas, applies migrations.
    explicit connection(open_options options);
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    sqlite3* handle() const { return db_; }
    const std::string& path() const { return options_.path; }

    // Executes SQL without results (may be several statements). Waits out SQLITE_BUSY.
    void exec(std::string_view sql);

    int schema_version();
    std::int64_t last_insert_rowid() const;
    int changes() const;

    // PRAGMA data_version: changes when another connection commits.
    std::int64_t data_version();

    // Throws error/constraint_error describing rc with the connection's message.
    [[noreturn]] void fail(int rc, std::string_view context) const;
    void wait_busy(std::string_view what);

    // Observes the duration of every write_transaction::commit() from now on (one at most;
    // an empty observer removes it). The context must outlive the connection or the next call.
    void set_commit_observer(commit_observer observer) { commit_observer_ = observer; }
    const commit_observer& observer() const { return commit_observer_; }

  private:
    void migrate();

    open_options options_;
    sqlite3* db_ = nullptr;
    commit_observer commit_observer_;
};

// BEGIN IMMEDIATE ... COMMIT. Rolls back in the destructor unless committed.
class write_transaction {
  public:
    explicit write_transaction(connection& db);
    ~write_transaction();
    write_transaction(const write_transaction&) = delete;
    write_transaction& operator=(const write_transaction&) = delete;
    void commit();

  private:
    connection& db_;
    bool open_ = true;
};

// SAVEPOINT ... RELEASE inside a write_transaction: the work of one row that can be undone
// alone (a row the schema refuses) without losing the rest of the transaction. Rolls back to
// the savepoint in the destructor unless released.
class savepoint {
  public:
    explicit savepoint(connection& db);
    ~savepoint();
    savepoint(const savepoint&) = delete;
    savepoint& operator=(const savepoint&) = delete;
    void release();

  private:
    connection& db_;
    bool open_ = true;
};

// Every row of `st`, each read by `read`. The statement is reset afterwards, also when a step
// or a read throws, so that it can be bound again.
template <typename Record, typename Reader>
std::vector<Record> collect(statement& st, Reader read) {
    std::vector<Record> rows;
    try {
        while (st.step()) rows.push_back(read(st));
    } catch (...) {
        st.reset();
        throw;
    }
    st.reset();
    return rows;
}

}  // namespace billingd::storage
