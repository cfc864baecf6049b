// Read-only commands: charges, attempts, events, due, parked, in-doubt, info. They never write
// (db_access::read: a database this user may not write is opened read-only); while billingd
// runs they read a consistent WAL snapshot per query.
#include <fmt/format.h>

#include <algorithm>

#include "calendar/calendar.hpp"
#include "commands.hpp"
#include "output.hpp"

namespace billingd::ctl {
namespace {

using domain::charge_state;

struct read_options {
    std::int64_t id = 0;
    std::string as_of;
    int limit = 10000;
};

zone_cache zones_of(context& ctx) {
    return zone_cache{[&ctx](std::int64_t id) -> std::optional<std::string> {
        auto s = ctx.store().find_subscription(id);
        return s ? std::optional<std::string>{s->time_zone} : std::nullopt;
    }};
}

void print_charges(const std::vector<storage::charge_record>& rows, zone_cache& zones) {
    table t{{"ID", "SUB", "PERIOD", "PERIOD START", "STATE", "AMOUNT", "SENT", "MERCHANT_UID",
             "IMP_UID", "NEXT ACTION", "REASON"}};
    for (const auto& c : rows) {
        const auto& z = zones.of(c.subscription_id);
        const auto reason = c.state == charge_state::parked ? c.park_reason : c.fail_reason;
        t.add({std::to_string(c.id), std::to_string(c.subscription_id),
               std::to_string(c.period_index), format_local(c.period_start, z),
               std::string{domain::to_string(c.state)}, format_amount(c.amount, c.currency),
               std::to_string(c.attempt_count), c.merchant_uid, or_dash(c.imp_uid),
               format_local(c.next_action_at, z), or_dash(reason)});
    }
    t.print();
}

void run_charges(context& ctx, const read_options& o) {
    const auto s = ctx.subscription(o.id);
    const auto rows = ctx.store().charges_of_subscription(s.id);
    if (ctx.json()) return print_json(to_json(rows));
    auto zones = zones_of(ctx);
    print_charges(rows, zones);
}

void run_attempts(context& ctx, const read_options& o) {
    const auto c = ctx.charge(o.id);
    const auto rows = ctx.store().attempts_of_charge(c.id);
    if (ctx.json()) return print_json(to_json(rows));
    const auto z = zones_of(ctx).of(c.subscription_id);
    fmt::print("charge {} ({}, {}, {}): {} request(s)\n", c.id, c.merchant_uid,
               format_amount(c.amount, c.currency), domain::to_string(c.state),
               std::count_if(rows.begin(), rows.end(),
                             [](const auto& a) { return a.phase == "request"; }));
    table t{{"ID", "AT", "KIND", "PHASE", "FOR", "#", "HTTP", "CODE", "OUTCOME", "IMP_UID", "MS",
             "SUMMARY / MESSAGE"}};
    for (const auto& a : rows) {
        const bool request = a.phase == "request";
        t.add({std::to_string(a.id), format_local(a.at, z), a.kind, a.phase, or_dash(a.request_id),
               or_dash(a.attempt_number), or_dash(a.http_status), or_dash(a.portone_code),
               or_dash(a.outcome), or_dash(a.imp_uid), or_dash(a.latency_ms),
               request ? or_dash(a.request_summary) : or_dash(a.message)});
    }
    t.print();
}

void run_events(context& ctx, const read_options& o) {
    const auto s = ctx.subscription(o.id);
    const auto rows = ctx.store().events_of_subscription(s.id);
    if (ctx.json()) return print_json(to_json(rows));
    table t{{"ID", "AT", "CHARGE", "KIND", "FROM", "TO", "ACTOR", "DETAIL"}};
    for (const auto& e : rows)
        t.add({std::to_string(e.id), format_local(e.at, s.time_zone), or_dash(e.charge_id), e.kind,
               or_dash(e.from_state), or_dash(e.to_state), e.actor, or_dash(e.detail)});
    t.print();
}

void run_due(context& ctx, const read_options& o) {
    std::int64_t t = ctx.now();
    if (!o.as_of.empty()) {
        const auto parsed = calendar::parse_utc(o.as_of);
        if (!parsed)
            throw failure(exit_code::usage,
                          fmt::format("--as-of: {} is not a UTC time (YYYY-MM-DDTHH:MM:SSZ, "
                                      "'YYYY-MM-DD HH:MM:SS' or YYYY-MM-DD)",
                                      shown(o.as_of)));
        t = to_unix(*parsed);
    }
    const auto subs = ctx.store().due_subscriptions(t, o.limit);
    const auto charges = ctx.store().due_charges(t, o.limit);
    if (ctx.json()) {
        print_json({{"as_of", t}, {"subscriptions", to_json(subs)}, {"charges", to_json(charges)}});
        return;
    }
    fmt::print("due at or before {}\n", calendar::format_utc(from_unix(t)));
    table out{{"WHAT", "SUB", "CHARGE", "CUSTOMER", "AMOUNT", "DETAIL", "DUE (LOCAL)"}};
    for (const auto& s : subs)
        out.add({"subscription", std::to_string(s.id), "-", s.customer_uid,
                 format_amount(s.amount, s.currency), fmt::format("period {}", s.next_period),
                 format_local(s.next_due_at, s.time_zone)});
    auto zones = zones_of(ctx);
    for (const auto& c : charges)
        out.add({"charge", std::to_string(c.subscription_id), std::to_string(c.id), c.customer_uid,
                 format_amount(c.amount, c.currency),
                 fmt::format("{} {}", domain::to_string(c.state), c.merchant_uid),
                 format_local(c.next_action_at, zones.of(c.subscription_id))});
    out.print();
}

std::vector<storage::subscription_record> needing_attention(context& ctx, int limit) {
    storage::statement st(ctx.store().db(),
                          "SELECT id FROM subscriptions WHERE needs_attention IS NOT NULL "
                          "ORDER BY id LIMIT ?1");
    st.bind(1, limit);
    std::vector<std::int64_t> ids;
    while (st.step()) ids.push_back(st.int64(0));
    std::vector<storage::subscription_record> rows;
    for (auto id : ids)
        if (auto s = ctx.store().find_subscription(id)) rows.push_back(*s);
    return rows;
}

void run_parked(context& ctx, const read_options& o) {
    const auto charges = ctx.store().charges_in_state(charge_state::parked, o.limit);
    const auto subs = needing_attention(ctx, o.limit);
    if (ctx.json()) {
        print_json({{"charges", to_json(charges)}, {"subscriptions", to_json(subs)}});
        return;
    }
    auto zones = zones_of(ctx);
    table t{{"WHAT", "CHARGE", "SUB", "MERCHANT_UID", "CUSTOMER", "AMOUNT", "SINCE", "REASON"}};
    for (const auto& c : charges)
        t.add({"charge", std::to_string(c.id), std::to_string(c.subscription_id), c.merchant_uid,
               c.customer_uid, format_amount(c.amount, c.currency),
               format_local(c.updated_at, zones.of(c.subscription_id)), or_dash(c.park_reason)});
    for (const auto& s : subs)
        t.add({"subscription", "-", std::to_string(s.id), "-", s.customer_uid,
               format_amount(s.amount, s.currency), format_local(s.updated_at, s.time_zone),
               or_dash(s.needs_attention)});
    t.print();
}

// The database's identity: what every merchant_uid it makes starts with.
void run_info(context& ctx, const read_options&) {
    auto& store = ctx.store();
    const auto install = store.install();
    const auto id = install.install_id.value_or("");
    if (ctx.json()) {
        print_json({{"database", ctx.database_path()},
                    {"schema_version", store.db().schema_version()},
                    {"install_id", install.install_id ? nlohmann::json(id) : nlohmann::json()},
                    {"created_at", install.created_at},
                    {"live_since",
                     install.live_since ? nlohmann::json(*install.live_since) : nlohmann::json()}});
        return;
    }
    fmt::print("database        {}\n", ctx.database_path());
    fmt::print("schema version  {}\n", store.db().schema_version());
    fmt::print("install id      {}\n", or_dash(install.install_id));
    fmt::print("merchant_uid    {}-<uid_key of the subscription>-p<period>\n", id);
    fmt::print("live since      {}\n", install.live_since
                                           ? calendar::format_utc(from_unix(*install.live_since))
                                           : std::string{"never (only --as-of test runs so far)"});
}

void run_in_doubt(context& ctx, const read_options& o) {
    std::vector<storage::charge_record> rows;
    for (auto state : {charge_state::sending, charge_state::unknown, charge_state::reconciling}) {
        auto part = ctx.store().charges_in_state(state, o.limit);
        rows.insert(rows.end(), part.begin(), part.end());
    }
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    if (ctx.json()) return print_json(to_json(rows));
    auto zones = zones_of(ctx);
    table t{{"CHARGE", "SUB", "MERCHANT_UID", "CUSTOMER", "AMOUNT", "STATE", "SENT", "LOOKUPS",
             "UNKNOWN SINCE", "NEXT LOOKUP"}};
    for (const auto& c : rows) {
        const auto& z = zones.of(c.subscription_id);
        t.add({std::to_string(c.id), std::to_string(c.subscription_id), c.merchant_uid,
               c.customer_uid, format_amount(c.amount, c.currency),
               std::string{domain::to_string(c.state)}, std::to_string(c.attempt_count),
               std::to_string(c.lookup_count), format_local(c.unknown_since, z),
               format_local(c.next_action_at, z)});
    }
    t.print();
}

}  // namespace

void add_read_commands(CLI::App& app, action& selected) {
    auto o = std::make_shared<read_options>();
    auto* charges = app.add_subcommand(
        "charges",
        "List the charges of a subscription, one per billing period: state, amount, how many "
        "times it was sent, merchant_uid (what PortOne knows it by), imp_uid once paid, when "
        "billingd acts on it next and the decline or park reason.");
    add_integer(charges, "SUBSCRIPTION_ID", o->id, 1, max_id, "subscription id (1 to 2^53)")
        ->required();
    charges->footer("Example:\n  billingctl charges 42");
    on_parsed<read_options>(charges, selected, db_access::read, o, run_charges);

    auto* attempts = app.add_subcommand(
        "attempts",
        "Show the journal of one charge: every request billingd sent to PortOne (charge and "
        "lookup) and every answer (HTTP status, PortOne code, outcome, imp_uid, latency, "
        "message). An answer row points at its request in the FOR column; a request without "
        "an answer may have been sent and is reconciled before anything is resent.");
    add_integer(attempts, "CHARGE_ID", o->id, 1, max_id, "charge id (1 to 2^53)")->required();
    attempts->footer("Example:\n  billingctl attempts 117");
    on_parsed<read_options>(attempts, selected, db_access::read, o, run_attempts);

    auto* events = app.add_subcommand(
        "events",
        "Show every event of a subscription, oldest first: status changes, scheduling, charge "
        "transitions and operator actions, with who did it (billingd or the --actor of "
        "billingctl). `events pending|dead|redeliver` steer their delivery to the merchant's "
        "application.");
    auto* events_id =
        add_integer(events, "SUBSCRIPTION_ID", o->id, 1, max_id, "subscription id (1 to 2^53)");
    events->footer(
        "Examples:\n  billingctl events 42\n  billingctl events pending\n  billingctl events "
        "dead\n  billingctl events redeliver 1234\n  billingctl events redeliver --all-dead");
    add_delivery_commands(events, selected);
    // Runs after a delivery subcommand's callback: only `events ID` selects this one.
    events->callback([events, events_id, &selected, o] {
        if (!events->get_subcommands().empty()) return;
        if (events_id->count() == 0)
            throw CLI::RequiredError("SUBSCRIPTION_ID (or pending, dead, redeliver)");
        selected = {db_access::read, [o](context& c) { run_events(c, *o); }};
    });

    auto* due = app.add_subcommand(
        "due",
        "Show what billingd would act on at a time (default now): subscriptions whose next "
        "period is due (next_due_at <= t) and charges whose next action (send, resend, "
        "lookup) is due (next_action_at <= t).");
    due->add_option("--as-of", o->as_of,
                    "UTC time: YYYY-MM-DDTHH:MM:SSZ, 'YYYY-MM-DD HH:MM:SS' or YYYY-MM-DD");
    due->footer("Examples:\n  billingctl due\n  billingctl due --as-of 2024-02-01T00:00:00Z");
    on_parsed<read_options>(due, selected, db_access::read, o, run_due);

    auto* parked = app.add_subcommand(
        "parked",
        "Show what waits for an operator: parked charges (amount anomaly, unregistered "
        "customer_uid, reconciliation that never settled, guardrail) with the reason, and "
        "subscriptions billingd cannot schedule (needs_attention). Resolve charges with "
        "`billingctl charge retry` or `billingctl charge resolve`.");
    parked->footer("Example:\n  billingctl parked");
    on_parsed<read_options>(parked, selected, db_access::read, o, run_parked);

    auto* in_doubt = app.add_subcommand(
        "in-doubt",
        "Show charges whose money may have moved (sending, unknown, reconciling). billingd "
        "looks each one up at PortOne before anything is sent again; the NEXT LOOKUP column "
        "says when.");
    in_doubt->footer("Example:\n  billingctl in-doubt");
    on_parsed<read_options>(in_doubt, selected, db_access::read, o, run_in_doubt);

    auto* info = app.add_subcommand(
        "info",
        "Show the database's identity: its install id (the first part of every merchant_uid "
        "it makes: <install id>-<uid_key>-p<period>, so two databases on one PortOne account "
        "never share one), schema version, and since when billingd runs it on the real clock "
        "(a database that ever did refuses `billingd --once --as-of`). A configuration whose "
        "[billing] merchant_uid_prefix differs from the install id is refused (exit 78): it "
        "belongs to another database.");
    info->footer("Example:\n  billingctl info");
    on_parsed<read_options>(info, selected, db_access::read, o, run_info);
}

}  // namespace billingd::ctl
