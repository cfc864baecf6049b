#include "daemon/open_files.hpp"

#include <fmt/format.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstring>

namespace billingd::daemon {

std::uint64_t open_files_needed(const config& cfg) {
    return cfg.portone.max_in_flight + open_files_reserve;
}

std::uint64_t ensure_open_files(const config& cfg) {
    const auto needed = open_files_needed(cfg);
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        throw config_error(
            fmt::format("cannot read the open-files limit: {}", std::strerror(errno)));
    if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur >= needed) return limit.rlim_cur;
    if (limit.rlim_cur == RLIM_INFINITY) return needed;
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < needed)
        throw config_error(fmt::format(
            "[portone] max_in_flight = {} needs {} open files, but the hard limit is {} "
            "(raise LimitNOFILE= in the unit, or `ulimit -Hn`, or lower max_in_flight)",
            cfg.portone.max_in_flight, needed, limit.rlim_max));
    // Up to the hard limit, as systemd advises for programs that do not use select().
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0)
        throw config_error(fmt::format("cannot raise the open-files limit to {}: {}",
                                       limit.rlim_max, std::strerror(errno)));
    return limit.rlim_cur == RLIM_INFINITY ? needed : limit.rlim_cur;
}

}  // namespace billingd::daemon
