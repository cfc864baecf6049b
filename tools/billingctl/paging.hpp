// Pagination shared by every billingctl list: --limit N (1..1,000,000, default 1000) and
// --after ID (rows with a larger id, in id order). A list that was cut says so on stderr with
// the --after value that continues it (note_cut in output.hpp); --json objects also carry it
// as "next_after".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "commands.hpp"

namespace billingd::ctl {

inline constexpr std::int64_t max_page = 1'000'000;
inline constexpr std::int64_t default_page = 1000;

struct page {
    std::int64_t limit = default_page;
    std::int64_t after = 0;
};

// Adds --limit and --after to `sub`, bound to `p`.
void add_paging(CLI::App* sub, page& p, const std::string& what);

// Rows of `all` (sorted by id) with id > p.after, at most p.limit; `cut` is set when more
// follow, to the last id shown.
template <typename Row>
std::vector<Row> slice(const std::vector<Row>& all, const page& p,
                       std::optional<std::int64_t>& cut) {
    std::vector<Row> out;
    for (const auto& r : all) {
        if (r.id <= p.after) continue;
        if (static_cast<std::int64_t>(out.size()) == p.limit) {
            cut = out.back().id;
            break;
        }
        out.push_back(r);
    }
    return out;
}

// Ids from `sql` whose parameters ?1.. are bound by `bind`, and whose last two parameters are
// the --after id and the limit + 1 (to tell whether more follow).
std::vector<std::int64_t> page_of_ids(storage::connection& db, const std::string& sql,
                                      const std::function<void(storage::statement&)>& bind,
                                      int after_index, const page& p,
                                      std::optional<std::int64_t>& cut);

}  // namespace billingd::ctl
