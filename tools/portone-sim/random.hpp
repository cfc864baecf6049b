// A tiny deterministic random stream (SplitMix64) for the simulator.
//
// The standard distributions are not specified bit-for-bit across library versions, so the
// simulator derives everything it draws from this generator: the same seed gives the same
// sequence on every platform and compiler.
#pragma once

#include <cstdint>

namespace portone_sim {

class random_stream {
  public:
    explicit random_stream(std::uint64_t seed = 0) : state_(seed) {}

    std::uint64_t next() {
        std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }

    // Uniform in [0, 1).
    double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

    // Uniform in [lo, hi] (inclusive); lo <= hi.
    std::int64_t between(std::int64_t lo, std::int64_t hi) {
        const auto span = static_cast<std::uint64_t>(hi - lo) + 1;
        return lo + static_cast<std::int64_t>(span == 0 ? next() : next() % span);
    }

  private:
    std::uint64_t state_;
};

// Stable 64-bit hash (FNV-1a) used to derive per-stream seeds from names.
constexpr std::uint64_t stable_hash(const char* s, std::uint64_t h = 0xCBF29CE484222325ULL) {
    for (; *s != '\0'; ++s) h = (h ^ static_cast<unsigned char>(*s)) * 0x100000001B3ULL;
    return h;
}

}  // namespace portone_sim
