// The version both binaries report (billingd --version, billingctl --version, build info).
#pragma once

#include <string_view>

namespace billingd::daemon {

std::string_view version();

}  // namespace billingd::daemon
