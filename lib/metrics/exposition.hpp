// Prometheus text exposition format (version 0.0.4), written by hand: a family header
// (# HELP, # TYPE) followed by its samples. Label values are escaped (\\, \", \n); numbers are
// written in their shortest exact form, integers without a fraction.
//
// The caller keeps the samples of one family together and names follow Prometheus
// conventions (billingd_ prefix, _total for counters, base units such as _seconds).
// No I/O, no clock; thread safety: none (one writer).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace billingd::metrics {

using label_set = std::vector<std::pair<std::string, std::string>>;

// The media type a scrape answers with.
inline constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

class exposition {
  public:
    // "# HELP name help" and "# TYPE name type" (type: counter, gauge, histogram, ...).
    void family(std::string_view name, std::string_view type, std::string_view help);
    void sample(std::string_view name, const label_set& labels, double value);
    void sample(std::string_view name, double value) { sample(name, {}, value); }

    // A one-sample gauge family.
    void gauge(std::string_view name, std::string_view help, double value);

    const std::string& text() const { return text_; }
    std::string take() { return std::move(text_); }

  private:
    std::string text_;
};

// The value as Prometheus reads it: "3", "0.25", "+Inf", "NaN".
std::string format_value(double value);
// A label value with \\, \" and \n escaped.
std::string escape_label(std::string_view value);

}  // namespace billingd::metrics
