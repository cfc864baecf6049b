// `billingctl subscription list|show|pause|resume|cancel`. Every change runs in one
// BEGIN IMMEDIATE transaction that re-reads the row first, so billingd running at the same
// time never sees half of an operator's change, and each change writes an event row.
#include <fmt/format.h>

#include "calendar/calendar.hpp"
#include "commands.hpp"
#include "output.hpp"
#include "paging.hpp"
#include "scheduler/engine.hpp"

namespace billingd::ctl {
namespace {

using domain::charge_state;
using domain::subscription_status;

struct id_options {
    std::int64_t id = 0;
    std::string status;
    bool at_period_end = false;
    page paging;
};

std::string every(const storage::subscription_record& s) {
    return s.interval_count == 1 ? s.interval_unit
                                 : fmt::format("{} {}s", s.interval_count, s.interval_unit);
}

void print_subscriptions(const std::vector<storage::subscription_record>& rows) {
    table t{{"ID", "STATUS", "CUSTOMER", "AMOUNT", "EVERY", "NEXT", "NEXT DUE (LOCAL)", "NAME"}};
    for (const auto& s : rows) {
        std::string status{domain::to_string(s.status)};
        if (s.cancel_at_period_end) status += " (cancels)";
        if (s.needs_attention) status += " (ATTENTION)";
        t.add({std::to_string(s.id), status, s.customer_uid, format_amount(s.amount, s.currency),
               every(s), std::to_string(s.next_period), format_local(s.next_due_at, s.time_zone),
               s.order_name});
    }
    t.print();
}

void run_list(context& ctx, const id_options& o) {
    std::optional<std::string> status;
    if (!o.status.empty()) {
        if (!domain::parse_subscription_status(o.status))
            throw failure(exit_code::data,
                          fmt::format("--status: {} is not one of trialing, active, past_due, "
                                      "unpaid, paused, canceled, ended",
                                      shown(o.status)));
        status = o.status;
    }
    std::optional<std::int64_t> cut;
    std::vector<storage::subscription_record> rows;
    for (auto id : page_of_ids(
             ctx.store().db(),
             "SELECT id FROM subscriptions WHERE (?1 IS NULL OR status = ?1) AND id > ?2 "
             "ORDER BY id LIMIT ?3",
             [&status](storage::statement& st) { st.bind(1, status); }, 2, o.paging, cut))
        if (auto s = ctx.store().find_subscription(id)) rows.push_back(*s);
    if (cut) note_cut(o.paging.limit, *cut, "subscriptions");
    if (ctx.json()) return print_json(to_json(rows));
    print_subscriptions(rows);
}

void run_show(context& ctx, const id_options& o) {
    const auto s = ctx.subscription(o.id);
    const auto charges = ctx.store().charges_of_subscription(s.id);
    auto events = ctx.store().events_of_subscription(s.id);
    constexpr std::size_t recent = 20;
    if (events.size() > recent) events.erase(events.begin(), events.end() - recent);
    if (ctx.json()) {
        print_json({{"subscription", to_json(s)},
                    {"charges", to_json(charges)},
                    {"recent_events", to_json(events)}});
        return;
    }
    if (csv_output_enabled()) {  // the subscription's columns, as `--json` names them
        const auto j = to_json(s);
        std::vector<std::string> keys, values;
        for (const auto& [key, value] : j.items()) {
            keys.push_back(key);
            values.push_back(value.is_string() ? value.get<std::string>()
                             : value.is_null() ? std::string{}
                                               : value.dump());
        }
        print_csv_row(keys);
        print_csv_row(values);
        return;
    }
    const auto& z = s.time_zone;
    fmt::print("subscription {}  {}{}\n", s.id, domain::to_string(s.status),
               s.cancel_at_period_end ? " (cancels at period end)" : "");
    fmt::print("  customer_uid   {}\n  amount         {} every {}\n  order name     {}\n",
               s.customer_uid, format_amount(s.amount, s.currency), every(s), s.order_name);
    fmt::print("  anchor         {} {} {}\n", s.anchor_date, s.charge_time, z);
    fmt::print("  next period    {} due {}\n", s.next_period, format_local(s.next_due_at, z));
    if (s.trial_end_at) fmt::print("  trial ends     {}\n", format_local(s.trial_end_at, z));
    if (s.max_periods) fmt::print("  max periods    {}\n", *s.max_periods);
    if (s.buyer_name || s.buyer_email || s.buyer_tel)
        fmt::print("  buyer          {} {} {}\n", or_dash(s.buyer_name), or_dash(s.buyer_email),
                   or_dash(s.buyer_tel));
    if (s.needs_attention) fmt::print("  NEEDS ATTENTION {}\n", *s.needs_attention);
    fmt::print("  created        {}\n\ncharges:\n", format_local(s.created_at, z));
    table c{{"ID", "PERIOD", "PERIOD START", "STATE", "AMOUNT", "MERCHANT_UID", "IMP_UID"}};
    for (const auto& r : charges)
        c.add({std::to_string(r.id), std::to_string(r.period_index),
               format_local(r.period_start, z), std::string{domain::to_string(r.state)},
               format_amount(r.amount, r.currency), r.merchant_uid, or_dash(r.imp_uid)});
    c.print();
    fmt::print("\nrecent events:\n");
    table e{{"ID", "AT", "KIND", "FROM", "TO", "ACTOR", "DETAIL"}};
    for (const auto& r : events)
        e.add({std::to_string(r.id), format_local(r.at, z), r.kind, or_dash(r.from_state),
               or_dash(r.to_state), r.actor, or_dash(r.detail)});
    e.print();
}

void change_status(context& ctx, const storage::subscription_record& s, subscription_status to,
                   const std::string& detail) {
    ctx.store().set_status(s.id, to, ctx.now());
    ctx.event(s.id, std::nullopt, "subscription.status", std::string{domain::to_string(s.status)},
              std::string{domain::to_string(to)}, detail,
              nlohmann::json{{"customer_uid", s.customer_uid}, {"reason", detail}}.dump());
}

// Cancels the charges of `s` that could still be sent (scheduled, retry_wait, declined) and
// returns notes about the ones left alone (in doubt: billingd reconciles them; parked).
std::vector<std::string> cancel_open_charges(context& ctx, const storage::subscription_record& s,
                                             const std::string& why) {
    std::vector<std::string> notes;
    for (auto c : ctx.store().charges_of_subscription(s.id)) {
        if (domain::is_in_doubt(c.state)) {
            notes.push_back(fmt::format(
                "charge {} ({}) is {}: the money may have moved; billingd will still reconcile "
                "it with PortOne",
                c.id, c.merchant_uid, domain::to_string(c.state)));
            continue;
        }
        if (c.state == charge_state::parked) {
            notes.push_back(
                fmt::format("charge {} ({}) is parked: resolve it with `billingctl "
                            "charge resolve {}`",
                            c.id, c.merchant_uid, c.id));
            continue;
        }
        if (c.state != charge_state::scheduled && c.state != charge_state::retry_wait &&
            c.state != charge_state::declined)
            continue;
        if (!domain::charge_transition_allowed(c.state, charge_state::canceled)) continue;
        const std::string from{domain::to_string(c.state)};
        c.state = charge_state::canceled;
        c.next_action_at.reset();
        c.fail_reason = why;
        c.updated_at = ctx.now();
        ctx.store().update_charge(c);
        ctx.event(s.id, c.id, "charge.canceled", from, "canceled", why,
                  nlohmann::json{{"merchant_uid", c.merchant_uid},
                                 {"customer_uid", c.customer_uid},
                                 {"amount", c.amount},
                                 {"currency", c.currency},
                                 {"period_index", c.period_index},
                                 {"reason", why}}
                      .dump());
        notes.push_back(
            fmt::format("charge {} ({}) canceled (was {})", c.id, c.merchant_uid, from));
    }
    return notes;
}

void report(context& ctx, std::int64_t id, const std::string& what,
            const std::vector<std::string>& notes) {
    if (ctx.json()) {
        print_json(
            {{"subscription", to_json(*ctx.store().find_subscription(id))}, {"notes", notes}});
        return;
    }
    fmt::print("subscription {}: {}\n", id, what);
    for (const auto& n : notes) fmt::print("  {}\n", n);
}

void run_pause(context& ctx, const id_options& o) {
    auto tx = ctx.store().begin();
    const auto s = ctx.subscription(o.id);
    if (!domain::subscription_transition_allowed(s.status, subscription_status::paused))
        throw failure(exit_code::data,
                      fmt::format("subscription {} is {}: only trialing, active or past_due "
                                  "subscriptions can be paused",
                                  s.id, domain::to_string(s.status)));
    change_status(ctx, s, subscription_status::paused, "paused by operator");
    const auto notes = cancel_open_charges(ctx, s, "subscription paused");
    tx.commit();
    report(ctx, s.id, "paused; nothing is charged until `billingctl subscription resume`", notes);
}

void run_resume(context& ctx, const id_options& o) {
    auto tx = ctx.store().begin();
    const auto s = ctx.subscription(o.id);
    if (s.status != subscription_status::paused && s.status != subscription_status::unpaid)
        throw failure(exit_code::data,
                      fmt::format("subscription {} is {}: only a paused or unpaid subscription "
                                  "can be resumed",
                                  s.id, domain::to_string(s.status)));
    const auto rule = scheduler::billing_rule_of(s);
    if (!rule.rule)
        throw failure(exit_code::data,
                      fmt::format("subscription {} cannot be scheduled: {}", s.id, rule.error));
    const auto now = ctx.now();
    // The first period whose start is at or after now; never move backwards.
    std::int64_t next = calendar::last_period_started_by(*rule.rule, from_unix(now)) + 1;
    if (next > 0 && to_unix(calendar::period_start(*rule.rule, next - 1)) == now) --next;
    next = std::max(next, s.next_period);
    for (const auto& c : ctx.store().charges_of_subscription(s.id))
        if (c.period_index == next && domain::is_final(c.state)) ++next;
    const auto to = s.trial_end_at && *s.trial_end_at > now ? subscription_status::trialing
                                                            : subscription_status::active;
    change_status(ctx, s, to, "resumed by operator");
    std::string detail;
    std::optional<std::int64_t> due;
    if (s.max_periods && next >= *s.max_periods) {
        detail = "no periods left; billingd ends the subscription";
    } else {
        due = to_unix(calendar::period_start(*rule.rule, next));
        detail = fmt::format("next period {} due {}", next, calendar::format_utc(from_unix(*due)));
    }
    if (next > s.next_period)
        detail += next - 1 == s.next_period
                      ? fmt::format("; period {} passed while {} and is not charged", s.next_period,
                                    domain::to_string(s.status))
                      : fmt::format("; periods {}-{} passed while {} and are not charged",
                                    s.next_period, next - 1, domain::to_string(s.status));
    ctx.store().set_schedule(s.id, next, due, now);
    ctx.event(s.id, std::nullopt, "subscription.resumed", std::nullopt, std::nullopt, detail,
              nlohmann::json{{"customer_uid", s.customer_uid},
                             {"status", domain::to_string(to)},
                             {"next_period", next},
                             {"next_due_at", due ? nlohmann::json(*due) : nlohmann::json(nullptr)}}
                  .dump());
    tx.commit();
    report(ctx, s.id,
           fmt::format("resumed ({}): {}{}", domain::to_string(to), detail,
                       due ? " (" + format_local(due, s.time_zone) + ")" : ""),
           {});
}

void run_cancel(context& ctx, const id_options& o) {
    auto tx = ctx.store().begin();
    const auto s = ctx.subscription(o.id);
    if (!domain::subscription_transition_allowed(s.status, subscription_status::canceled))
        throw failure(exit_code::data, fmt::format("subscription {} is already {}", s.id,
                                                   domain::to_string(s.status)));
    if (o.at_period_end) {
        if (s.cancel_at_period_end)
            throw failure(
                exit_code::data,
                fmt::format("subscription {} is already set to cancel at period end", s.id));
        ctx.store().set_cancel_at_period_end(s.id, true, ctx.now());
        const auto when = format_local(s.next_due_at, s.time_zone);
        ctx.event(s.id, std::nullopt, "subscription.cancel_at_period_end", std::nullopt,
                  std::nullopt,
                  fmt::format("cancels when period {} would start ({})", s.next_period, when),
                  nlohmann::json{{"customer_uid", s.customer_uid},
                                 {"cancel_at", s.next_due_at ? nlohmann::json(*s.next_due_at)
                                                             : nlohmann::json(nullptr)},
                                 {"first_uncharged_period", s.next_period}}
                      .dump());
        tx.commit();
        return report(ctx, s.id,
                      fmt::format("cancels at the end of the current period: period {} ({}) is "
                                  "not charged",
                                  s.next_period, when),
                      {});
    }
    change_status(ctx, s, subscription_status::canceled, "canceled by operator");
    ctx.store().set_schedule(s.id, s.next_period, std::nullopt, ctx.now());
    const auto notes = cancel_open_charges(ctx, s, "subscription canceled");
    tx.commit();
    report(ctx, s.id, "canceled", notes);
}

CLI::App* with_id(CLI::App* sub, std::shared_ptr<id_options> o) {
    add_integer(sub, "ID", o->id, 1, max_id, "subscription id (1 to 2^53)")->required();
    return sub;
}

}  // namespace

void add_subscription_commands(CLI::App& app, action& selected) {
    auto* group = app.add_subcommand("subscription", "Create, inspect and change subscriptions");
    group->require_subcommand(1);
    add_subscription_add_command(*group, selected);

    auto o = std::make_shared<id_options>();
    auto* list = group->add_subcommand(
        "list",
        "List subscriptions (oldest first) with status, amount, interval and when the next "
        "period is due in the subscription's local time. \"(cancels)\" marks a subscription "
        "that ends at its period end, \"(ATTENTION)\" a row billingd could not schedule.");
    list->footer(
        "Examples:\n  billingctl subscription list --status past_due\n"
        "  billingctl --json subscription list | jq '.[].id'");
    list->add_option("--status", o->status,
                     "only this status: trialing, active, past_due, unpaid, paused, canceled, "
                     "ended");
    add_paging(list, o->paging, "subscriptions");
    on_parsed<id_options>(list, selected, db_access::read, o, run_list);

    auto* show = with_id(
        group->add_subcommand("show",
                              "Show one subscription: its settings and schedule, every charge "
                              "(one per billing period) and its 20 most recent events. Times "
                              "are local to the subscription's time zone."),
        o);
    show->footer("Example:\n  billingctl subscription show 42");
    on_parsed<id_options>(show, selected, db_access::read, o, run_show);

    auto* pause = with_id(
        group->add_subcommand(
            "pause",
            "Pause a trialing, active or past_due subscription: nothing is charged until it is "
            "resumed. Charges of it that could still be sent (scheduled, retry_wait, declined) "
            "are canceled; a charge in doubt is left to billingd's reconciliation."),
        o);
    pause->footer("Example:\n  billingctl subscription pause 42");
    on_parsed<id_options>(pause, selected, db_access::write, o, run_pause);

    auto* resume = with_id(
        group->add_subcommand(
            "resume",
            "Resume a paused subscription, or an unpaid one (dunning exhausted) once the "
            "customer has a working card again, on its original calendar: the next period "
            "charged is the first one starting at or after now. Periods that started while it "
            "was paused or unpaid are not charged; the event row names them. The status becomes "
            "active (trialing while the trial has not ended)."),
        o);
    resume->footer("Example:\n  billingctl subscription resume 42");
    on_parsed<id_options>(resume, selected, db_access::write, o, run_resume);

    auto* cancel = with_id(
        group->add_subcommand(
            "cancel",
            "Cancel a subscription. Immediately (default): the status becomes canceled and its "
            "scheduled, retry_wait and declined charges are canceled. A charge in doubt "
            "(sending, unknown, reconciling) is never touched: billingd still reconciles it, "
            "and the command says so. With --at-period-end the subscription stays as it is and "
            "billingd cancels it when its next period would start (that period is not charged)."),
        o);
    cancel->add_flag("--at-period-end", o->at_period_end,
                     "cancel when the next period would start instead of now");
    cancel->footer(
        "Examples:\n  billingctl subscription cancel 42\n"
        "  billingctl --actor alice subscription cancel 42 --at-period-end");
    on_parsed<id_options>(cancel, selected, db_access::write, o, run_cancel);
}

}  // namespace billingd::ctl
