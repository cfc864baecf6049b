// The two delivery channels (worker.hpp's `channel`):
//   * webhook: one HTTPS POST per event, signed as Standard Webhooks do (signature.hpp). 2xx
//     is delivered; anything else (another status, a redirect, a timeout, a connection or TLS
//     failure) is a failed attempt. https:// with certificate and host-name verification;
//     http:// only to loopback (like [portone] base_url). One connection per attempt.
//   * exec: runs a local program with the event's JSON (the same body) on standard input;
//     exit 0 is delivered. It runs without a shell in its own process group with a minimal
//     environment (PATH, LANG, TZ and the event's id, type and timestamp; never billingd's
//     credentials) and is killed (the whole group) when it exceeds its timeout.
// Errors: make_* throw std::invalid_argument for a bad URL / program; deliver() never throws.
// Both must outlive their attempts; they run on the io_context's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outbox/worker.hpp"

namespace boost::asio {
class io_context;
}

namespace billingd::outbox {

struct webhook_options {
    std::string url;
    std::vector<std::string> keys;  // decoded secrets (parse_secret), current first
    std::chrono::milliseconds connect_timeout{5000};  // resolve + connect + TLS handshake
    std::chrono::milliseconds timeout{15000};         // writing the request, reading the answer
    std::string ca_file;                              // extra trusted CA (tests)
    std::size_t max_response_bytes = 64 * 1024;
};

// nullopt when `url` may be used, else what is wrong with it.
std::optional<std::string> validate_webhook_url(std::string_view url);
std::unique_ptr<channel> make_webhook_channel(boost::asio::io_context& io, webhook_options o);

struct exec_options {
    std::vector<std::string> argv;  // argv[0]: absolute path of the program
    std::chrono::milliseconds timeout{30000};
};

// nullopt when argv[0] is an absolute path to an executable file, else what is wrong.
std::optional<std::string> validate_exec_command(const std::vector<std::string>& argv);
std::unique_ptr<channel> make_exec_channel(boost::asio::io_context& io, exec_options o);

}  // namespace billingd::outbox
