// Read-only commands: charges, attempts, events, due, parked, in-doubt, info. They never write
// (db_access::read: a database this user may not write is opened read-only); while billingd
// runs they read a consistent WAL snapshot per query.
#include <fmt/format.h>

#include <algorithm>

#include "calendar/calendar.hpp"
#include "commands.hpp"
#include "output.hpp"
#include "paging.hpp"
#include "time_input.hpp"

namespace billingd::ctl {
namespace {

using domain::charge_state;

struct read_options {
    std::int64_t id = 0;
    std::string as_of;
    page paging;
    // The second kind of rows of due (charges) and parked (subscriptions): continue after
    // this id, the first kind being done. -1: not given.
    std::int64_t second_after = -1;
};

// Prints `rows` as JSON (an array) or a table via `print`, and the cut note.
template <typename Row, typename Print>
void emit_list(context& ctx, const std::vector<Row>& rows, std::optional<std::int64_t> cut,
               const read_options& o, std::string_view what, Print print) {
    if (ctx.json()) {
        print_json(to_json(rows));
    } else {
        print(rows);
    }
    if (cut) note_cut(o.paging.limit, *cut, what);
}

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
    std::optional<std::int64_t> cut;
    const auto rows = slice(ctx.store().charges_of_subscription(s.id), o.paging, cut);
    auto zones = zones_of(ctx);
    emit_list(ctx, rows, cut, o, "charges", [&](const auto& r) { print_charges(r, zones); });
}

void run_attempts(context& ctx, const read_options& o) {
    const auto c = ctx.charge(o.id);
    std::optional<std::int64_t> cut;
    const auto rows = slice(ctx.store().attempts_of_charge(c.id), o.paging, cut);
    if (cut) note_cut(o.paging.limit, *cut, "journal rows");
    if (ctx.json()) return print_json(to_json(rows));
    const auto z = zones_of(ctx).of(c.subscription_id);
    if (!csv_output_enabled())
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
    std::optional<std::int64_t> cut;
    const auto rows = slice(ctx.store().events_of_subscription(s.id), o.paging, cut);
    if (cut) note_cut(o.paging.limit, *cut, "events");
    if (ctx.json()) return print_json(to_json(rows));
    table t{{"ID", "AT", "CHARGE", "KIND", "FROM", "TO", "ACTOR", "DETAIL"}};
    for (const auto& e : rows)
        t.add({std::to_string(e.id), format_local(e.at, s.time_zone), or_dash(e.charge_id), e.kind,
               or_dash(e.from_state), or_dash(e.to_state), e.actor, or_dash(e.detail)});
    t.print();
}

constexpr std::string_view due_subscriptions_sql =
    "SELECT id FROM subscriptions WHERE next_due_at IS NOT NULL AND next_due_at <= ?1 "
    "AND needs_attention IS NULL AND (status = 'trialing' OR status = 'active' OR "
    "status = 'past_due') "
    "AND id > ?2 ORDER BY id LIMIT ?3";
constexpr std::string_view due_charges_sql =
    "SELECT id FROM charges WHERE next_action_at IS NOT NULL AND next_action_at <= ?1 "
    "AND id > ?2 ORDER BY id LIMIT ?3";
constexpr std::string_view parked_charges_sql =
    "SELECT id FROM charges WHERE (state = 'sending' OR state = 'unknown' OR state = 'reconciling' OR "
    "state = 'parked') "
    "AND state = 'parked' AND ?1 = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
constexpr std::string_view attention_sql =
    "SELECT id FROM subscriptions WHERE needs_attention IS NOT NULL AND ?1 = ?1 AND id > ?2 "
    "ORDER BY id LIMIT ?3";
constexpr std::string_view in_doubt_sql =
    "SELECT id FROM charges WHERE (state = 'sending' OR state = 'unknown' OR state = 'reconciling' OR "
    "state = 'parked') "
    "AND state <> 'parked' AND id > ?1 ORDER BY id LIMIT ?2";

// A list of two kinds of rows (due: subscriptions then charges; parked: charges then
// subscriptions), both in id order, cut at --limit rows in all. `next` is the option that
// continues it ("--after 42", "--after-charge 7"), empty when nothing follows.
struct two_part_page {
    std::vector<std::int64_t> first, second;
    std::string next;
};

two_part_page page_two(storage::connection& db, std::string_view first_sql,
                       std::string_view second_sql, std::int64_t t, const read_options& o,
                       std::string_view second_flag) {
    two_part_page r;
    auto bind = [t](storage::statement& st) { st.bind(1, t); };
    std::optional<std::int64_t> cut;
    if (o.second_after < 0) {
        r.first = page_of_ids(db, std::string{first_sql}, bind, 2, o.paging, cut);
        if (cut) {
            r.next = fmt::format("--after {}", *cut);
            return r;
        }
    }
    const std::int64_t left = o.paging.limit - static_cast<std::int64_t>(r.first.size());
    if (left == 0) {
        if (!page_of_ids(db, std::string{second_sql}, bind, 2, page{1, 0}, cut).empty())
            r.next = fmt::format("{} 0", second_flag);
        return r;
    }
    r.second = page_of_ids(db, std::string{second_sql}, bind, 2,
                           page{left, std::max<std::int64_t>(o.second_after, 0)}, cut);
    if (cut) r.next = fmt::format("{} {}", second_flag, *cut);
    return r;
}

void note_next(std::string_view next, std::int64_t limit) {
    if (next.empty()) return;
    fmt::print(stderr,
               "billingctl: showing the first {} rows; more follow: add {} for the next page\n",
               limit, next);
}

void run_due(context& ctx, const read_options& o) {
    std::int64_t t = ctx.now();
    if (!o.as_of.empty()) {
        const auto parsed = parse_instant(o.as_of);
        if (!parsed)
            throw failure(exit_code::usage,
                          fmt::format("--as-of: {} is not an RFC 3339 time (e.g. "
                                      "2026-12-01T10:00:00+09:00 or 2026-12-01T01:00:00Z; also "
                                      "'YYYY-MM-DD HH:MM:SS' or YYYY-MM-DD in UTC)",
                                      shown(o.as_of)));
        t = *parsed;
    }
    auto& store = ctx.store();
    const auto ids =
        page_two(store.db(), due_subscriptions_sql, due_charges_sql, t, o, "--after-charge");
    std::vector<storage::subscription_record> subs;
    std::vector<storage::charge_record> charges;
    for (auto id : ids.first)
        if (auto s = store.find_subscription(id)) subs.push_back(*s);
    for (auto id : ids.second)
        if (auto c = store.find_charge(id)) charges.push_back(*c);
    note_next(ids.next, o.paging.limit);
    const std::string cut_key = ids.next;
    if (ctx.json()) {
        print_json({{"as_of", t},
                    {"subscriptions", to_json(subs)},
                    {"charges", to_json(charges)},
                    {"next_after", cut_key.empty() ? nlohmann::json() : nlohmann::json(cut_key)}});
        return;
    }
    if (!csv_output_enabled())
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

void run_parked(context& ctx, const read_options& o) {
    auto& store = ctx.store();
    const auto ids =
        page_two(store.db(), parked_charges_sql, attention_sql, 0, o, "--after-subscription");
    std::vector<storage::charge_record> charges;
    std::vector<storage::subscription_record> subs;
    for (auto id : ids.first)
        if (auto c = store.find_charge(id)) charges.push_back(*c);
    for (auto id : ids.second)
        if (auto s = store.find_subscription(id)) subs.push_back(*s);
    note_next(ids.next, o.paging.limit);
    if (ctx.json()) {
        print_json(
            {{"charges", to_json(charges)},
             {"subscriptions", to_json(subs)},
             {"next_after", ids.next.empty() ? nlohmann::json() : nlohmann::json(ids.next)}});
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
    if (csv_output_enabled()) {
        table t{{"database", "schema_version", "install_id", "created_at", "live_since"}};
        t.add({ctx.database_path(), std::to_string(store.db().schema_version()), id,
               std::to_string(install.created_at), or_dash(install.live_since)});
        t.print();
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
    std::optional<std::int64_t> cut;
    std::vector<storage::charge_record> rows;
    for (auto id :
         page_of_ids(ctx.store().db(), std::string{in_doubt_sql}, nullptr, 1, o.paging, cut))
        if (auto c = ctx.store().find_charge(id)) rows.push_back(*c);
    if (cut) note_cut(o.paging.limit, *cut, "charges in doubt");
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
    add_paging(charges, o->paging, "charges");
    charges->footer("Example:\n  billingctl charges 42");
    on_parsed<read_options>(charges, selected, db_access::read, o, run_charges);

    auto* attempts = app.add_subcommand(
        "attempts",
        "Show the journal of one charge: every request billingd sent to PortOne (charge and "
        "lookup) and every answer (HTTP status, PortOne code, outcome, imp_uid, latency, "
        "message). An answer row points at its request in the FOR column; a request without "
        "an answer may have been sent and is reconciled before anything is resent.");
    add_integer(attempts, "CHARGE_ID", o->id, 1, max_id, "charge id (1 to 2^53)")->required();
    add_paging(attempts, o->paging, "journal rows");
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
    add_paging(events, o->paging, "events");
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
                    "RFC 3339 time with any offset (2026-12-01T10:00:00+09:00, "
                    "2026-12-01T01:00:00Z), or 'YYYY-MM-DD HH:MM:SS' / YYYY-MM-DD in UTC");
    add_paging(due, o->paging, "rows (due subscriptions first, then due charges)");
    add_integer(due, "--after-charge", o->second_after, 0, max_id,
                "the due subscriptions are done: show due charges with a larger id");
    due->footer(
        "Examples:\n  billingctl due\n  billingctl due --as-of 2024-02-01T09:00:00+09:00\n"
        "  billingctl due --limit 100 --after 4242");
    on_parsed<read_options>(due, selected, db_access::read, o, run_due);

    auto* parked = app.add_subcommand(
        "parked",
        "Show what waits for an operator: parked charges (amount anomaly, unregistered "
        "customer_uid, reconciliation that never settled, guardrail) with the reason, and "
        "subscriptions billingd cannot schedule (needs_attention). Resolve charges with "
        "`billingctl charge retry` or `billingctl charge resolve`.");
    add_paging(parked, o->paging, "rows (parked charges first, then subscriptions)");
    add_integer(parked, "--after-subscription", o->second_after, 0, max_id,
                "the parked charges are done: show subscriptions needing attention with a "
                "larger id");
    parked->footer("Example:\n  billingctl parked");
    on_parsed<read_options>(parked, selected, db_access::read, o, run_parked);

    auto* in_doubt = app.add_subcommand(
        "in-doubt",
        "Show charges whose money may have moved (sending, unknown, reconciling). billingd "
        "looks each one up at PortOne before anything is sent again; the NEXT LOOKUP column "
        "says when.");
    add_paging(in_doubt, o->paging, "charges");
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
