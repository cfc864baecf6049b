// Reading one secret: `$CREDENTIALS_DIRECTORY/<credential>` (systemd LoadCredential=) first,
// then the environment variable `<env_name>` (development). A trailing newline is trimmed.
// Throws config_error naming where to put the secret when neither has it, or it is empty.
// The secret itself never appears in an error message.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "daemon/config.hpp"

namespace billingd::daemon {

std::string read_secret(std::string_view what, std::string_view credential,
                        std::string_view env_name, const environment& env);

// The same for a secret that may be absent (neither the file nor the variable exists).
std::optional<std::string> read_optional_secret(std::string_view what, std::string_view credential,
                                                std::string_view env_name, const environment& env);

}  // namespace billingd::daemon
