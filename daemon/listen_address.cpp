#include "daemon/listen_address.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

namespace billingd::daemon {

std::string endpoint_text(const std::string& address, unsigned short port) {
    // The configuration holds an IP literal: only an IPv6 one has a colon.
    return address.find(':') != std::string::npos ? fmt::format("[{}]:{}", address, port)
                                                  : fmt::format("{}:{}", address, port);
}

void remove_stale_socket(const std::string& path) {
    struct stat info {};
    if (::lstat(path.c_str(), &info) == 0 && S_ISSOCK(info.st_mode)) ::unlink(path.c_str());
}

}  // namespace billingd::daemon
