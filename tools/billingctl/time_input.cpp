#include "time_input.hpp"

#include <chrono>

#include "calendar/calendar.hpp"

namespace billingd::ctl {
namespace {

bool digits(std::string_view s, std::size_t at, std::size_t n, int& out) {
    if (at + n > s.size()) return false;
    out = 0;
    for (std::size_t i = at; i < at + n; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        out = out * 10 + (s[i] - '0');
    }
    return true;
}

}  // namespace

std::optional<std::int64_t> parse_instant(std::string_view text) {
    // YYYY-MM-DDTHH:MM:SS then [.fraction] then Z | +HH:MM | -HH:MM
    int y, mo, d, h, mi, se;
    if (text.size() >= 20 && digits(text, 0, 4, y) && text[4] == '-' && digits(text, 5, 2, mo) &&
        text[7] == '-' && digits(text, 8, 2, d) &&
        (text[10] == 'T' || text[10] == 't' || text[10] == ' ') && digits(text, 11, 2, h) &&
        text[13] == ':' && digits(text, 14, 2, mi) && text[16] == ':' && digits(text, 17, 2, se)) {
        std::size_t i = 19;
        if (i < text.size() && text[i] == '.') {
            ++i;
            const std::size_t start = i;
            while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
            if (i == start) return std::nullopt;
        }
        if (i >= text.size()) return std::nullopt;
        int offset = 0;
        if (text[i] == 'Z' || text[i] == 'z') {
            ++i;
        } else if (text[i] == '+' || text[i] == '-') {
            int oh, om;
            if (!digits(text, i + 1, 2, oh) || i + 3 >= text.size() || text[i + 3] != ':' ||
                !digits(text, i + 4, 2, om) || oh > 23 || om > 59)
                return std::nullopt;
            offset = (oh * 3600 + om * 60) * (text[i] == '-' ? -1 : 1);
            i += 6;
        } else {
            return std::nullopt;
        }
        if (i != text.size()) return std::nullopt;
        using namespace std::chrono;
        const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)},
                                 day{static_cast<unsigned>(d)}};
        if (!ymd.ok() || y < 1 || h > 23 || mi > 59 || se > 60) return std::nullopt;
        const auto t = sys_days{ymd} + hours{h} + minutes{mi} + seconds{std::min(se, 59)};
        return t.time_since_epoch().count() - offset;
    }
    if (const auto utc = calendar::parse_utc(text)) return utc->time_since_epoch().count();
    return std::nullopt;
}

}  // namespace billingd::ctl
