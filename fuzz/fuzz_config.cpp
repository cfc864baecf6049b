// The configuration loader on any TOML text: daemon::parse_config_text.
//
// Input: "<insert_line> <key> <form>\n<TOML text>". The text is parsed as it is, and again
// with a line `<secret key> = <marker secret>` inserted before line insert_line (key and
// form pick the key name and how the value is written).
// Invariants: the result is a config_error or a config whose every value is within the
// documented ranges (and that the retry policies then use without trouble); no other
// exception escapes; no error message ever holds the marker secret, or any 8 bytes of it.
#include <algorithm>
#include <chrono>
#include <exception>
#include <string>
#include <vector>

#include "daemon/config.hpp"
#include "domain/retry_policy.hpp"
#include "fuzz_support.hpp"
#include "gateway/http_client.hpp"

namespace d = billingd::daemon;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

constexpr std::string_view marker = "Sx7Qp2MarkerSecret9vLw";

// `text` is what the fuzzer wrote itself: a piece of the marker it copied into a key name or
// another value may be echoed; only the inserted secret must never be.
void check_no_secret(const std::string& message, std::string_view text) {
    for (std::size_t i = 0; i + 8 <= marker.size(); ++i) {
        const auto piece = marker.substr(i, 8);
        if (billingd::fuzz::contains(text, piece)) continue;
        FUZZ_CHECK(!billingd::fuzz::contains(message, piece),
                   "a secret from the file reached an error message");
    }
}

void check_valid(const d::config& c) {
    const auto& p = c.portone;
    FUZZ_CHECK(!c.database.empty(), "an empty database path");
    FUZZ_CHECK(!billingd::gateway::validate_base_url(p.base_url), "an invalid base_url");
    for (auto timeout : {p.connect_timeout, p.charge_timeout, p.lookup_timeout})
        FUZZ_CHECK(timeout >= milliseconds{1} && timeout <= milliseconds{600'000},
                   "a timeout outside 1 ms..10 min");
    FUZZ_CHECK(p.max_response_bytes >= 4096 && p.max_response_bytes <= (64u << 20),
               "max_response_bytes outside 4096..64 MiB");
    FUZZ_CHECK(p.max_in_flight >= 1 && p.max_in_flight <= 1024, "max_in_flight outside 1..1024");
    FUZZ_CHECK(p.max_requests_per_second >= 0 && p.max_requests_per_second <= 100'000,
               "max_requests_per_second outside 0..100000");
    FUZZ_CHECK(p.imp_key.empty() && p.imp_secret.empty(), "secrets read from the file");

    const auto& e = c.engine;
    FUZZ_CHECK(billingd::calendar::find_zone(c.time_zone) != nullptr, "an unknown time_zone");
    FUZZ_CHECK(e.quiet_zone != nullptr, "no zone for the quiet hours");
    FUZZ_CHECK(c.charge_time.since_midnight >= std::chrono::minutes{0} &&
                   c.charge_time.since_midnight < std::chrono::hours{24},
               "a charge_time outside the day");
    FUZZ_CHECK(e.max_catch_up_periods >= 1 && e.max_catch_up_periods <= 1000,
               "max_catch_up_periods outside 1..1000");
    FUZZ_CHECK(e.batch_size >= 1 && e.batch_size <= 100'000, "batch_size outside 1..100000");
    FUZZ_CHECK(e.max_in_flight == p.max_in_flight, "engine and client max_in_flight differ");
    FUZZ_CHECK(e.transient.base >= seconds{1} && e.transient.cap >= e.transient.base,
               "transient cap below its base");
    FUZZ_CHECK(e.transient.max_tries >= 1, "transient_max_tries below 1");
    FUZZ_CHECK(e.refusal_max_delay >= e.refusal_base_delay && e.refusal_base_delay >= seconds{1},
               "refusal delays out of order");
    FUZZ_CHECK(e.max_refusals >= 1 && e.max_refusals <= 100, "max_refusals outside 1..100");
    FUZZ_CHECK(std::adjacent_find(e.dunning.retry_after.begin(), e.dunning.retry_after.end(),
                                  std::greater_equal<>{}) == e.dunning.retry_after.end(),
               "dunning days not strictly increasing");
    FUZZ_CHECK(e.breaker_min_calls >= 1 && e.breaker_min_calls <= e.breaker_window,
               "breaker min_calls outside 1..window");
    FUZZ_CHECK(e.breaker_failure_ratio > 0 && e.breaker_failure_ratio <= 1,
               "breaker failure ratio outside (0, 1]");
    FUZZ_CHECK(
        e.max_amount_per_charge >= 0 && e.max_charges_per_pass >= 0 && e.max_charges_per_hour >= 0,
        "a negative guardrail");
    static constexpr std::string_view levels[] = {"trace", "debug",    "info", "warn",
                                                  "error", "critical", "off"};
    FUZZ_CHECK(std::find(std::begin(levels), std::end(levels), c.log_level) != std::end(levels),
               "an unknown log level");
    const auto floor = d::trust_floor(c);
    FUZZ_CHECK(floor == e.in_progress_floor, "the engine's trust floor is not trust_floor()");
    // The engine adds the floor to unix times in seconds: it must stay far from overflowing.
    FUZZ_CHECK(floor >= seconds{0} && floor <= seconds{std::int64_t{1000} * 366 * 24 * 3600},
               "a trust floor outside 0..1000 years");

    // The policies as the engine uses them.
    for (int tries = 0; tries <= e.transient.max_tries; ++tries) {
        for (double r : {0.0, 0.5, 0.999999}) {
            if (auto delay = billingd::domain::transient_delay(e.transient, tries, r))
                FUZZ_CHECK(*delay >= seconds{0} && *delay <= e.transient.cap,
                           "a transient delay outside 0..cap");
        }
    }
    for (int lookups = 0; lookups < 8; ++lookups)
        (void)billingd::domain::reconcile_delay(e.unknown, lookups, seconds{lookups * 60});
    for (int declines = 0; declines < 8; ++declines)
        (void)billingd::domain::dunning_offset(e.dunning, declines);
}

// Parses `text`; the config when it is valid, nullopt on config_error. `own` is the text the
// fuzzer wrote (without the inserted secret).
std::optional<d::config> parse(std::string_view text, std::string_view own) {
    try {
        auto c = d::parse_config_text(text, "fuzz.toml");
        return c;
    } catch (const d::config_error& e) {
        FUZZ_CHECK(e.what()[0] != '\0', "a config_error without a message");
        check_no_secret(e.what(), own);
        return std::nullopt;
    } catch (const std::exception& e) {
        FUZZ_CHECK(false, std::string("an exception other than config_error: ") + e.what());
    } catch (...) {
        FUZZ_CHECK(false, "a non-standard exception");
    }
}

std::string with_secret(std::string_view text, std::int64_t line, std::int64_t key,
                        std::int64_t form) {
    static constexpr std::string_view keys[] = {
        "imp_secret",
        "imp_key",
        "secret",
        "api_key",
        "key",
        "portone_imp_secret",
        "IMP_KEY",
        "\"imp_secret\"",
        "portone.imp_secret",
    };
    const std::string value(marker);
    const std::string values[] = {
        "\"" + value + "\"",    "'" + value + "'",           "\"\"\"" + value + "\"\"\"",
        "[\"" + value + "\"]",  "{ v = \"" + value + "\" }", value,
        "\"" + value + "\\q\"",  // an invalid escape right after the secret
        "\"" + value,            // unterminated
    };
    const auto pick = [](std::int64_t v, std::size_t n) {
        return static_cast<std::size_t>(static_cast<std::uint64_t>(v) % n);
    };
    const std::string insert = std::string(keys[pick(key, std::size(keys))]) + " = " +
                               values[pick(form, std::size(values))] + "\n";
    // Before line `line` (counted from 0), or at the end.
    std::size_t at = 0;
    for (std::int64_t i = 0; i < line && at < text.size(); ++i) {
        const auto nl = text.find('\n', at);
        at = nl == std::string_view::npos ? text.size() : nl + 1;
    }
    std::string out(text.substr(0, at));
    if (!out.empty() && out.back() != '\n') out += '\n';
    out += insert;
    out += text.substr(at);
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    billingd::fuzz::text_input in(data, size);
    billingd::fuzz::words header(in.line());
    const auto line = header.number();
    const auto key = header.number();
    const auto form = header.number();
    const std::string_view text = in.rest();

    if (auto c = parse(text, text)) check_valid(*c);
    if (auto c = parse(with_secret(text, line, key, form), text)) check_valid(*c);
    return 0;
}
