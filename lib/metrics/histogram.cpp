#include "metrics/histogram.hpp"

#include <algorithm>
#include <cassert>
#include <string>

namespace billingd::metrics {

histogram::histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {
    assert(std::is_sorted(bounds_.begin(), bounds_.end()));
}

void histogram::observe(double value) {
    const auto at = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
    ++counts_[static_cast<std::size_t>(at)];
    ++count_;
    sum_ += value;
}

void histogram::render(exposition& out, std::string_view name, const label_set& labels) const {
    const std::string base{name};
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
        cumulative += counts_[i];
        label_set l = labels;
        l.emplace_back("le", i < bounds_.size() ? format_value(bounds_[i]) : "+Inf");
        out.sample(base + "_bucket", l, static_cast<double>(cumulative));
    }
    out.sample(base + "_sum", labels, sum_);
    out.sample(base + "_count", labels, static_cast<double>(count_));
}

std::vector<double> request_latency_buckets() {
    return {0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

std::vector<double> commit_latency_buckets() {
    return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};
}

}  // namespace billingd::metrics
