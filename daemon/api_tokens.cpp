#include "daemon/api_tokens.hpp"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "daemon/credentials.hpp"

namespace billingd::daemon {
namespace {

constexpr std::size_t min_token = 32;
constexpr std::size_t max_token = 512;

std::array<unsigned char, 32> sha256(std::string_view text) {
    std::array<unsigned char, 32> out{};
    unsigned int n = 0;
    EVP_Digest(text.data(), text.size(), out.data(), &n, EVP_sha256(), nullptr);
    return out;
}

bool name_character(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

std::vector<std::string_view> words(std::string_view line) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        const auto start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
        if (i > start) out.push_back(line.substr(start, i - start));
    }
    return out;
}

}  // namespace

const api_token* authenticate(const std::vector<api_token>& tokens, std::string_view token) {
    const auto presented = sha256(token);
    const api_token* found = nullptr;
    for (const auto& t : tokens)  // every entry, whatever matched: no early exit
        if (CRYPTO_memcmp(presented.data(), t.digest.data(), presented.size()) == 0) found = &t;
    return found;
}

std::vector<api_token> parse_api_tokens(std::string_view text, const std::string& source) {
    std::vector<api_token> entries;
    std::set<std::string> names;
    std::set<std::array<unsigned char, 32>> digests;
    int number = 0;
    while (!text.empty()) {
        const auto end = text.find('\n');
        std::string_view line = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
        ++number;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        const auto w = words(line);
        if (w.empty() || w[0].starts_with('#')) continue;
        const auto where = fmt::format("{} line {}", source, number);
        if (w.size() != 3)
            throw config_error(fmt::format(
                "{}: expected `NAME SCOPE TOKEN` (scope read or write), found {} field(s)", where,
                w.size()));
        const std::string name{w[0]};
        if (name.size() > 64 || !std::all_of(name.begin(), name.end(), name_character))
            throw config_error(
                fmt::format("{}: the name must be 1 to 64 characters of A-Z a-z 0-9 . _ -", where));
        if (w[1] != "read" && w[1] != "write")
            throw config_error(fmt::format("{}: the scope must be read or write", where));
        const auto token = w[2];
        if (token.size() < min_token || token.size() > max_token ||
            !std::all_of(token.begin(), token.end(), [](char c) { return c > 0x20 && c < 0x7F; }))
            throw config_error(fmt::format(
                "{}: the token of '{}' must be {} to {} printable ASCII characters (e.g. "
                "`openssl rand -hex 32`)",
                where, name, min_token, max_token));
        if (!names.insert(name).second)
            throw config_error(fmt::format("{}: the name '{}' is used twice", where, name));
        auto digest = sha256(token);
        if (!digests.insert(digest).second)
            throw config_error(
                fmt::format("{}: the token of '{}' is the token of another name", where, name));
        entries.push_back({name, w[1] == "write", digest});
    }
    if (entries.empty())
        throw config_error(
            fmt::format("{}: no API token (one `NAME SCOPE TOKEN` per line)", source));
    return entries;
}

std::vector<api_token> load_api_tokens(const environment& env) {
    const auto text =
        read_secret("API bearer tokens (api_tokens)", api_tokens_credential, api_tokens_env, env);
    std::string source = std::string{api_tokens_env};
    if (auto dir = env("CREDENTIALS_DIRECTORY"); dir && !dir->empty()) {
        const auto path = *dir + "/" + std::string{api_tokens_credential};
        if (::access(path.c_str(), F_OK) == 0) source = path;
    }
    return parse_api_tokens(text, source);
}

}  // namespace billingd::daemon
