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
#include "operations/queries.hpp"

namespace billingd::ctl {

inline constexpr std::int64_t max_page = 1'000'000;
inline constexpr std::int64_t default_page = 1000;

// The operations' page (limit 1000 unless --limit says otherwise).
using page = operations::page;
static_assert(page{}.limit == default_page);

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

// Ids of one page of a query (operations/queries.hpp).
using operations::page_of_ids;

}  // namespace billingd::ctl
