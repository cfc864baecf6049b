#include "paging.hpp"

#include <fmt/format.h>

namespace billingd::ctl {

void add_paging(CLI::App* sub, page& p, const std::string& what) {
    add_integer(sub, "--limit", p.limit, 1, max_page,
                fmt::format("show at most this many {} (1-{}); a cut list says so on stderr", what,
                            max_page))
        ->default_str(std::to_string(p.limit));
    add_integer(sub, "--after", p.after, 0, max_id,
                fmt::format("show only {} with a larger id (the next page of a cut list)", what));
}

}  // namespace billingd::ctl
