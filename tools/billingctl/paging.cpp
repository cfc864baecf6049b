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

std::vector<std::int64_t> page_of_ids(storage::connection& db, const std::string& sql,
                                      const std::function<void(storage::statement&)>& bind,
                                      int after_index, const page& p,
                                      std::optional<std::int64_t>& cut) {
    storage::statement st(db, sql);
    if (bind) bind(st);
    st.bind(after_index, p.after).bind(after_index + 1, p.limit + 1);
    std::vector<std::int64_t> ids;
    while (st.step()) ids.push_back(st.int64(0));
    if (static_cast<std::int64_t>(ids.size()) > p.limit) {
        ids.resize(static_cast<std::size_t>(p.limit));
        cut = ids.back();
    }
    return ids;
}

}  // namespace billingd::ctl
