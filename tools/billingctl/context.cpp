#include "context.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "operations/queries.hpp"
#include "storage/migrations.hpp"

namespace billingd::ctl {
namespace {

std::filesystem::path directory_of(const std::string& path) {
    const auto dir = std::filesystem::path{path}.parent_path();
    return dir.empty() ? std::filesystem::path{"."} : dir;
}

// Whether this process (its effective ids) may do `mode` on `path`; the errno text if not.
std::optional<std::string> denied(const std::filesystem::path& path, int mode) {
    if (::faccessat(AT_FDCWD, path.c_str(), mode, AT_EACCESS) == 0) return std::nullopt;
    return std::string{std::strerror(errno)};
}

bool exists_beside(const std::string& path, const char* suffix) {
    std::error_code ec;
    return std::filesystem::exists(path + suffix, ec);
}

// Why this user cannot change the database at `path` (or create it, when it does not exist),
// or nothing. SQLite writes the file itself, and its -wal and -shm files beside it: the
// directory must be writable unless both already exist and are writable (billingd running).
std::optional<std::string> write_problem(const std::string& path, bool exists) {
    const auto dir = directory_of(path);
    if (!exists) {
        if (auto why = denied(dir, W_OK | X_OK))
            return fmt::format("it cannot be created in {} ({})", dir.string(), *why);
        return std::nullopt;
    }
    if (auto why = denied(path, W_OK))
        return fmt::format("the file is not writable for this user ({})", *why);
    if (auto why = denied(dir, W_OK | X_OK)) {
        const bool beside = exists_beside(path, "-wal") && exists_beside(path, "-shm") &&
                            !denied(path + "-wal", W_OK) && !denied(path + "-shm", W_OK);
        if (!beside)
            return fmt::format(
                "its directory {} is not writable for this user ({}), and SQLite "
                "writes the database's -wal and -shm files there",
                dir.string(), *why);
    }
    return std::nullopt;
}

// SQLite's URI for reading `path` as a file nothing changes (no locks, no -shm).
std::string immutable_uri(const std::string& path) {
    std::string uri = "file:";
    for (char c : path) {
        if (c == '%' || c == '?' || c == '#')
            uri += fmt::format("%{:02X}", static_cast<unsigned char>(c));
        else
            uri += c;
    }
    return uri + "?immutable=1";
}

// The message of a storage error, naming `path` (the library names the file as it opened it:
// `opened`, which may be an immutable URI).
std::string message_of(const storage::error& e, const std::string& opened,
                       const std::string& path) {
    std::string m = e.what();
    if (opened != path)
        for (auto at = m.find(opened); at != std::string::npos; at = m.find(opened, at))
            m.replace(at, opened.size(), path);
    return m.find(path) == std::string::npos ? path + ": " + m : m;
}

}  // namespace

context::context(global_options options, db_access access)
    : options_(std::move(options)), access_(access) {}
context::~context() = default;

std::string default_actor() {
    if (const char* sudo = std::getenv("SUDO_USER"); sudo && *sudo) return sudo;
    if (const passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_name && *pw->pw_name)
        return pw->pw_name;
    return "uid " + std::to_string(::getuid());
}

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

std::string context::database_path() {
    return options_.database.empty() ? config()->database : options_.database;
}

storage::store& context::store() {
    if (store_) return *store_;
    const std::string path = database_path();
    std::error_code ec;
    const bool exists = std::filesystem::exists(path, ec);
    if (!exists && access_ != db_access::create)
        throw failure(exit_code::config,
                      fmt::format("{}: no such database (check --database or `database` in {})",
                                  path, options_.config_path));
    if (const auto why = write_problem(path, exists)) {
        if (access_ == db_access::read) {
            open_read_only(path);
            return *store_;
        }
        throw failure(exit_code::config,
                      fmt::format("{}: this command changes the database, but {}. Run it as a "
                                  "user who may write the database (e.g. the billingd user); "
                                  "read commands (list, show, charges, attempts, events, due, "
                                  "parked, in-doubt, info) work on a read-only database",
                                  path, *why));
    }
    open_writable(path);
    return *store_;
}

storage::open_options context::open_options(std::string path) const {
    storage::open_options o;
    o.path = std::move(path);
    o.on_busy = [warned = false](std::string_view) mutable {
        if (!warned)
            std::fputs(
                "billingctl: waiting for a database lock held by another connection "
                "(billingd or sqlite3)...\n",
                stderr);
        warned = true;
    };
    return o;
}

void context::open_writable(const std::string& path) {
    try {
        store_ = std::make_unique<storage::store>(open_options(path));
        // The database's merchant_uid namespace: set once, and a configuration naming another
        // prefix belongs to another database. With --database alone there is no configuration
        // to speak for: billingd names a new database's install id when it first opens it.
        if (options_.config_given || options_.database.empty())
            store_->claim_install_id(config()->engine.merchant_uid_prefix);
    } catch (const storage::install_mismatch& e) {
        store_.reset();
        throw failure(exit_code::config, e.what());
    } catch (const storage::error& e) {
        store_.reset();
        throw failure(exit_code::config, message_of(e, path, path));
    }
}

void context::open_read_only(const std::string& path) {
    auto o = open_options(path);
    o.read_only = true;
    // SQLite reads a WAL database through its -shm file. A read-only connection would create
    // it (and a -wal) owned by this user and leave both behind, or fail where it cannot create
    // them. When none of them exists, nothing has the database open (billingd keeps both while
    // it runs): the file is read as immutable, and nothing is created. Otherwise the other
    // connection's files are used, read-only.
    if (!exists_beside(path, "-wal") && !exists_beside(path, "-shm") &&
        !exists_beside(path, "-journal"))
        o.path = immutable_uri(path);
    const int expected = static_cast<int>(storage::migrations().size());
    int version = 0;
    const auto read_only_failure = [&](const storage::error& e) {
        return failure(exit_code::config,
                       message_of(e, o.path, path) +
                           " (opened read-only: this user may not write the database)");
    };
    try {
        storage::connection probe(o);
        version = probe.schema_version();
    } catch (const storage::error& e) {
        throw read_only_failure(e);
    }
    // Migrating needs write access, and the statements billingctl prepares need this
    // billingctl's schema: say which side must move instead of failing on a missing column.
    if (version == 0)
        throw failure(exit_code::config,
                      fmt::format("{}: not a billingd database (empty, or schema version 0); it "
                                  "is read-only for this user, so billingctl does not create "
                                  "its tables",
                                  path));
    if (version < expected)
        throw failure(exit_code::config,
                      fmt::format("{}: schema version {} is older than this billingctl reads "
                                  "({}), and the database is read-only for this user, so "
                                  "billingctl does not migrate it. billingd migrates it when it "
                                  "starts (so does any billingctl command run by a user who may "
                                  "write it); or use the billingctl of the older release",
                                  path, version, expected));
    if (version > expected)
        throw failure(exit_code::config,
                      fmt::format("{}: schema version {} is newer than this billingctl knows "
                                  "({}): use the billingctl installed with that billingd",
                                  path, version, expected));
    try {
        store_ = std::make_unique<storage::store>(o);
        // A configuration naming another install id belongs to another database; an install
        // id that was never set cannot be set without writing, and billingd sets it.
        const auto prefix = options_.config_given || options_.database.empty()
                                ? config()->engine.merchant_uid_prefix
                                : std::string{};
        const auto install = store_->install();
        if (!prefix.empty() && install.install_id && *install.install_id != prefix)
            throw failure(exit_code::config,
                          fmt::format("database {} belongs to install id '{}', but the "
                                      "configuration names merchant_uid_prefix '{}'",
                                      path, *install.install_id, prefix));
    } catch (const storage::error& e) {
        store_.reset();
        throw read_only_failure(e);
    } catch (...) {
        store_.reset();
        throw;
    }
}

operations::caller context::caller() const {
    return operations::caller{options_.actor, now()};
}

void context::event(std::optional<std::int64_t> subscription_id,
                    std::optional<std::int64_t> charge_id, std::string kind,
                    std::optional<std::string> from, std::optional<std::string> to,
                    std::string detail, std::optional<std::string> data) {
    operations::record_event(store(), caller(), subscription_id, charge_id, std::move(kind),
                             std::move(from), std::move(to), std::move(detail), std::move(data));
}

storage::subscription_record context::subscription(std::int64_t id) {
    return operations::subscription(store(), id);
}

storage::charge_record context::charge(std::int64_t id) {
    return operations::charge(store(), id);
}

}  // namespace billingd::ctl
