// `billingctl subscription list|show|pause|resume|cancel`: parse, call the operation
// (operations/subscriptions.hpp, queries.hpp), print. Each change is one transaction that
// re-reads the row, so billingd running at the same time never sees half of it.
#include <fmt/format.h>

#include "commands.hpp"
#include "operations/queries.hpp"
#include "operations/subscriptions.hpp"
#include "output.hpp"
#include "paging.hpp"

namespace billingd::ctl {
namespace {

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
    operations::subscription_filter filter;
    if (!o.status.empty()) filter.status = o.status;
    operations::check(filter, operations::naming::options);  // before the database is opened
    const auto page =
        operations::list_subscriptions(ctx.store(), filter, o.paging, operations::naming::options);
    if (page.next_after) note_cut(o.paging.limit, *page.next_after, "subscriptions");
    if (ctx.json()) return print_json(to_json(page.rows));
    print_subscriptions(page.rows);
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

void report(context& ctx, const operations::status_change& r, const std::string& what) {
    if (ctx.json()) {
        print_json({{"subscription", to_json(r.subscription)}, {"notes", r.notes}});
        return;
    }
    fmt::print("subscription {}: {}\n", r.subscription.id, what);
    for (const auto& n : r.notes) fmt::print("  {}\n", n);
}

void run_pause(context& ctx, const id_options& o) {
    const auto r = operations::pause(ctx.store(), ctx.caller(), o.id);
    report(ctx, r, "paused; nothing is charged until `billingctl subscription resume`");
}

void run_resume(context& ctx, const id_options& o) {
    const auto r = operations::resume(ctx.store(), ctx.caller(), o.id);
    const auto& s = r.subscription;
    report(ctx, r,
           fmt::format("resumed ({}): {}{}", domain::to_string(s.status), r.detail,
                       s.next_due_at ? " (" + format_local(s.next_due_at, s.time_zone) + ")" : ""));
}

void run_cancel(context& ctx, const id_options& o) {
    const auto r = operations::cancel(ctx.store(), ctx.caller(), o.id, o.at_period_end);
    const auto& s = r.subscription;
    if (o.at_period_end)
        return report(ctx, r,
                      fmt::format("cancels at the end of the current period: period {} ({}) is "
                                  "not charged",
                                  s.next_period, format_local(s.next_due_at, s.time_zone)));
    report(ctx, r, "canceled");
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
