#include "daemon/version.hpp"

namespace billingd::daemon {

std::string_view version() {
    return BILLINGD_VERSION;
}

}  // namespace billingd::daemon
