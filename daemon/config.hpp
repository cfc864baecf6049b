// billingd's configuration: one TOML file plus two secrets from the environment.
//
// load_config() reads the TOML file (see etc/billingd.toml for every key and its default),
// validates every value and reads the PortOne key and secret from
// `$CREDENTIALS_DIRECTORY/portone_imp_key` / `portone_imp_secret` (systemd LoadCredential=),
// falling back to BILLINGD_PORTONE_IMP_KEY / BILLINGD_PORTONE_IMP_SECRET for development.
// Secrets are never read from the TOML file: a file that names imp_key/imp_secret is refused.
//
// Errors: config_error (exit 78) with a message naming the file, line and key where known.
// Messages never contain a secret. Unknown keys are errors, so typos do not go unnoticed.
// Thread safety: pure apart from reading the file, the credentials and the environment.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "calendar/calendar.hpp"
#include "gateway/http_client.hpp"
#include "outbox/notices.hpp"
#include "outbox/retry.hpp"
#include "scheduler/engine.hpp"

namespace billingd::daemon {

class config_error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Names of the credential files and their development fallbacks.
inline constexpr std::string_view imp_key_credential = "portone_imp_key";
inline constexpr std::string_view imp_secret_credential = "portone_imp_secret";
inline constexpr std::string_view imp_key_env = "BILLINGD_PORTONE_IMP_KEY";
inline constexpr std::string_view imp_secret_env = "BILLINGD_PORTONE_IMP_SECRET";
// The webhook signing secrets (whsec_...): the current one, and during a rotation the one
// receivers may still expect.
inline constexpr std::string_view webhook_secret_credential = "webhook_secret";
inline constexpr std::string_view webhook_secret_env = "BILLINGD_WEBHOOK_SECRET";
inline constexpr std::string_view webhook_previous_credential = "webhook_secret_previous";
inline constexpr std::string_view webhook_previous_env = "BILLINGD_WEBHOOK_SECRET_PREVIOUS";

// [events]: delivery of events to the merchant's application (lib/outbox).
struct events_config {
    std::string webhook_url;                // empty: no webhook
    std::vector<std::string> exec_command;  // empty: no exec hook
    std::size_t max_in_flight = 4;          // per channel
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds webhook_timeout{15000};
    std::chrono::milliseconds exec_timeout{30000};
    std::string ca_file;
    outbox::retry_policy retry;
    outbox::notice_leads notice_days;
    // Decoded signing keys from the credentials, current first (load_credentials).
    std::vector<std::string> webhook_keys;

    bool any_channel() const { return !webhook_url.empty() || !exec_command.empty(); }
};

// [metrics]: the Prometheus endpoint (off unless `listen` is set).
struct metrics_config {
    // "127.0.0.1:9464", "[::1]:9464" or "unix:/run/billingd/metrics.sock"; empty: off.
    std::string listen;
    // An address that is not loopback is refused unless this is true (the metrics tell
    // anyone who can connect how much money is in doubt).
    bool allow_non_loopback = false;
    // Parsed from `listen` (not a unix socket): an IP literal and a port.
    std::string address;
    unsigned short port = 0;
    std::string unix_path;
};

// Splits and checks a [metrics] listen value; an error message, or nullopt when valid.
std::optional<std::string> parse_metrics_listen(std::string_view listen, metrics_config& out);

// One bearer token of the API (api_tokens.hpp): its holder's name (the events' actor), whether
// it may change anything, and the SHA-256 of the token (the token itself is not kept).
struct api_token {
    std::string name;
    bool can_write = false;
    std::array<unsigned char, 32> digest{};
};

// [api]: the HTTP API for the merchant's application (off unless `listen` is set).
struct api_config {
    // "127.0.0.1:8640", "[::1]:8640" or "unix:/run/billingd/api.sock"; empty: off.
    std::string listen;
    // TLS certificate chain and private key (PEM files), both or neither. An address that is
    // not loopback needs them unless allow_plaintext (TLS ends at a proxy in front).
    std::string tls_cert;
    std::string tls_key;
    bool allow_plaintext = false;
    std::size_t max_connections = 64;
    std::size_t max_body_bytes = 64 * 1024;
    // Reading one request (headers and body) and writing its answer; a slower client is cut.
    std::chrono::milliseconds request_timeout{10000};
    // How long a keep-alive connection may wait for its next request.
    std::chrono::milliseconds idle_timeout{30000};
    // Writes committed together in one transaction (one fsync), at most.
    std::size_t max_batch = 256;
    // While a charging pass runs and writes queue up, the share of the event loop's time they
    // may take: after a group commit of d the next waits d * (100 - share) / share, so
    // charging keeps the rest.
    int write_share_percent = 25;
    // How long an Idempotency-Key is remembered.
    std::chrono::hours idempotency_ttl{24};
    // Parsed from `listen`.
    std::string address;
    unsigned short port = 0;
    std::string unix_path;
    bool loopback = true;
    // From the credentials (load_credentials), when `listen` is set.
    std::vector<api_token> tokens;

    bool enabled() const { return !listen.empty(); }
};

struct config {
    std::string source;  // the file it was read from
    std::string database = "/var/lib/billingd/billingd.db";
    gateway::http_client_options portone;  // [portone] plus the two secrets
    scheduler::engine_config engine;       // quiet_zone points into the OS tz database
    // Defaults for new subscriptions (billingctl) and the zone of the quiet hours.
    std::string time_zone = "Asia/Seoul";
    calendar::time_of_day charge_time{std::chrono::hours{10}};
    std::string log_level = "info";  // trace|debug|info|warn|error|critical|off
    // [retry] in_progress_margin_seconds: added to connect + charge timeout for the trust floor.
    std::chrono::seconds in_progress_margin{30};
    events_config events;
    // [billing] reporting_time_zone: the zone of the operator views' local dates (the
    // operator_views migration); defaults to time_zone.
    std::string reporting_time_zone;
    metrics_config metrics;
    api_config api;
};

// Looks up an environment variable; std::nullopt when unset. Tests inject their own.
using environment = std::function<std::optional<std::string>(std::string_view name)>;
environment process_environment();

// Parses and validates `path` without reading secrets (imp_key/imp_secret stay empty).
config parse_config_file(const std::string& path);
// The same for TOML text; `source` names it in messages.
config parse_config_text(std::string_view text, const std::string& source);

// Fills config.portone.imp_key/imp_secret from the credentials directory or the environment,
// when a webhook is configured the signing secrets (a malformed one is a config_error), and
// when the API is on its bearer tokens (api_tokens.hpp).
void load_credentials(config& c, const environment& env);

// How long after a charge request was written ahead it may still be in progress at PortOne
// or the PG: the trust floor before a lookup's "no record" is believed.
std::chrono::seconds trust_floor(const config& c);

// parse_config_file + load_credentials.
config load_config(const std::string& path, const environment& env = process_environment());

}  // namespace billingd::daemon
