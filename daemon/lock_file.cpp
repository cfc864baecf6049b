#include "daemon/lock_file.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string_view>
#include <system_error>

namespace billingd::daemon {

namespace {

// One lock per database file, however its path is spelled (relative, through a symlink).
std::string lock_path_of(const std::string& database_path) {
    std::error_code ec;
    auto canonical = std::filesystem::weakly_canonical(database_path, ec);
    return (ec ? database_path : canonical.string()) + ".lock";
}

}  // namespace

database_lock::database_lock(const std::string& database_path)
    : path_(lock_path_of(database_path)) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0)
        throw cannot_create(fmt::format("cannot create the lock file {}: {}", path_,
                                        std::generic_category().message(errno)));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        const int err = errno;
        std::string holder;
        char buf[32] = {};
        if (const auto n = ::pread(fd_, buf, sizeof buf - 1, 0); n > 0) {
            std::string_view pid(buf, static_cast<std::size_t>(n));
            while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.remove_suffix(1);
            if (!pid.empty()) holder = fmt::format(" (pid {})", pid);
        }
        ::close(fd_);
        fd_ = -1;
        if (err == EWOULDBLOCK) {
            throw database_locked(fmt::format(
                "another billingd{} is already running on {} (it holds {}); refusing to start",
                holder, database_path, path_));
        }
        throw cannot_create(
            fmt::format("cannot lock {}: {}", path_, std::generic_category().message(err)));
    }
    // Name the holder for the next one who tries; purely informational.
    const std::string pid = fmt::format("{}\n", ::getpid());
    if (::ftruncate(fd_, 0) == 0) {
        [[maybe_unused]] auto written = ::pwrite(fd_, pid.data(), pid.size(), 0);
    }
}

database_lock::~database_lock() {
    if (fd_ >= 0) ::close(fd_);
}

}  // namespace billingd::daemon
