#include "daemon/config.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <vector>

#include "daemon/api_tokens.hpp"
#include "daemon/credentials.hpp"
#include "domain/merchant_uid.hpp"
#include "gateway/http_client.hpp"
#include "outbox/signature.hpp"
#include "outbox/transports.hpp"

namespace billingd::daemon {
namespace {

std::string position(const std::string& source, const toml::source_region& where) {
    if (where.begin.line == 0) return source;
    return fmt::format("{}:{}:{}", source, where.begin.line, where.begin.column);
}

std::string_view type_name(toml::node_type t) {
    switch (t) {
        case toml::node_type::string:
            return "a string";
        case toml::node_type::integer:
            return "an integer";
        case toml::node_type::floating_point:
            return "a floating-point number";
        case toml::node_type::boolean:
            return "a boolean";
        case toml::node_type::date:
            return "a date";
        case toml::node_type::time:
            return "a time";
        case toml::node_type::date_time:
            return "a date-time";
        case toml::node_type::array:
            return "an array";
        case toml::node_type::table:
            return "a table";
        case toml::node_type::none:
            break;
    }
    return "nothing";
}

bool looks_like_secret(std::string_view key) {
    std::string lower(key);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    return lower.find("imp_key") != std::string::npos ||
           lower.find("imp_secret") != std::string::npos ||
           lower.find("secret") != std::string::npos || lower == "api_key" || lower == "key";
}

// Refuses any key that looks like a credential, wherever it is, before anything else: the
// operator must learn where secrets go, not that the key is unknown. Values are never shown.
void refuse_secrets(const toml::node& node, const std::string& path, const std::string& source) {
    if (const auto* table = node.as_table()) {
        for (auto&& [key, value] : *table) {
            const std::string name =
                path.empty() ? std::string(key.str()) : path + "." + std::string(key.str());
            if (looks_like_secret(key.str())) {
                throw config_error(fmt::format(
                    "{}: key '{}': secrets are never read from the configuration file; put the "
                    "PortOne key and secret in $CREDENTIALS_DIRECTORY/{} and "
                    "$CREDENTIALS_DIRECTORY/{} (systemd LoadCredential=), or for development in "
                    "the environment variables {} and {}",
                    position(source, key.source()), name, imp_key_credential, imp_secret_credential,
                    imp_key_env, imp_secret_env));
            }
            refuse_secrets(value, name, source);
        }
    } else if (const auto* array = node.as_array()) {
        for (const auto& element : *array) refuse_secrets(element, path, source);
    }
}

// Reads one table: rejects keys it does not know, checks types and ranges, names the key.
class table_reader {
  public:
    table_reader(const toml::table& table, std::string prefix, const std::string& source,
                 std::initializer_list<std::string_view> known)
        : table_(table), prefix_(std::move(prefix)), source_(source) {
        for (auto&& [key, value] : table_) {
            if (std::find(known.begin(), known.end(), key.str()) != known.end()) continue;
            std::string hint;
            for (auto k : known) hint += (hint.empty() ? "" : ", ") + std::string(k);
            throw config_error(fmt::format("{}: unknown key '{}' (known keys{}: {})",
                                           position(source_, key.source()), name(key.str()),
                                           prefix_.empty() ? "" : " in [" + prefix_ + "]", hint));
        }
    }

    [[noreturn]] void fail(std::string_view key, std::string_view what) const {
        const toml::node* node = table_.get(key);
        throw config_error(fmt::format("{}: key '{}': {}",
                                       node ? position(source_, node->source()) : source_,
                                       name(key), what));
    }

    const toml::node* node(std::string_view key) const { return table_.get(key); }

    const toml::table* table(std::string_view key) const {
        const toml::node* node = table_.get(key);
        if (!node) return nullptr;
        if (!node->is_table())
            fail(key, fmt::format("must be a table, not {}", type_name(node->type())));
        return node->as_table();
    }

    std::optional<std::int64_t> integer(std::string_view key, std::int64_t min,
                                        std::int64_t max) const {
        const toml::node* node = table_.get(key);
        if (!node) return std::nullopt;
        const auto* value = node->as_integer();
        if (!value) fail(key, fmt::format("must be an integer, not {}", type_name(node->type())));
        return checked(key, value->get(), min, max);
    }

    std::optional<double> number(std::string_view key, double min, double max) const {
        const toml::node* node = table_.get(key);
        if (!node) return std::nullopt;
        double v = 0;
        if (const auto* i = node->as_integer()) {
            v = static_cast<double>(i->get());
        } else if (const auto* f = node->as_floating_point()) {
            v = f->get();
        } else {
            fail(key, fmt::format("must be a number, not {}", type_name(node->type())));
        }
        if (!(v >= min && v <= max)) fail(key, fmt::format("must be between {} and {}", min, max));
        return v;
    }

    std::optional<bool> boolean(std::string_view key) const {
        const toml::node* node = table_.get(key);
        if (!node) return std::nullopt;
        const auto* value = node->as_boolean();
        if (!value)
            fail(key, fmt::format("must be true or false, not {}", type_name(node->type())));
        return value->get();
    }

    std::optional<std::string> string(std::string_view key) const {
        const toml::node* node = table_.get(key);
        if (!node) return std::nullopt;
        const auto* value = node->as_string();
        if (!value) fail(key, fmt::format("must be a string, not {}", type_name(node->type())));
        return value->get();
    }

    std::optional<std::vector<std::int64_t>> integers(std::string_view key, std::int64_t min,
                                                      std::int64_t max) const {
        const toml::node* node = table_.get(key);
        if (!node) return std::nullopt;
        const auto* array = node->as_array();
        if (!array) {
            fail(key, fmt::format("must be an array of integers, not {}", type_name(node->type())));
        }
        std::vector<std::int64_t> out;
        for (const auto& element : *array) {
            const auto* value = element.as_integer();
            if (!value) {
                fail(key, fmt::format("must be an array of integers, found {}",
                                      type_name(element.type())));
            }
            out.push_back(checked(key, value->get(), min, max));
        }
        return out;
    }

  private:
    std::string name(std::string_view key) const {
        return prefix_.empty() ? std::string(key) : prefix_ + "." + std::string(key);
    }
    std::int64_t checked(std::string_view key, std::int64_t v, std::int64_t min,
                         std::int64_t max) const {
        if (v < min || v > max)
            fail(key, fmt::format("must be between {} and {} (got {})", min, max, v));
        return v;
    }

    const toml::table& table_;
    std::string prefix_;
    const std::string& source_;
};

std::chrono::seconds secs(std::int64_t v) {
    return std::chrono::seconds{v};
}

constexpr std::int64_t day = 24 * 3600;

// Whether an IP literal (as parse_metrics_listen leaves it) is a loopback address.
bool is_loopback(const std::string& host) {
    unsigned char buffer[16];
    if (inet_pton(AF_INET, host.c_str(), buffer) == 1) return buffer[0] == 127;
    static const unsigned char v6_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return inet_pton(AF_INET6, host.c_str(), buffer) == 1 &&
           std::equal(buffer, buffer + 16, v6_loopback);
}
constexpr std::int64_t max_timeout_ms = 10 * 60 * 1000;

void read_portone(const table_reader& r, gateway::http_client_options& p) {
    if (auto v = r.string("base_url")) {
        if (auto problem = gateway::validate_base_url(*v)) r.fail("base_url", *problem);
        p.base_url = *v;
    }
    if (auto v = r.integer("connect_timeout_ms", 1, max_timeout_ms))
        p.connect_timeout = std::chrono::milliseconds{*v};
    if (auto v = r.integer("charge_timeout_ms", 1, max_timeout_ms))
        p.charge_timeout = std::chrono::milliseconds{*v};
    if (auto v = r.integer("lookup_timeout_ms", 1, max_timeout_ms))
        p.lookup_timeout = std::chrono::milliseconds{*v};
    if (auto v = r.integer("max_response_bytes", 4096, std::int64_t{64} << 20))
        p.max_response_bytes = static_cast<std::size_t>(*v);
    if (auto v = r.integer("max_in_flight", 1, 1024))
        p.max_in_flight = static_cast<std::size_t>(*v);
    if (auto v = r.number("max_requests_per_second", 0, 100'000)) p.max_requests_per_second = *v;
    if (auto v = r.string("ca_file")) {
        if (!v->empty() && !std::ifstream(*v).good()) {
            r.fail("ca_file", fmt::format("cannot read '{}'", *v));
        }
        p.ca_file = *v;
    }
}

std::optional<calendar::quiet_hours> parse_quiet_hours(std::string_view text) {
    const auto dash = text.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    auto start = calendar::parse_time_of_day(text.substr(0, dash));
    auto end = calendar::parse_time_of_day(text.substr(dash + 1));
    if (!start || !end) return std::nullopt;
    return calendar::quiet_hours{*start, *end};
}

void read_billing(const table_reader& r, config& c) {
    if (auto v = r.string("time_zone")) {
        if (!calendar::find_zone(*v)) {
            r.fail("time_zone", fmt::format("unknown time zone '{}' (expected an IANA name such as "
                                            "Asia/Seoul)",
                                            *v));
        }
        c.time_zone = *v;
    }
    if (auto v = r.string("charge_time")) {
        auto t = calendar::parse_time_of_day(*v);
        if (!t) r.fail("charge_time", fmt::format("'{}' is not a time of day HH:MM", *v));
        c.charge_time = *t;
    }
    if (auto v = r.string("merchant_uid_prefix")) {
        if (auto problem = domain::check_merchant_uid_prefix(*v))
            r.fail("merchant_uid_prefix", *problem);
        c.engine.merchant_uid_prefix = *v;
    }
    if (auto v = r.integer("max_catch_up_periods", 1, 1000))
        c.engine.max_catch_up_periods = static_cast<int>(*v);
    if (auto v = r.string("quiet_hours"); v && !v->empty()) {
        auto q = parse_quiet_hours(*v);
        if (!q) r.fail("quiet_hours", fmt::format("'{}' is not a window HH:MM-HH:MM", *v));
        if (q->empty())
            r.fail("quiet_hours", "start and end are equal; use \"\" for no quiet hours");
        c.engine.quiet = *q;
    }
    if (auto v = r.integer("batch_size", 1, 100'000)) c.engine.batch_size = static_cast<int>(*v);
    if (auto v = r.boolean("require_consent")) c.engine.require_consent = *v;
    if (auto v = r.integer("consent_timeout_days", 1, 365))
        c.engine.consent_timeout = std::chrono::seconds{*v * 86400};
    if (auto v = r.string("consent_timeout_action")) {
        if (*v != "cancel" && *v != "charge_old_price")
            r.fail("consent_timeout_action",
                   fmt::format("'{}' is not one of cancel, charge_old_price", *v));
        c.engine.consent_timeout_charges_old_price = *v == "charge_old_price";
    }
    if (auto v = r.string("reporting_time_zone")) {
        if (!calendar::find_zone(*v)) {
            r.fail("reporting_time_zone",
                   fmt::format("unknown time zone '{}' (expected an IANA name such as Asia/Seoul)",
                               *v));
        }
        c.reporting_time_zone = *v;
    }
}

void read_refunds(const table_reader& r, config& c) {
    if (auto v = r.integer("lookup_delay_seconds", 1, 3600))
        c.engine.refund_lookup_delay = secs(*v);
    if (auto v = r.integer("console_check_minutes", 0, 7 * 24 * 60))
        c.engine.console_check_interval = std::chrono::seconds{*v * 60};
    // PortOne answers GET /payments/status/cancelled for windows of at most 90 days.
    if (auto v = r.integer("console_check_days", 1, 90))
        c.engine.console_check_days = static_cast<int>(*v);
    if (auto v = r.integer("console_check_payments", 0, 10'000))
        c.engine.console_check_payments = static_cast<int>(*v);
}

void read_metrics(const table_reader& r, config& c) {
    auto& m = c.metrics;
    if (auto v = r.boolean("allow_non_loopback")) m.allow_non_loopback = *v;
    if (auto v = r.string("listen"); v && !v->empty()) {
        if (auto problem = parse_metrics_listen(*v, m)) r.fail("listen", *problem);
    }
}

void read_retry(const table_reader& r, config& c) {
    auto& t = c.engine.transient;
    if (auto v = r.integer("transient_base_seconds", 1, day)) t.base = secs(*v);
    if (auto v = r.integer("transient_cap_seconds", 1, day)) t.cap = secs(*v);
    if (t.cap < t.base)
        r.fail("transient_cap_seconds", "must not be less than transient_base_seconds");
    if (auto v = r.integer("transient_max_tries", 1, 1000)) t.max_tries = static_cast<int>(*v);
    if (auto v = r.integer("transient_pass_delay_seconds", 1, 7 * day)) t.pass_delay = secs(*v);

    auto& u = c.engine.unknown;
    if (auto v = r.integer("unknown_give_up_seconds", 60, 30 * day)) u.give_up_after = secs(*v);
    if (auto v = r.integers("unknown_delays_seconds", 1, 30 * day)) {
        u.first_delays.clear();
        for (auto d : *v) u.first_delays.push_back(secs(d));
    }
    if (auto v = r.integer("unknown_then_every_seconds", 1, 30 * day)) u.then_every = secs(*v);
    if (auto v = r.integer("in_progress_margin_seconds", 0, day)) c.in_progress_margin = secs(*v);

    auto& e = c.engine;
    if (auto v = r.integer("max_refusals", 1, 100)) e.max_refusals = *v;
    if (auto v = r.integer("refusal_base_seconds", 1, day)) e.refusal_base_delay = secs(*v);
    if (auto v = r.integer("refusal_max_seconds", 1, 7 * day)) e.refusal_max_delay = secs(*v);
    if (e.refusal_max_delay < e.refusal_base_delay)
        r.fail("refusal_max_seconds", "must not be less than refusal_base_seconds");

    auto& d = c.engine.dunning;
    if (auto v = r.integers("dunning_days", 1, 366)) {
        if (std::adjacent_find(v->begin(), v->end(), std::greater_equal<>{}) != v->end()) {
            r.fail("dunning_days", "must be strictly increasing (days after the first decline)");
        }
        d.retry_after.clear();
        for (auto days : *v) d.retry_after.push_back(std::chrono::days{days});
    }
    if (auto v = r.string("dunning_exhausted")) {
        if (*v == "unpaid") {
            d.when_exhausted = domain::dunning_exhausted_action::mark_unpaid;
        } else if (*v == "cancel") {
            d.when_exhausted = domain::dunning_exhausted_action::cancel;
        } else {
            r.fail("dunning_exhausted",
                   fmt::format("'{}' is neither \"unpaid\" nor \"cancel\"", *v));
        }
    }
}

void read_guardrails(const table_reader& r, config& c) {
    constexpr auto max = std::numeric_limits<std::int64_t>::max();
    if (auto v = r.integer("max_amount_per_charge", 0, max)) c.engine.max_amount_per_charge = *v;
    if (auto v = r.integer("max_charges_per_pass", 0, max)) c.engine.max_charges_per_pass = *v;
    if (auto v = r.integer("max_charges_per_hour", 0, max)) c.engine.max_charges_per_hour = *v;
}

void read_breaker(const table_reader& r, config& c) {
    auto& e = c.engine;
    if (auto v = r.integer("window", 1, 10000)) e.breaker_window = static_cast<std::size_t>(*v);
    if (auto v = r.integer("min_calls", 1, 10000))
        e.breaker_min_calls = static_cast<std::size_t>(*v);
    if (auto v = r.integer("failure_percent", 1, 100))
        e.breaker_failure_ratio = static_cast<double>(*v) / 100.0;
    if (auto v = r.integer("open_seconds", 1, 86400)) e.breaker_open_for = std::chrono::seconds{*v};
    if (auto v = r.integer("halt_probe_seconds", 1, 86400))
        e.halt_probe_after = std::chrono::seconds{*v};
    if (e.breaker_min_calls > e.breaker_window) r.fail("min_calls", "must not exceed window");
}

void read_log(const table_reader& r, config& c) {
    if (auto v = r.string("level")) {
        static constexpr std::string_view levels[] = {"trace", "debug",    "info", "warn",
                                                      "error", "critical", "off"};
        if (std::find(std::begin(levels), std::end(levels), *v) == std::end(levels)) {
            r.fail("level", fmt::format("'{}' is not one of trace, debug, info, warn, error, "
                                        "critical, off",
                                        *v));
        }
        c.log_level = *v;
    }
}

void read_events(const table_reader& r, events_config& e) {
    if (auto v = r.string("webhook_url"); v && !v->empty()) {
        if (auto problem = gateway::validate_base_url(*v)) {
            std::string text = *problem;
            for (auto at = text.find("base_url"); at != std::string::npos;
                 at = text.find("base_url", at + 11))
                text.replace(at, 8, "webhook_url");
            r.fail("webhook_url", text);
        }
        e.webhook_url = *v;
    }
    if (const auto* node = r.node("exec"); node) {
        const auto* array = node->as_array();
        if (!array) r.fail("exec", "must be an array of strings: [\"/path/to/program\", \"arg\"]");
        std::vector<std::string> argv;
        for (const auto& element : *array) {
            const auto* value = element.as_string();
            if (!value) r.fail("exec", "must be an array of strings");
            argv.push_back(value->get());
        }
        if (!argv.empty()) {
            if (auto problem = outbox::validate_exec_command(argv)) r.fail("exec", *problem);
        }
        e.exec_command = std::move(argv);
    }
    if (auto v = r.integer("max_in_flight", 1, 256)) e.max_in_flight = static_cast<std::size_t>(*v);
    if (auto v = r.integer("connect_timeout_ms", 1, max_timeout_ms))
        e.connect_timeout = std::chrono::milliseconds{*v};
    if (auto v = r.integer("webhook_timeout_ms", 1, max_timeout_ms))
        e.webhook_timeout = std::chrono::milliseconds{*v};
    if (auto v = r.integer("exec_timeout_ms", 1, max_timeout_ms))
        e.exec_timeout = std::chrono::milliseconds{*v};
    if (auto v = r.string("ca_file")) {
        if (!v->empty() && !std::ifstream(*v).good())
            r.fail("ca_file", fmt::format("cannot read '{}'", *v));
        e.ca_file = *v;
    }
    if (auto v = r.integer("retry_base_seconds", 1, day)) e.retry.base = secs(*v);
    if (auto v = r.integer("retry_max_seconds", 1, 7 * day)) e.retry.cap = secs(*v);
    if (e.retry.cap < e.retry.base)
        r.fail("retry_max_seconds", "must not be less than retry_base_seconds");
    if (auto v = r.integer("retry_horizon_seconds", 1, 30 * day)) e.retry.horizon = secs(*v);
    if (auto v = r.integer("notice_days_day", 0, 366)) e.notice_days.day = static_cast<int>(*v);
    if (auto v = r.integer("notice_days_week", 0, 366)) e.notice_days.week = static_cast<int>(*v);
    if (auto v = r.integer("notice_days_month", 0, 366)) e.notice_days.month = static_cast<int>(*v);
    if (auto v = r.integer("notice_days_year", 0, 366)) e.notice_days.year = static_cast<int>(*v);
}

void read_api(const table_reader& r, api_config& a) {
    if (auto v = r.string("listen")) a.listen = *v;
    if (auto v = r.boolean("allow_plaintext")) a.allow_plaintext = *v;
    if (auto v = r.string("tls_cert")) a.tls_cert = *v;
    if (auto v = r.string("tls_key")) a.tls_key = *v;
    for (auto [key, path] : {std::pair{"tls_cert", &a.tls_cert}, std::pair{"tls_key", &a.tls_key}})
        if (!path->empty() && !std::ifstream(*path).good())
            r.fail(key, fmt::format("cannot read '{}'", *path));
    if (a.tls_cert.empty() != a.tls_key.empty())
        r.fail(a.tls_cert.empty() ? "tls_key" : "tls_cert",
               "tls_cert and tls_key go together (a certificate chain and its private key)");
    if (auto v = r.integer("max_connections", 1, 10'000))
        a.max_connections = static_cast<std::size_t>(*v);
    if (auto v = r.integer("max_body_bytes", 1024, std::int64_t{1} << 20))
        a.max_body_bytes = static_cast<std::size_t>(*v);
    if (auto v = r.integer("request_timeout_ms", 100, max_timeout_ms))
        a.request_timeout = std::chrono::milliseconds{*v};
    if (auto v = r.integer("idle_timeout_ms", 100, max_timeout_ms))
        a.idle_timeout = std::chrono::milliseconds{*v};
    if (auto v = r.integer("max_batch", 1, 10'000)) a.max_batch = static_cast<std::size_t>(*v);
    if (auto v = r.integer("write_share_percent", 1, 100))
        a.write_share_percent = static_cast<int>(*v);
    if (auto v = r.integer("idempotency_hours", 1, 24 * 30))
        a.idempotency_ttl = std::chrono::hours{*v};
    if (a.listen.empty()) return;
    metrics_config where;
    where.allow_non_loopback = true;  // the API's rule is TLS, below
    // A unix socket: "unix:/run/billingd/api.sock" or just the absolute path.
    const std::string listen = a.listen.front() == '/' ? "unix:" + a.listen : a.listen;
    if (listen.rfind("unix:", 0) == 0 && (listen.size() == 5 || listen[5] != '/'))
        r.fail("listen", "a unix socket needs an absolute path: /run/billingd/api.sock");
    if (auto problem = parse_metrics_listen(listen, where)) r.fail("listen", *problem);
    a.address = where.address;
    a.port = where.port;
    a.unix_path = where.unix_path;
    a.loopback = !where.unix_path.empty() || is_loopback(where.address);
    if (!a.loopback && a.tls_cert.empty() && !a.allow_plaintext)
        r.fail("listen",
               fmt::format("'{}' is not a loopback address: bearer tokens and customers' data "
                           "would cross the network in clear text. Set tls_cert and tls_key, "
                           "listen on 127.0.0.1 or a unix socket behind a TLS-terminating "
                           "reverse proxy, or set allow_plaintext = true if TLS ends in front "
                           "of billingd on a network you trust",
                           a.listen));
}

config from_table(const toml::table& root, const std::string& source) {
    refuse_secrets(root, "", source);
    config c;
    c.source = source;
    const table_reader top(
        root, "", source,
        {"database", "portone", "billing", "retry", "guardrails", "breaker", "log", "metrics",
         "events", "refunds", "api"});
    if (auto v = top.string("database")) {
        if (v->empty()) top.fail("database", "must not be empty");
        c.database = *v;
    }
    const toml::table empty;
    auto section = [&](std::string_view name, std::initializer_list<std::string_view> keys) {
        const toml::table* t = top.table(name);
        return table_reader(t ? *t : empty, std::string(name), source, keys);
    };
    read_portone(section("portone", {"base_url", "connect_timeout_ms", "charge_timeout_ms",
                                     "lookup_timeout_ms", "max_response_bytes", "max_in_flight",
                                     "max_requests_per_second", "ca_file"}),
                 c.portone);
    read_billing(section("billing",
                         {"time_zone", "charge_time", "merchant_uid_prefix", "max_catch_up_periods",
                          "quiet_hours", "batch_size", "reporting_time_zone", "require_consent",
                          "consent_timeout_days", "consent_timeout_action"}),
                 c);
    read_refunds(section("refunds", {"lookup_delay_seconds", "console_check_minutes",
                                     "console_check_days", "console_check_payments"}),
                 c);
    read_retry(
        section("retry", {"transient_base_seconds", "transient_cap_seconds", "transient_max_tries",
                          "transient_pass_delay_seconds", "unknown_delays_seconds",
                          "unknown_then_every_seconds", "unknown_give_up_seconds",
                          "in_progress_margin_seconds", "max_refusals", "refusal_base_seconds",
                          "refusal_max_seconds", "dunning_days", "dunning_exhausted"}),
        c);
    read_guardrails(section("guardrails", {"max_amount_per_charge", "max_charges_per_pass",
                                           "max_charges_per_hour"}),
                    c);
    read_breaker(section("breaker", {"window", "min_calls", "failure_percent", "open_seconds",
                                     "halt_probe_seconds"}),
                 c);
    read_log(section("log", {"level"}), c);
    read_metrics(section("metrics", {"listen", "allow_non_loopback"}), c);
    if (c.reporting_time_zone.empty()) c.reporting_time_zone = c.time_zone;
    read_events(section("events", {"webhook_url", "exec", "max_in_flight", "connect_timeout_ms",
                                   "webhook_timeout_ms", "exec_timeout_ms", "ca_file",
                                   "retry_base_seconds", "retry_max_seconds",
                                   "retry_horizon_seconds", "notice_days_day", "notice_days_week",
                                   "notice_days_month", "notice_days_year"}),
                c.events);
    read_api(section("api", {"listen", "tls_cert", "tls_key", "allow_plaintext", "max_connections",
                             "max_body_bytes", "request_timeout_ms", "idle_timeout_ms", "max_batch",
                             "write_share_percent", "idempotency_hours"}),
             c.api);

    c.engine.max_in_flight = c.portone.max_in_flight;
    c.engine.in_progress_floor = trust_floor(c);
    c.engine.quiet_zone = calendar::find_zone(c.time_zone);
    return c;
}

}  // namespace

std::optional<std::string> parse_metrics_listen(std::string_view listen, metrics_config& out) {
    out.listen = std::string(listen);
    out.address.clear();
    out.unix_path.clear();
    out.port = 0;
    if (listen.rfind("unix:", 0) == 0) {
        const auto path = listen.substr(5);
        if (path.empty() || path.front() != '/')
            return "a unix socket needs an absolute path: unix:/run/billingd/metrics.sock";
        if (path.size() > 100) return "the unix socket path is too long (at most 100 bytes)";
        out.unix_path = std::string(path);
        return std::nullopt;
    }
    const auto colon = listen.rfind(':');
    if (colon == std::string_view::npos)
        return fmt::format("'{}' is not ADDRESS:PORT (e.g. 127.0.0.1:9464) or unix:/PATH", listen);
    std::string host(listen.substr(0, colon));
    const auto port_text = listen.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    if (host == "localhost") host = "127.0.0.1";
    int port = 0;
    if (port_text.empty() || port_text.size() > 5 ||
        port_text.find_first_not_of("0123456789") != std::string_view::npos ||
        (port = std::stoi(std::string(port_text))) < 1 || port > 65535)
        return fmt::format("'{}': the port must be 1 to 65535", listen);
    unsigned char buffer[16];
    bool loopback = false;
    if (inet_pton(AF_INET, host.c_str(), buffer) == 1) {
        loopback = buffer[0] == 127;
    } else if (inet_pton(AF_INET6, host.c_str(), buffer) == 1) {
        static const unsigned char v6_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0,
                                                      0, 0, 0, 0, 0, 0, 0, 1};
        loopback = std::equal(buffer, buffer + 16, v6_loopback);
    } else {
        return fmt::format(
            "'{}': the address must be an IP literal (127.0.0.1, [::1]) or localhost", listen);
    }
    if (!loopback && !out.allow_non_loopback)
        return fmt::format(
            "'{}' is not a loopback address: metrics tell whoever connects how much "
            "money is in doubt; use 127.0.0.1, [::1] or a unix socket, or set "
            "allow_non_loopback = true in [metrics] to expose them",
            listen);
    out.address = host;
    out.port = static_cast<unsigned short>(port);
    return std::nullopt;
}

std::chrono::seconds trust_floor(const config& c) {
    using std::chrono::duration_cast;
    using std::chrono::seconds;
    const auto& p = c.portone;
    // Measured from the write-ahead commit; the bytes may leave later. Worst case before the
    // last request for a merchant_uid leaves: its turn at the pacer (every slot ahead of it),
    // a getToken, the first send answered 401 only at its timeout, a second getToken, and the
    // resend. That request may then be processed until our read timeout or PortOne's own 60 s
    // for payment calls (PORTONE_V1.md), whichever is longer: a disconnect does not cancel it.
    // (A day at most: a pace of a request a day is already no pace at all, and the quotient
    // of a tiny pace would overflow the cast.)
    const auto pacing =
        p.max_requests_per_second > 0
            ? seconds{static_cast<std::int64_t>(
                          std::min(static_cast<double>(p.max_in_flight) / p.max_requests_per_second,
                                   86400.0)) +
                      1}
            : seconds{0};
    const auto token = duration_cast<seconds>(p.connect_timeout + p.lookup_timeout);
    const auto first_send = duration_cast<seconds>(p.connect_timeout + p.charge_timeout);
    const auto last_send = duration_cast<seconds>(
        p.connect_timeout + std::max<std::chrono::milliseconds>(p.charge_timeout, seconds{60}));
    return pacing + 2 * token + first_send + last_send + seconds{2} + c.in_progress_margin;
}

namespace {

std::string parse_failure(const toml::parse_error& e, const std::string& source) {
    return fmt::format("{}: {}", position(source, e.source()), e.description());
}

}  // namespace

environment process_environment() {
    return [](std::string_view name) -> std::optional<std::string> {
        const char* value = std::getenv(std::string(name).c_str());
        if (!value) return std::nullopt;
        return std::string(value);
    };
}

config parse_config_file(const std::string& path) {
    if (!std::ifstream(path).good()) {
        throw config_error(fmt::format("{}: cannot open the configuration file", path));
    }
    try {
        return from_table(toml::parse_file(path), path);
    } catch (const toml::parse_error& e) {
        throw config_error(parse_failure(e, path));
    }
}

config parse_config_text(std::string_view text, const std::string& source) {
    try {
        return from_table(toml::parse(text, source), source);
    } catch (const toml::parse_error& e) {
        throw config_error(parse_failure(e, source));
    }
}

void load_credentials(config& c, const environment& env) {
    c.portone.imp_key =
        read_secret("PortOne API key (imp_key)", imp_key_credential, imp_key_env, env);
    c.portone.imp_secret =
        read_secret("PortOne API secret (imp_secret)", imp_secret_credential, imp_secret_env, env);
    c.api.tokens.clear();
    if (c.api.enabled()) c.api.tokens = load_api_tokens(env);
    c.events.webhook_keys.clear();
    if (c.events.webhook_url.empty()) return;
    const auto add_key = [&](std::string_view what, const std::string& secret) {
        auto key = outbox::parse_secret(secret);
        if (!outbox::is_key(key))
            throw config_error(fmt::format("{}: {}", what, std::get<1>(key)));
        c.events.webhook_keys.push_back(std::get<0>(std::move(key)));
    };
    add_key("webhook signing secret (webhook_secret)",
            read_secret("webhook signing secret (webhook_secret)", webhook_secret_credential,
                        webhook_secret_env, env));
    if (auto previous = read_optional_secret("previous webhook signing secret "
                                             "(webhook_secret_previous)",
                                             webhook_previous_credential, webhook_previous_env,
                                             env))
        add_key("previous webhook signing secret (webhook_secret_previous)", *previous);
}

config load_config(const std::string& path, const environment& env) {
    config c = parse_config_file(path);
    load_credentials(c, env);
    return c;
}

}  // namespace billingd::daemon
