// `billingctl subscription add`: operations::validate checks every value before the database is
// opened, so a bad argument changes nothing (exit 65), then operations::create inserts the row
// already scheduled for period 0 (operations/subscriptions.hpp has the rules, --backdate's too).
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "calendar/calendar.hpp"
#include "commands.hpp"
#include "domain/merchant_uid.hpp"
#include "operations/subscriptions.hpp"
#include "output.hpp"

namespace billingd::ctl {
namespace {

struct add_options {
    std::string customer_uid;
    std::int64_t amount = 0;
    std::string name;
    std::string currency = "KRW";
    std::string every = "month";
    std::int64_t count = 1;
    std::string anchor;
    std::string charge_time;
    std::string time_zone;
    std::int64_t trial_days = 0;
    bool trial_given = false;
    std::int64_t max_periods = 0;
    bool max_periods_given = false;
    bool backdate = false;
    std::string buyer_name, buyer_email, buyer_tel;
};

// The configuration's defaults and limits for a new subscription (the built-in ones when only
// --database was given).
operations::subscription_defaults defaults_of(const daemon::config* cfg) {
    operations::subscription_defaults d;
    if (!cfg) return d;
    d.time_zone = cfg->time_zone;
    d.charge_time = calendar::to_string(cfg->charge_time);
    d.max_amount_per_charge = cfg->engine.max_amount_per_charge;
    return d;
}

std::optional<std::string> given(const std::string& s) {
    return s.empty() ? std::nullopt : std::optional<std::string>{s};
}

void run_add(context& ctx, const add_options& o) {
    operations::new_subscription in;
    in.customer_uid = o.customer_uid;
    in.amount = o.amount;
    in.order_name = o.name;
    in.currency = o.currency;
    in.interval_unit = o.every;
    in.interval_count = o.count;
    in.anchor_date = given(o.anchor);
    in.charge_time = given(o.charge_time);
    in.time_zone = given(o.time_zone);
    if (o.trial_given) in.trial_days = o.trial_days;
    if (o.max_periods_given) in.max_periods = o.max_periods;
    in.backdate = o.backdate;
    in.buyer_name = o.buyer_name;
    in.buyer_email = o.buyer_email;
    in.buyer_tel = o.buyer_tel;
    // Every value is checked before the database is opened (or created).
    const auto valid =
        operations::validate(in, defaults_of(ctx.config()), ctx.now(), operations::naming::options);
    const auto s = operations::create(ctx.store(), ctx.caller(), valid);
    if (ctx.json()) {
        print_json(to_json(s));
        return;
    }
    fmt::print("{}\n", s.id);
    fmt::print(stderr, "subscription {} created ({}): {} for {}, first charge {}\n", s.id,
               domain::to_string(s.status), format_amount(s.amount, s.currency), s.customer_uid,
               format_local(s.next_due_at, s.time_zone));
}

}  // namespace

void add_subscription_add_command(CLI::App& subscription, action& selected) {
    auto o = std::make_shared<add_options>();
    auto* sub = subscription.add_subcommand(
        "add",
        "Create a subscription for a card PortOne already knows (the customer_uid passed to "
        "IMP.request_pay). Period 0 is charged on the anchor date at the charge time, local to "
        "the time zone; later periods follow the anchor every COUNT units (month ends are "
        "clamped, never drifting). The row is scheduled at once, so it shows in `billingctl "
        "due` and billingd charges it when due. Every value is checked first: an invalid one "
        "changes nothing and exits 65 (a number that is not plain base 10 exits 64). An anchor "
        "more than one period before today is refused unless --backdate is given. Prints the "
        "new id as the only line on stdout (a summary goes to stderr), or the whole row with "
        "--json.");
    sub->footer(
        "Examples:\n"
        "  billingctl subscription add --customer-uid cust_42 --amount 9900 --name \"Pro plan\"\n"
        "  billingctl subscription add --customer-uid cust_7 --amount 29000 --name \"Box\" \\\n"
        "      --every month --count 3 --anchor 2030-01-31 --charge-time 09:30 --max-periods 4\n"
        "  billingctl subscription add --customer-uid cust_9 --amount 4900 --name Trial "
        "--trial-days 14\n"
        "  billingctl subscription add --customer-uid cust_3 --amount 9900 --name \"Pro plan\" "
        "\\\n      --anchor 2024-01-31 --backdate");
    sub->add_option("--customer-uid", o->customer_uid,
                    "PortOne customer_uid (billing key name), 1-80 printable characters, no "
                    "white space at either end")
        ->required();
    add_integer(sub, "--amount", o->amount, 1, domain::max_amount,
                "amount per period in the currency's minor unit (KRW: won), 1 to the "
                "configured [guardrails] max_amount_per_charge (default 100000000), base 10 "
                "without leading zeros")
        ->required();
    sub->add_option("--name", o->name, "order name shown to the customer, 1-40 characters")
        ->required();
    sub->add_option("--currency", o->currency,
                    "ISO 4217 code; only KRW is supported (amounts are sent as they are)")
        ->capture_default_str();
    sub->add_option("--every", o->every, "interval unit: day, week, month or year")
        ->capture_default_str();
    add_integer(sub, "--count", o->count, 1, operations::max_interval_count,
                fmt::format("charge every COUNT units (1-{})", operations::max_interval_count))
        ->default_str(std::to_string(o->count));
    auto* anchor = sub->add_option(
        "--anchor", o->anchor,
        "local date of period 0, YYYY-MM-DD, 1900-01-01 to 9999-12-31 (default: today in the "
        "zone); more than one period before today only with --backdate");
    auto* backdate = sub->add_flag(
        "--backdate", o->backdate,
        "accept an --anchor more than one billing period in the past: billingd then charges "
        "the latest period(s) (the config's max_catch_up_periods) and records the earlier "
        "ones as skipped");
    backdate->needs(anchor);
    sub->add_option("--charge-time", o->charge_time,
                    "local time of day HH:MM of every charge (default: the config's "
                    "charge_time, else 10:00)");
    sub->add_option("--time-zone", o->time_zone,
                    "IANA time zone (default: the config's time_zone, else Asia/Seoul)");
    auto* trial = add_integer(sub, "--trial-days", o->trial_days, 1, operations::max_trial_days,
                              fmt::format("free trial: status trialing, first charge (anchor) "
                                          "today + N days (1-{})",
                                          operations::max_trial_days))
                      ->excludes(anchor);
    auto* max_periods =
        add_integer(sub, "--max-periods", o->max_periods, 1, domain::max_period_index,
                    fmt::format("charge this many periods (1-{}), then the subscription ends",
                                domain::max_period_index));
    sub->add_option("--buyer-name", o->buyer_name, "buyer name sent to PortOne (<= 100)");
    sub->add_option("--buyer-email", o->buyer_email, "buyer e-mail sent to PortOne (<= 200)");
    sub->add_option("--buyer-tel", o->buyer_tel, "buyer phone number sent to PortOne (<= 40)");
    on_parsed<add_options>(sub, selected, db_access::create, o, run_add,
                           [trial, max_periods](add_options& opts) {
                               opts.trial_given = trial->count() > 0;
                               opts.max_periods_given = max_periods->count() > 0;
                           });
}

}  // namespace billingd::ctl
