#include "metrics/exposition.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>

namespace billingd::metrics {

std::string format_value(double value) {
    if (std::isnan(value)) return "NaN";
    if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
    if (value == std::floor(value) && std::fabs(value) < 9.007199254740992e15)
        return fmt::format("{}", static_cast<std::int64_t>(value));
    return fmt::format("{}", value);
}

std::string escape_label(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char ch : value) {
        switch (ch) {
            case '\\':
                out += "\\\\";
                break;
            case '"':
                out += "\\\"";
                break;
            case '\n':
                out += "\\n";
                break;
            default:
                out += ch;
        }
    }
    return out;
}

void exposition::family(std::string_view name, std::string_view type, std::string_view help) {
    // HELP text escapes only backslash and newline.
    std::string h;
    for (char ch : help) {
        if (ch == '\\') {
            h += "\\\\";
        } else if (ch == '\n') {
            h += "\\n";
        } else {
            h += ch;
        }
    }
    text_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, h, name, type);
}

void exposition::sample(std::string_view name, const label_set& labels, double value) {
    text_ += name;
    if (!labels.empty()) {
        text_ += '{';
        bool first = true;
        for (const auto& [key, v] : labels) {
            if (!first) text_ += ',';
            first = false;
            text_ += key;
            text_ += "=\"";
            text_ += escape_label(v);
            text_ += '"';
        }
        text_ += '}';
    }
    text_ += ' ';
    text_ += format_value(value);
    text_ += '\n';
}

void exposition::gauge(std::string_view name, std::string_view help, double value) {
    family(name, "gauge", help);
    sample(name, value);
}

}  // namespace billingd::metrics
