// The open-files limit billingd needs: one socket per request in flight to PortOne, plus the
// database (file, WAL, shared memory), the lock file, the journal and systemd sockets.
// Errors: config_error when the hard limit is below what the configuration needs.
#pragma once

#include <cstdint>

#include "daemon/config.hpp"

namespace billingd::daemon {

// Descriptors besides the PortOne connections: database, WAL, shm, lock, stdio, journal,
// notify socket, the resolver, and room for what an operator's tooling briefly opens.
inline constexpr std::uint64_t open_files_reserve = 64;

std::uint64_t open_files_needed(const config& cfg);

// Raises the soft RLIMIT_NOFILE to the hard limit when it is below what `cfg` needs (systemd
// and shells start services at a soft limit of 1024); returns the soft limit now in force.
// Throws config_error naming both figures when even the hard limit is too low.
std::uint64_t ensure_open_files(const config& cfg);

}  // namespace billingd::daemon
