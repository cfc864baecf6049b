#include "faults.hpp"

#include <charconv>
#include <stdexcept>
#include <utility>

namespace portone_sim {
namespace {

constexpr std::array<std::string_view, endpoint_count> endpoint_names = {
    "token", "charge", "find", "findAll", "payment", "customer", "cancel", "status"};

struct kind_name {
    fault_kind kind;
    std::string_view name;
};
constexpr std::array<kind_name, 13> kind_names = {{
    {fault_kind::latency, "latency_ms"},
    {fault_kind::http500_before, "http500_before"},
    {fault_kind::http502_before, "http502_before"},
    {fault_kind::http503_before, "http503_before"},
    {fault_kind::http429, "http429"},
    {fault_kind::pg_failure, "pg_failure"},
    {fault_kind::http500_after, "http500_after"},
    {fault_kind::http503_after, "http503_after"},
    {fault_kind::hang_after, "hang_after"},
    {fault_kind::reset_after, "reset_after"},
    {fault_kind::non_json, "non_json"},
    {fault_kind::oversize, "oversize"},
    {fault_kind::token_expire_early, "token_expire_early"},
}};

[[noreturn]] void bad(std::string_view spec, std::string_view why) {
    throw std::invalid_argument("invalid fault '" + std::string(spec) + "': " + std::string(why));
}

template <class Int>
bool parse_int(std::string_view s, Int& out) {
    if (s.empty()) return false;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && ptr == s.data() + s.size();
}

bool parse_probability(std::string_view s, double& out) {
    // std::from_chars for double is available in GCC 11+, but keep it locale-independent.
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return !s.empty() && ec == std::errc{} && ptr == s.data() + s.size() && out >= 0.0 &&
           out <= 1.0;
}

std::uint64_t stream_seed(std::uint64_t seed, std::size_t index) {
    return random_stream(seed ^ stable_hash(endpoint_names[index].data())).next();
}

}  // namespace

std::string_view to_string(endpoint e) {
    return endpoint_names[static_cast<std::size_t>(e)];
}

std::optional<endpoint> endpoint_from_string(std::string_view name) {
    for (std::size_t i = 0; i < endpoint_names.size(); ++i)
        if (endpoint_names[i] == name) return static_cast<endpoint>(i);
    return std::nullopt;
}

std::string_view to_string(fault_kind k) {
    for (const auto& kn : kind_names)
        if (kn.kind == k) return kn.name;
    return "?";
}

bool is_before(fault_kind k) {
    return k == fault_kind::http500_before || k == fault_kind::http502_before ||
           k == fault_kind::http503_before || k == fault_kind::http429 ||
           k == fault_kind::pg_failure;
}

fault_spec parse_fault(std::string_view spec) {
    std::vector<std::string_view> parts;
    for (std::size_t start = 0;;) {
        const auto colon = spec.find(':', start);
        parts.push_back(spec.substr(start, colon - start));
        if (colon == std::string_view::npos) break;
        start = colon + 1;
    }
    if (parts.size() < 3 || parts.size() > 4)
        bad(spec, "expected ENDPOINT:KIND:PROBABILITY[:COUNT]");

    fault_spec f;
    f.text = std::string(spec);
    if (parts[0] != "*") {
        f.target = endpoint_from_string(parts[0]);
        if (!f.target)
            bad(spec,
                "unknown endpoint (token, charge, find, findAll, payment, customer, cancel, "
                "status, *)");
    }

    std::string_view kind = parts[1];
    if (kind.starts_with("latency_ms=")) {
        f.kind = fault_kind::latency;
        const auto range = kind.substr(11);
        const auto dash = range.find('-');
        const bool ok = dash == std::string_view::npos
                            ? parse_int(range, f.latency_min_ms)
                            : parse_int(range.substr(0, dash), f.latency_min_ms) &&
                                  parse_int(range.substr(dash + 1), f.latency_max_ms);
        if (dash == std::string_view::npos) f.latency_max_ms = f.latency_min_ms;
        if (!ok || f.latency_min_ms < 0 || f.latency_max_ms < f.latency_min_ms)
            bad(spec, "latency_ms wants N or MIN-MAX milliseconds");
    } else {
        bool found = false;
        for (const auto& kn : kind_names) {
            if (kn.kind != fault_kind::latency && kn.name == kind) {
                f.kind = kn.kind;
                found = true;
            }
        }
        if (!found) bad(spec, "unknown fault kind");
    }

    if (!parse_probability(parts[2], f.probability)) bad(spec, "probability must be in [0, 1]");
    if (parts.size() == 4) {
        std::uint64_t count = 0;
        if (!parse_int(parts[3], count)) bad(spec, "COUNT must be a non-negative integer");
        f.count = count;
    }
    return f;
}

fault_plan::fault_plan(std::uint64_t seed) {
    replace({}, seed);
}

void fault_plan::replace(std::vector<fault_spec> faults, std::uint64_t seed) {
    seed_ = seed;
    faults_ = std::move(faults);
    for (std::size_t i = 0; i < streams_.size(); ++i)
        streams_[i] = random_stream(stream_seed(seed, i));
}

fault_decision fault_plan::draw(endpoint e) {
    auto& stream = streams_[static_cast<std::size_t>(e)];
    fault_decision d;
    for (auto& f : faults_) {
        if (f.target && *f.target != e) continue;
        const double roll = stream.unit();  // always drawn: keeps the sequence stable
        const bool available = !f.count || *f.count > 0;
        if (!available || roll >= f.probability) continue;
        if (f.kind == fault_kind::latency) {
            d.delay +=
                std::chrono::milliseconds(stream.between(f.latency_min_ms, f.latency_max_ms));
        } else if (d.kind) {
            continue;  // an earlier fault already decided the outcome
        } else {
            d.kind = f.kind;
        }
        if (f.count) --*f.count;
        ++f.fired;
    }
    d.variant = stream.next();
    return d;
}

}  // namespace portone_sim
