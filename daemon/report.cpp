#include "daemon/report.hpp"

#include <fmt/format.h>

#include <string_view>

namespace billingd::daemon {
namespace {

constexpr std::string_view in_doubt_sql =
    "SELECT count(*), coalesce(sum(amount), 0) FROM charges "
    "WHERE state IN ('sending', 'unknown', 'reconciling')";
constexpr std::string_view parked_sql =
    "SELECT count(*), coalesce(sum(amount), 0) FROM charges WHERE state = 'parked'";
constexpr std::string_view attention_sql =
    "SELECT count(*) FROM subscriptions WHERE needs_attention IS NOT NULL";

}  // namespace

attention_report read_attention(storage::store& store) {
    attention_report r;
    storage::statement in_doubt(store.db(), in_doubt_sql);
    if (in_doubt.step()) {
        r.in_doubt = in_doubt.int64(0);
        r.in_doubt_amount = in_doubt.int64(1);
    }
    storage::statement parked(store.db(), parked_sql);
    if (parked.step()) {
        r.parked = parked.int64(0);
        r.parked_amount = parked.int64(1);
    }
    storage::statement attention(store.db(), attention_sql);
    if (attention.step()) r.subscriptions_needing_attention = attention.int64(0);
    return r;
}

void print_summary(std::FILE* out, std::string_view as_of, const scheduler::pass_summary& run,
                   const attention_report& now, bool needs_attention) {
    auto row = [out](std::string_view name, auto value) {
        fmt::print(out, "  {:<34}{:>12}\n", name, value);
    };
    fmt::print(out, "billingd --once as of {}\nthis run\n", as_of);
    row("paid", run.paid);
    row("paid amount", run.paid_amount);
    row("declined", run.declined);
    row("unknown (reconciliation pending)", run.unknown);
    row("transient (will retry)", run.transient);
    row("refused by PortOne (looked up)", run.refused);
    row("parked", run.parked);
    row("skipped (catch-up policy)", run.skipped);
    row("reconciled", run.reconciled);
    row("canceled", run.canceled);
    fmt::print(out, "database now\n");
    row("charges in doubt", now.in_doubt);
    row("amount in doubt", now.in_doubt_amount);
    row("charges parked", now.parked);
    row("amount parked", now.parked_amount);
    row("subscriptions needing attention", now.subscriptions_needing_attention);
    if (run.halted) fmt::print(out, "charging halted: {}\n", run.halt_reason);
    if (run.work_left) fmt::print(out, "due work remains (guardrail or halt)\n");
    fmt::print(out, "{}\n", needs_attention ? "result: needs attention" : "result: ok");
    std::fflush(out);
}

}  // namespace billingd::daemon
