#include "metrics/database_gauges.hpp"

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

namespace billingd::metrics {
namespace {

// subscriptions_due (partial index): billable rows due at ?1.
constexpr std::string_view due_subscriptions_sql =
    "SELECT count(*), min(next_due_at) FROM subscriptions "
    "WHERE next_due_at IS NOT NULL AND next_due_at <= ?1 AND needs_attention IS NULL "
    "AND (status = 'trialing' OR status = 'active' OR status = 'past_due')";
// charges_next_action (partial index): sends, resends and lookups due at ?1.
constexpr std::string_view due_charges_sql =
    "SELECT count(*), min(next_action_at) FROM charges "
    "WHERE next_action_at IS NOT NULL AND next_action_at <= ?1";
// charges_by_state (partial index over sending, unknown, reconciling, parked): SQLite uses a
// partial index only when the query repeats its condition, as it is spelled (schema 4).
constexpr std::string_view in_doubt_sql =
    "SELECT count(*), coalesce(sum(amount), 0), min(coalesce(unknown_since, updated_at)) "
    "FROM charges WHERE (state = 'sending' OR state = 'unknown' OR state = 'reconciling' OR "
    "state = 'parked') "
    "AND state <> 'parked'";
constexpr std::string_view parked_sql =
    "SELECT count(*), coalesce(sum(amount), 0) FROM charges "
    "WHERE (state = 'sending' OR state = 'unknown' OR state = 'reconciling' OR "
    "state = 'parked') AND state = 'parked'";
// subscription_totals (operator_views migration, kept by triggers): a few rows, whatever the fleet size.
constexpr std::string_view by_status_sql =
    "SELECT status, sum(subscriptions) FROM subscription_totals GROUP BY status ORDER BY status";
constexpr std::string_view mrr_sql = "SELECT currency, mrr FROM mrr ORDER BY currency";
// Paid revenue since the database began: the roll-up (a row per day) plus the paid charges
// after it (charges_paid, a day or two of rows). Paid is final, so it only grows.
constexpr std::string_view revenue_sql =
    "SELECT currency, sum(n), sum(a) FROM ("
    "SELECT currency, charges AS n, amount AS a FROM revenue_daily WHERE day < coalesce("
    "(SELECT d.day FROM reporting_days d, reporting_state r WHERE d.starts_at = r.rolled_until), "
    "'0000') "
    "UNION ALL SELECT currency, count(*), sum(amount) FROM charges INDEXED BY charges_paid "
    "WHERE state = 'paid' AND "
    "paid_at >= coalesce((SELECT rolled_until FROM reporting_state), -9223372036854775807) "
    "GROUP BY currency) GROUP BY currency ORDER BY currency";
// subscriptions_needing_attention (partial index, operator_views migration).
constexpr std::string_view attention_sql =
    "SELECT count(*) FROM subscriptions WHERE needs_attention IS NOT NULL";

}  // namespace

database_snapshot read_database(storage::connection& db, std::int64_t now) {
    database_snapshot s;
    std::optional<std::int64_t> oldest;
    auto earlier = [&](std::optional<std::int64_t> t) {
        if (t) oldest = oldest ? std::min(*oldest, *t) : *t;
    };
    {
        storage::statement st(db, due_subscriptions_sql);
        st.bind(1, now);
        st.step();
        s.due_subscriptions = st.int64(0);
        earlier(st.optional_int64(1));
    }
    {
        storage::statement st(db, due_charges_sql);
        st.bind(1, now);
        st.step();
        s.due_charges = st.int64(0);
        earlier(st.optional_int64(1));
    }
    if (oldest) s.oldest_due_age_seconds = std::max<std::int64_t>(0, now - *oldest);
    {
        storage::statement st(db, in_doubt_sql);
        st.step();
        s.in_doubt = st.int64(0);
        s.in_doubt_amount = st.int64(1);
        if (auto since = st.optional_int64(2))
            s.oldest_in_doubt_age_seconds = std::max<std::int64_t>(0, now - *since);
    }
    {
        storage::statement st(db, parked_sql);
        st.step();
        s.parked = st.int64(0);
        s.parked_amount = st.int64(1);
    }
    {
        storage::statement st(db, attention_sql);
        st.step();
        s.needs_attention = st.int64(0);
    }
    return s;
}

void render_database(storage::connection& db, std::int64_t now, exposition& out,
                     std::span<const gauge_provider> providers) {
    const database_snapshot s = read_database(db, now);
    out.family("billingd_due_backlog", "gauge",
               "Work due now and not yet done: subscriptions whose next period is due, charges "
               "whose next send or lookup is due.");
    out.sample("billingd_due_backlog", {{"kind", "subscription"}},
               static_cast<double>(s.due_subscriptions));
    out.sample("billingd_due_backlog", {{"kind", "charge"}}, static_cast<double>(s.due_charges));
    out.gauge("billingd_oldest_due_age_seconds",
              "How long the oldest due subscription or charge has been due (0: nothing due).",
              static_cast<double>(s.oldest_due_age_seconds));
    out.gauge("billingd_charges_in_doubt",
              "Charges whose money may have moved (sending, unknown, reconciling).",
              static_cast<double>(s.in_doubt));
    out.gauge("billingd_charges_in_doubt_amount",
              "Sum of the amounts of charges in doubt (KRW, the currency's minor unit).",
              static_cast<double>(s.in_doubt_amount));
    out.gauge("billingd_oldest_in_doubt_age_seconds",
              "How long the oldest charge in doubt has been in doubt (0: none).",
              static_cast<double>(s.oldest_in_doubt_age_seconds));
    out.gauge("billingd_charges_parked", "Charges parked for an operator.",
              static_cast<double>(s.parked));
    out.gauge("billingd_charges_parked_amount",
              "Sum of the amounts of parked charges (KRW, the currency's minor unit).",
              static_cast<double>(s.parked_amount));
    out.gauge("billingd_subscriptions_needing_attention",
              "Subscriptions billingd cannot schedule until an operator fixes the row.",
              static_cast<double>(s.needs_attention));
    out.family("billingd_subscriptions", "gauge", "Subscriptions by status.");
    {
        storage::statement st(db, by_status_sql);
        while (st.step())
            out.sample("billingd_subscriptions", {{"status", st.text(0)}},
                       static_cast<double>(st.int64(1)));
    }
    out.family("billingd_monthly_recurring_revenue", "gauge",
               "Monthly recurring revenue of active and past_due subscriptions, by currency "
               "(the currency's minor unit; KRW has none).");
    {
        storage::statement st(db, mrr_sql);
        while (st.step())
            out.sample("billingd_monthly_recurring_revenue", {{"currency", st.text(0)}},
                       static_cast<double>(st.int64(1)));
    }
    {
        storage::statement st(db, revenue_sql);
        std::vector<std::tuple<std::string, std::int64_t, std::int64_t>> rows;
        while (st.step()) rows.emplace_back(st.text(0), st.int64(1), st.int64(2));
        out.family("billingd_paid_charges_total", "counter",
                   "Charges paid since the database was created, by currency (from the "
                   "database: survives restarts).");
        for (const auto& [currency, n, amount] : rows)
            out.sample("billingd_paid_charges_total", {{"currency", currency}},
                       static_cast<double>(n));
        out.family("billingd_paid_revenue_total", "counter",
                   "Revenue paid since the database was created, by currency (the currency's "
                   "minor unit; KRW has none). increase() over a day is the day's revenue.");
        for (const auto& [currency, n, amount] : rows)
            out.sample("billingd_paid_revenue_total", {{"currency", currency}},
                       static_cast<double>(amount));
    }
    for (const auto& provider : providers) provider(db, now, out);
}

}  // namespace billingd::metrics
