// One billingd per database: an exclusive, non-blocking flock on `<database>.lock`, held for
// the life of the process (the kernel drops it when the process dies, even on SIGKILL).
//
// Errors: database_locked when another process holds the lock (its pid in the message when
// the lock file names one); cannot_create (exit 73) when the lock file cannot be created or
// locked (a missing or unwritable state directory), naming the path.
#pragma once

#include <stdexcept>
#include <string>

namespace billingd::daemon {

class database_locked : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class cannot_create : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class database_lock {
  public:
    explicit database_lock(const std::string& database_path);
    ~database_lock();
    database_lock(const database_lock&) = delete;
    database_lock& operator=(const database_lock&) = delete;

    const std::string& path() const { return path_; }

  private:
    std::string path_;
    int fd_ = -1;
};

}  // namespace billingd::daemon
