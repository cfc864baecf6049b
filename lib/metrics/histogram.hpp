// A Prometheus histogram with fixed upper bounds (seconds), cumulative when rendered.
// No clock: callers observe durations they measured. Thread safety: none (one thread).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "metrics/exposition.hpp"

namespace billingd::metrics {

class histogram {
  public:
    explicit histogram(std::vector<double> upper_bounds);
    void observe(double value);
    std::uint64_t count() const { return count_; }
    double sum() const { return sum_; }
    // name_bucket{...,le="..."}, name_sum, name_count with `labels` first. The family header
    // is the caller's (several label sets share one family).
    void render(exposition& out, std::string_view name, const label_set& labels) const;

  private:
    std::vector<double> bounds_;
    std::vector<std::uint64_t> counts_;  // per bucket, not cumulative
    std::uint64_t count_ = 0;
    double sum_ = 0;
};

// PortOne round trips: tens of milliseconds to PortOne's own 60 s.
std::vector<double> request_latency_buckets();
// SQLite commits (synchronous=FULL: an fsync each): sub-millisecond to seconds under a lock.
std::vector<double> commit_latency_buckets();

}  // namespace billingd::metrics
