// `billingctl subscription add`: validates every value before anything is written, so a bad
// argument changes nothing (exit 65), then inserts the row already scheduled for period 0.
// An anchor more than one period in the past needs --backdate: a typo such as
// `--anchor 0000-01-01 --every day` must not make billingd account for centuries of periods.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "calendar/calendar.hpp"
#include "commands.hpp"
#include "domain/merchant_uid.hpp"
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
    bool backdate = false;
    std::string buyer_name, buyer_email, buyer_tel;
};

// Anchors billingctl accepts at all (the calendar ends in 9999).
constexpr std::chrono::local_days earliest_anchor{std::chrono::year{1900} / 1 / 1};
constexpr std::chrono::local_days latest_anchor{std::chrono::year{9999} / 12 / 31};
constexpr std::int64_t max_count = 1000;       // interval_count, as the schema's CHECK
constexpr std::int64_t max_trial_days = 3660;  // ten years

// What one charge may be: [guardrails] max_amount_per_charge when configured (at most the
// schema's bound), else 100,000,000.
std::int64_t amount_limit(const daemon::config* cfg) {
    constexpr std::int64_t default_limit = 100'000'000;
    if (cfg && cfg->engine.max_amount_per_charge > 0)
        return std::min(cfg->engine.max_amount_per_charge, domain::max_amount);
    return default_limit;
}

[[noreturn]] void invalid(const std::string& what) {
    throw failure(exit_code::data, what);
}

std::optional<std::string> optional_text(const std::string& s) {
    return s.empty() ? std::nullopt : std::optional<std::string>{s};
}

storage::subscription_record validated(context& ctx, const add_options& o) {
    const daemon::config* cfg = ctx.config();
    storage::subscription_record s;
    check_text("--customer-uid", o.customer_uid, 1, 80, true);
    s.customer_uid = o.customer_uid;
    // add_integer checked 1..domain::max_amount (the schema's bound); the per-charge limit is
    // the guardrail billingd would park a larger charge at.
    const std::int64_t limit = amount_limit(cfg);
    if (o.amount > limit)
        invalid(
            fmt::format("--amount: {} is above the limit of {} per charge ([guardrails] "
                        "max_amount_per_charge{}); billingd would park such a charge",
                        o.amount, limit,
                        cfg && cfg->engine.max_amount_per_charge > 0 ? "" : ", default 100000000"));
    s.amount = o.amount;
    check_text("--name", o.name, 1, 40);
    s.order_name = o.name;
    if (o.currency.size() != 3 ||
        o.currency.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string::npos)
        invalid(fmt::format("--currency: {} is not a 3-letter upper-case ISO code (e.g. KRW)",
                            shown(o.currency)));
    // Amounts go to PortOne as they are; until they are converted per currency exponent, a
    // $9.99 plan would be charged 999 dollars.
    if (o.currency != "KRW")
        invalid(fmt::format("--currency: only KRW is supported (got {})", shown(o.currency)));
    s.currency = o.currency;
    if (!calendar::parse_interval_unit(o.every))
        invalid(fmt::format("--every: {} is not one of day, week, month, year", shown(o.every)));
    s.interval_unit = o.every;
    s.interval_count = o.count;  // add_integer checked 1..max_count

    s.time_zone = !o.time_zone.empty() ? o.time_zone : cfg ? cfg->time_zone : "Asia/Seoul";
    const date::time_zone* zone = calendar::find_zone(s.time_zone);
    if (!zone)
        invalid(fmt::format("--time-zone: {} is not in the tz database (e.g. Asia/Seoul)",
                            shown(s.time_zone)));
    if (!o.charge_time.empty()) {
        const auto t = calendar::parse_time_of_day(o.charge_time);
        if (!t)
            invalid(
                fmt::format("--charge-time: {} is not HH:MM (00:00-23:59)", shown(o.charge_time)));
        s.charge_time = calendar::to_string(*t);
    } else {
        s.charge_time = calendar::to_string(cfg ? cfg->charge_time
                                                : calendar::time_of_day{std::chrono::hours{10}});
    }

    const auto today = calendar::local_date_of(from_unix(ctx.now()), zone);
    if (o.trial_given) {  // add_integer checked 1..max_trial_days
        s.anchor_date = calendar::format_local_date(today + std::chrono::days{o.trial_days});
        s.status = domain::subscription_status::trialing;
    } else if (!o.anchor.empty()) {
        const auto d = calendar::parse_local_date(o.anchor);
        if (!d) invalid(fmt::format("--anchor: {} is not a date (YYYY-MM-DD)", shown(o.anchor)));
        if (*d < earliest_anchor || *d > latest_anchor)
            invalid(fmt::format("--anchor: {} is outside {}..{}", o.anchor,
                                calendar::format_local_date(earliest_anchor),
                                calendar::format_local_date(latest_anchor)));
        s.anchor_date = calendar::format_local_date(*d);
    } else {
        s.anchor_date = calendar::format_local_date(today);
    }
    if (o.max_periods_given) s.max_periods = o.max_periods;  // checked 1..max_period_index
    check_text("--buyer-name", o.buyer_name, 0, 100);
    check_text("--buyer-email", o.buyer_email, 0, 200);
    check_text("--buyer-tel", o.buyer_tel, 0, 40);
    s.buyer_name = optional_text(o.buyer_name);
    s.buyer_email = optional_text(o.buyer_email);
    s.buyer_tel = optional_text(o.buyer_tel);

    const auto rule = scheduler::billing_rule_of(s);
    if (!rule.rule) invalid(rule.error);
    // Period 1 starting before today means period 0 lies more than one period in the past:
    // billingd would account for every period since (charge the last, skip the others).
    const auto second = calendar::period_date(*rule.rule, 1);
    if (!o.backdate && second < today)
        invalid(fmt::format(
            "--anchor: {} is more than one billing period (every {} {}) before today ({} in {}): "
            "period 1 already started on {}, and billingd would account for every period since "
            "as missed. Check the date; if the subscription really started then, add "
            "--backdate",
            s.anchor_date, s.interval_count, s.interval_unit, calendar::format_local_date(today),
            s.time_zone, calendar::format_local_date(second)));
    s.next_period = 0;
    s.next_due_at = to_unix(calendar::period_start(*rule.rule, 0));
    if (s.status == domain::subscription_status::trialing) s.trial_end_at = s.next_due_at;
    return s;
}

void run_add(context& ctx, const add_options& o) {
    auto s = validated(ctx, o);
    s.created_at = s.updated_at = ctx.now();
    auto& store = ctx.store();
    auto tx = store.begin();
    s.id = store.insert_subscription(s);
    const std::string first = format_local(s.next_due_at, s.time_zone);
    ctx.event(s.id, std::nullopt, "subscription.created", std::nullopt,
              std::string{domain::to_string(s.status)},
              fmt::format("{} every {} {} from {} {} {}; period 0 due {}",
                          format_amount(s.amount, s.currency), s.interval_count, s.interval_unit,
                          s.anchor_date, s.charge_time, s.time_zone, first),
              nlohmann::json{
                  {"customer_uid", s.customer_uid},
                  {"amount", s.amount},
                  {"currency", s.currency},
                  {"order_name", s.order_name},
                  {"interval_unit", s.interval_unit},
                  {"interval_count", s.interval_count},
                  {"anchor_date", s.anchor_date},
                  {"charge_time", s.charge_time},
                  {"time_zone", s.time_zone},
                  {"trial_end_at", s.trial_end_at ? nlohmann::json(*s.trial_end_at) : nullptr},
                  {"max_periods", s.max_periods ? nlohmann::json(*s.max_periods) : nullptr},
                  {"first_due_at", s.next_due_at ? nlohmann::json(*s.next_due_at) : nullptr}}
                  .dump());
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
    add_integer(sub, "--count", o->count, 1, max_count,
                fmt::format("charge every COUNT units (1-{})", max_count))
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
    auto* trial = add_integer(sub, "--trial-days", o->trial_days, 1, max_trial_days,
                              fmt::format("free trial: status trialing, first charge (anchor) "
                                          "today + N days (1-{})",
                                          max_trial_days))
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
