// What needs an operator, read from the database, and the --once summary table.
// Errors: storage::error from the queries (infrastructure).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string_view>

#include "scheduler/engine.hpp"
#include "storage/store.hpp"

namespace billingd::daemon {

struct attention_report {
    std::int64_t in_doubt = 0;  // charges in sending, unknown or reconciling
    std::int64_t in_doubt_amount = 0;
    std::int64_t parked = 0;
    std::int64_t parked_amount = 0;
    std::int64_t subscriptions_needing_attention = 0;

    bool any() const { return in_doubt > 0 || parked > 0 || subscriptions_needing_attention > 0; }
};

attention_report read_attention(storage::store& store);

// The human summary of a --once run (this run's counts, then the database's totals).
void print_summary(std::FILE* out, std::string_view as_of, const scheduler::pass_summary& run,
                   const attention_report& now, bool needs_attention);

}  // namespace billingd::daemon
