// Deterministic fault injection for the simulator.
//
// A fault spec reads `ENDPOINT:KIND:PROBABILITY[:COUNT]`, e.g. `charge:http503_before:0.1`,
// `charge:latency_ms=20-80:1.0` or `token:token_expire_early:1.0:1`. ENDPOINT is one of
// token, charge, find, findAll, payment, customer or `*` (every PortOne endpoint).
//
// Determinism: every endpoint draws from its own random stream seeded from (seed, endpoint),
// and every request to an endpoint draws once per applicable fault, in list order, whether or
// not an earlier fault fired. So the same seed and the same sequence of requests per endpoint
// give the same faults, independent of how requests to other endpoints interleave.
// Latency faults add up; of the other kinds, the first one that fires wins (only that one
// consumes its COUNT). Replacing the fault set restarts the streams from the seed.
//
// Errors: parse_fault throws std::invalid_argument with a readable message.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "random.hpp"

namespace portone_sim {

// New endpoints go last: a stream is seeded from its endpoint's name, so adding one leaves the
// others' fault sequences as they were.
enum class endpoint { token, charge, find, find_all, payment, customer, cancel, status };
inline constexpr std::size_t endpoint_count = 8;
std::string_view to_string(endpoint e);
std::optional<endpoint> endpoint_from_string(std::string_view name);

enum class fault_kind {
    latency,             // delay the answer (async timer)
    http500_before,      // answer 500 without touching state
    http502_before,      // answer 502 without touching state
    http503_before,      // answer 503 without touching state
    http429,             // answer 429 without touching state
    pg_failure,          // code -1, PG error message, response null, nothing committed
    http500_after,       // process (commit), then answer 500
    http503_after,       // process (commit), then answer 503
    hang_after,          // process, then never answer
    reset_after,         // process, then reset the TCP connection
    non_json,            // process, then answer an HTML page (200 or 502)
    oversize,            // process, then answer a valid-looking but huge JSON body
    token_expire_early,  // token endpoint: the issued token works for one request only
};
std::string_view to_string(fault_kind k);

// True for kinds that answer before the request is processed (state is not touched).
bool is_before(fault_kind k);

struct fault_spec {
    std::optional<endpoint> target;  // nullopt: every endpoint
    fault_kind kind = fault_kind::latency;
    std::int64_t latency_min_ms = 0;
    std::int64_t latency_max_ms = 0;
    double probability = 0.0;
    std::optional<std::uint64_t> count;  // remaining firings; nullopt = unlimited
    std::uint64_t fired = 0;
    std::string text;  // the spec as given
};

fault_spec parse_fault(std::string_view spec);

// What the fault plan decided for one request.
struct fault_decision {
    std::chrono::milliseconds delay{0};
    std::optional<fault_kind> kind;  // at most one non-latency fault
    std::uint64_t variant = 0;       // extra random bits (e.g. which non_json page)
};

class fault_plan {
  public:
    explicit fault_plan(std::uint64_t seed = 0);

    // Replaces every fault and restarts the random streams from `seed`.
    void replace(std::vector<fault_spec> faults, std::uint64_t seed);
    void replace(std::vector<fault_spec> faults) { replace(std::move(faults), seed_); }

    fault_decision draw(endpoint e);

    const std::vector<fault_spec>& faults() const { return faults_; }
    std::uint64_t seed() const { return seed_; }

  private:
    std::uint64_t seed_;
    std::vector<fault_spec> faults_;
    std::array<random_stream, endpoint_count> streams_;
};

}  // namespace portone_sim
