// `billingctl subscription add`: validates every value before anything is written, so a bad
// argument changes nothing (exit 65), then inserts the row already scheduled for period 0.
#include <fmt/format.h>

#include <cstdio>
#include <string>

#include "calendar/calendar.hpp"
#include "commands.hpp"
#include "output.hpp"
#include "scheduler/engine.hpp"

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
    std::string buyer_name, buyer_email, buyer_tel;
};

[[noreturn]] void invalid(const std::string& what) {
    throw failure(exit_code::data, what);
}

void check_length(std::string_view option, const std::string& value, std::size_t min,
                  std::size_t max) {
    const auto n = text_length(value);
    if (n < min || n > max)
        invalid(fmt::format("{}: must be {} to {} characters, got {}", option, min, max, n));
}

std::optional<std::string> optional_text(const std::string& s) {
    return s.empty() ? std::nullopt : std::optional<std::string>{s};
}

storage::subscription_record validated(context& ctx, const add_options& o) {
    const daemon::config* cfg = ctx.config();
    storage::subscription_record s;
    check_length("--customer-uid", o.customer_uid, 1, 80);
    s.customer_uid = o.customer_uid;
    if (o.amount <= 0) invalid(fmt::format("--amount: must be greater than 0, got {}", o.amount));
    s.amount = o.amount;
    check_length("--name", o.name, 1, 40);
    s.order_name = o.name;
    if (o.currency.size() != 3 ||
        o.currency.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string::npos)
        invalid(fmt::format("--currency: '{}' is not a 3-letter upper-case ISO code (e.g. KRW)",
                            o.currency));
    // Amounts go to PortOne as they are; until they are converted per currency exponent, a
    // $9.99 plan would be charged 999 dollars.
    if (o.currency != "KRW")
        invalid(fmt::format("--currency: only KRW is supported (got {})", o.currency));
    s.currency = o.currency;
    if (!calendar::parse_interval_unit(o.every))
        invalid(fmt::format("--every: '{}' is not one of day, week, month, year", o.every));
    s.interval_unit = o.every;
    if (o.count < 1 || o.count > 1000)
        invalid(fmt::format("--count: must be between 1 and 1000, got {}", o.count));
    s.interval_count = o.count;

    s.time_zone = !o.time_zone.empty() ? o.time_zone : cfg ? cfg->time_zone : "Asia/Seoul";
    const date::time_zone* zone = calendar::find_zone(s.time_zone);
    if (!zone)
        invalid(fmt::format("--time-zone: '{}' is not in the tz database (e.g. Asia/Seoul)",
                            s.time_zone));
    if (!o.charge_time.empty()) {
        const auto t = calendar::parse_time_of_day(o.charge_time);
        if (!t)
            invalid(fmt::format("--charge-time: '{}' is not HH:MM (00:00-23:59)", o.charge_time));
        s.charge_time = calendar::to_string(*t);
    } else {
        s.charge_time = calendar::to_string(cfg ? cfg->charge_time
                                                : calendar::time_of_day{std::chrono::hours{10}});
    }

    const auto today = calendar::local_date_of(from_unix(ctx.now()), zone);
    if (o.trial_given) {
        if (o.trial_days < 1 || o.trial_days > 3660)
            invalid(fmt::format("--trial-days: must be between 1 and 3660, got {}", o.trial_days));
        s.anchor_date = calendar::format_local_date(today + std::chrono::days{o.trial_days});
        s.status = domain::subscription_status::trialing;
    } else if (!o.anchor.empty()) {
        const auto d = calendar::parse_local_date(o.anchor);
        if (!d) invalid(fmt::format("--anchor: '{}' is not a date (YYYY-MM-DD)", o.anchor));
        s.anchor_date = calendar::format_local_date(*d);
    } else {
        s.anchor_date = calendar::format_local_date(today);
    }
    if (o.max_periods_given) {
        if (o.max_periods < 1)
            invalid(fmt::format("--max-periods: must be at least 1, got {}", o.max_periods));
        s.max_periods = o.max_periods;
    }
    check_length("--buyer-name", o.buyer_name, 0, 100);
    check_length("--buyer-email", o.buyer_email, 0, 200);
    check_length("--buyer-tel", o.buyer_tel, 0, 40);
    s.buyer_name = optional_text(o.buyer_name);
    s.buyer_email = optional_text(o.buyer_email);
    s.buyer_tel = optional_text(o.buyer_tel);

    const auto rule = scheduler::billing_rule_of(s);
    if (!rule.rule) invalid(rule.error);
    s.next_period = 0;
    s.next_due_at = to_unix(calendar::period_start(*rule.rule, 0));
    if (s.status == domain::subscription_status::trialing) s.trial_end_at = s.next_due_at;
    return s;
}

void run_add(context& ctx, const add_options& o) {
    auto s = validated(ctx, o);
    s.created_at = s.updated_at = ctx.now();
    auto& store = ctx.store(true);
    auto tx = store.begin();
    s.id = store.insert_subscription(s);
    const std::string first = format_local(s.next_due_at, s.time_zone);
    ctx.event(s.id, std::nullopt, "subscription.created", std::nullopt,
              std::string{domain::to_string(s.status)},
              fmt::format("{} every {} {} from {} {} {}; period 0 due {}",
                          format_amount(s.amount, s.currency), s.interval_count, s.interval_unit,
                          s.anchor_date, s.charge_time, s.time_zone, first));
    tx.commit();
    if (ctx.json()) {
        print_json(to_json(*store.find_subscription(s.id)));
        return;
    }
    fmt::print("{}\n", s.id);
    fmt::print(stderr, "subscription {} created ({}): {} for {}, first charge {}\n", s.id,
               domain::to_string(s.status), format_amount(s.amount, s.currency), s.customer_uid,
               first);
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
        "changes nothing and exits 65. Prints the new id as the only line on stdout (a summary "
        "goes to stderr), or the whole row with --json.");
    sub->footer(
        "Examples:\n"
        "  billingctl subscription add --customer-uid cust_42 --amount 9900 --name \"Pro plan\"\n"
        "  billingctl subscription add --customer-uid cust_7 --amount 29000 --name \"Box\" \\\n"
        "      --every month --count 3 --anchor 2024-01-31 --charge-time 09:30 --max-periods 4\n"
        "  billingctl subscription add --customer-uid cust_9 --amount 4900 --name Trial "
        "--trial-days 14");
    sub->add_option("--customer-uid", o->customer_uid,
                    "PortOne customer_uid (billing key name), 1-80 characters")
        ->required();
    sub->add_option("--amount", o->amount,
                    "amount per period in the currency's minor unit (KRW: won), > 0")
        ->required();
    sub->add_option("--name", o->name, "order name shown to the customer, 1-40 characters")
        ->required();
    sub->add_option("--currency", o->currency,
                    "ISO 4217 code; only KRW is supported (amounts are sent as they are)")
        ->capture_default_str();
    sub->add_option("--every", o->every, "interval unit: day, week, month or year")
        ->capture_default_str();
    sub->add_option("--count", o->count, "charge every COUNT units (1-1000)")
        ->capture_default_str();
    auto* anchor = sub->add_option(
        "--anchor", o->anchor, "local date of period 0, YYYY-MM-DD (default: today in the zone)");
    sub->add_option("--charge-time", o->charge_time,
                    "local time of day HH:MM of every charge (default: the config's "
                    "charge_time, else 10:00)");
    sub->add_option("--time-zone", o->time_zone,
                    "IANA time zone (default: the config's time_zone, else Asia/Seoul)");
    auto* trial = sub->add_option("--trial-days", o->trial_days,
                                  "free trial: status trialing, first charge (anchor) today + N "
                                  "days")
                      ->excludes(anchor);
    auto* max_periods = sub->add_option("--max-periods", o->max_periods,
                                        "charge this many periods, then the subscription ends");
    sub->add_option("--buyer-name", o->buyer_name, "buyer name sent to PortOne (<= 100)");
    sub->add_option("--buyer-email", o->buyer_email, "buyer e-mail sent to PortOne (<= 200)");
    sub->add_option("--buyer-tel", o->buyer_tel, "buyer phone number sent to PortOne (<= 40)");
    on_parsed<add_options>(sub, selected, o, run_add, [trial, max_periods](add_options& opts) {
        opts.trial_given = trial->count() > 0;
        opts.max_periods_given = max_periods->count() > 0;
    });
}

}  // namespace billingd::ctl
