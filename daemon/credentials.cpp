#include "daemon/credentials.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace billingd::daemon {
namespace {

void trim_newline(std::string& s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
}

}  // namespace

std::string read_secret(std::string_view what, std::string_view credential,
                        std::string_view env_name, const environment& env) {
    std::string tried;
    if (auto dir = env("CREDENTIALS_DIRECTORY"); dir && !dir->empty()) {
        const std::string path = *dir + "/" + std::string(credential);
        std::ifstream in(path, std::ios::binary);
        if (in) {
            std::ostringstream content;
            content << in.rdbuf();
            std::string secret = std::move(content).str();
            trim_newline(secret);
            if (secret.empty()) throw config_error(fmt::format("{}: {} is empty", path, what));
            return secret;
        }
        if (errno != ENOENT) {
            throw config_error(
                fmt::format("{}: cannot read {}: {}", path, what, std::strerror(errno)));
        }
        tried = fmt::format(" ({} does not exist)", path);
    }
    if (auto value = env(env_name)) {
        std::string secret = std::move(*value);
        trim_newline(secret);
        if (secret.empty()) {
            throw config_error(fmt::format("environment variable {}: {} is empty", env_name, what));
        }
        return secret;
    }
    throw config_error(fmt::format(
        "{} missing{}: provide it as the systemd credential '{}' (LoadCredential={}:/path/to/file "
        "in the unit; billingd reads $CREDENTIALS_DIRECTORY/{}) or, for development, in the "
        "environment variable {}; secrets are never read from the TOML file",
        what, tried, credential, credential, credential, env_name));
}

std::optional<std::string> read_optional_secret(std::string_view what, std::string_view credential,
                                                std::string_view env_name, const environment& env) {
    bool present = env(env_name).has_value();
    if (auto dir = env("CREDENTIALS_DIRECTORY"); dir && !dir->empty()) {
        const std::string path = *dir + "/" + std::string(credential);
        // Present unless it is provably absent: an unreadable file is reported by read_secret.
        errno = 0;
        present = present || ::access(path.c_str(), F_OK) == 0 || errno != ENOENT;
    }
    if (!present) return std::nullopt;
    return read_secret(what, credential, env_name, env);
}

}  // namespace billingd::daemon
