// billingctl internals: exit codes, the error type commands throw, and the context every
// command runs in (options, configuration, the store, the clock, event rows).
//
// Commands throw `failure` with the exit code to use, or let an operations::error through
// (main() maps its kind: not_found, invalid, conflict 65; unavailable 69); main() prints the
// message once.
// The store is opened lazily, so commands that fail validation never touch the database.
// How it is opened depends on what the command does with it (db_access): a database this user
// may not write (a read-only file, a file in a read-only directory, a read-only copy) is
// opened read-only for read commands, without migrating it, and refused with its path for a
// command that changes it (exit 78).
// The configuration is read only when needed: `--database` alone is enough for every command
// that does not call PortOne. Thread safety: one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "daemon/config.hpp"
#include "operations/operation.hpp"
#include "storage/store.hpp"

namespace billingd::ctl {

// sysexits.h values, as documented in `billingctl --help`.
namespace exit_code {
inline constexpr int ok = 0;
inline constexpr int usage = 64;         // bad command line
inline constexpr int data = 65;          // unknown id, invalid value, illegal transition
inline constexpr int unavailable = 69;   // PortOne cannot be reached or gave no clear answer
inline constexpr int software = 70;      // database or internal error
inline constexpr int cannot_write = 73;  // an output file cannot be written
inline constexpr int config = 78;        // bad or missing configuration or database, or a
                                         // database this user may not write for a change
}  // namespace exit_code

// What a command does with the database: decides how context::store() opens it.
enum class db_access {
    // Reads only. A database this user may write is opened as billingd opens it (migrated);
    // one it may not write is opened read-only (as an immutable file when nothing has it open,
    // so that no -wal or -shm file is created): never migrated, and a schema other than this
    // billingctl's is reported (exit 78) instead of read.
    read,
    // Changes rows: the file must exist, and it and its directory must be writable (else
    // exit 78, naming the file).
    write,
    // subscription add: like write, and a missing file is created.
    create,
};

class failure : public std::runtime_error {
  public:
    failure(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
    int code() const { return code_; }

  private:
    int code_;
};

struct global_options {
    std::string config_path = "/etc/billingd/billingd.toml";
    bool config_given = false;
    std::string database;  // overrides the configuration's `database`
    bool json = false;
    bool csv = false;
    std::string actor;  // empty: default_actor()
};

// Who runs billingctl, for event rows: $SUDO_USER (the person behind sudo), else the login
// name of the real user id, else "uid N".
std::string default_actor();

class context {
  public:
    context(global_options options, db_access access);
    ~context();
    context(const context&) = delete;
    context& operator=(const context&) = delete;

    bool json() const { return options_.json; }
    const std::string& actor() const { return options_.actor; }
    // Wall-clock now, UNIX seconds (billingctl is a tool main: it may read the clock).
    std::int64_t now() const;

    // The configuration without secrets; nullptr when only --database was given.
    // Throws daemon::config_error.
    const daemon::config* config();
    // The configuration plus the PortOne credentials, for commands that call PortOne.
    daemon::config portone_config();

    // The database file: --database, else `database` from the configuration.
    std::string database_path();
    // Opens the database on first use as the command's db_access says (see there). A missing
    // file is a configuration error (exit 78) unless the access is `create`.
    storage::store& store();

    // This operator, now: who the operations' event rows name (--actor).
    operations::caller caller() const;
    // Appends an event row written by this operator (call inside a write transaction), through
    // operations::record_event. `data`: the JSON object the outbox delivers.
    void event(std::optional<std::int64_t> subscription_id, std::optional<std::int64_t> charge_id,
               std::string kind, std::optional<std::string> from, std::optional<std::string> to,
               std::string detail, std::optional<std::string> data = std::nullopt);

    // The row, or operations::error not_found ("no subscription with id N", exit 65).
    storage::subscription_record subscription(std::int64_t id);
    storage::charge_record charge(std::int64_t id);

  private:
    storage::open_options open_options(std::string path) const;
    void open_writable(const std::string& path);
    void open_read_only(const std::string& path);

    global_options options_;
    db_access access_;
    bool config_read_ = false;
    std::optional<daemon::config> config_;
    std::unique_ptr<storage::store> store_;
};

}  // namespace billingd::ctl
