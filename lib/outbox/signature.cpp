#include "outbox/signature.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>

namespace billingd::outbox {

std::string base64_encode(std::string_view bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(bytes.data()),
                                  static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::variant<std::string, std::string> parse_secret(std::string_view secret) {
    using result = std::variant<std::string, std::string>;
    constexpr std::string_view prefix = "whsec_";
    if (!secret.starts_with(prefix))
        return result{std::in_place_index<1>, "must start with whsec_ (whsec_<base64 key>)"};
    const std::string_view b64 = secret.substr(prefix.size());
    if (b64.empty() || b64.size() % 4 != 0 ||
        b64.find_first_not_of(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") !=
            std::string_view::npos)
        return result{std::in_place_index<1>, "the part after whsec_ is not base64"};
    const auto first_pad = b64.find('=');
    if (first_pad != std::string_view::npos && first_pad < b64.size() - 2)
        return result{std::in_place_index<1>, "the part after whsec_ is not base64"};
    if (first_pad != std::string_view::npos &&
        b64.substr(first_pad).find_first_not_of('=') != std::string_view::npos)
        return result{std::in_place_index<1>, "the part after whsec_ is not base64"};
    std::string key(b64.size() / 4 * 3, '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(key.data()),
                                  reinterpret_cast<const unsigned char*>(b64.data()),
                                  static_cast<int>(b64.size()));
    if (n < 0) return result{std::in_place_index<1>, "the part after whsec_ is not base64"};
    // EVP_DecodeBlock counts padding as zero bytes.
    std::size_t len = static_cast<std::size_t>(n);
    for (auto c = b64.rbegin(); c != b64.rend() && *c == '='; ++c) --len;
    key.resize(len);
    if (key.size() < 24 || key.size() > 64)
        return result{std::in_place_index<1>,
                      "the key after whsec_ must be 24 to 64 bytes (32 to 88 base64 characters)"};
    return result{std::in_place_index<0>, std::move(key)};
}

std::string sign(std::string_view key, std::string_view id, std::int64_t timestamp,
                 std::string_view body) {
    std::string message;
    message.reserve(id.size() + body.size() + 24);
    message.append(id).append(".").append(std::to_string(timestamp)).append(".").append(body);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &mac_len);
    return "v1," + base64_encode({reinterpret_cast<const char*>(mac), mac_len});
}

std::string signature_header(const std::vector<std::string>& keys, std::string_view id,
                             std::int64_t timestamp, std::string_view body) {
    std::string out;
    for (const auto& key : keys) {
        if (!out.empty()) out += ' ';
        out += sign(key, id, timestamp, body);
    }
    return out;
}

}  // namespace billingd::outbox
