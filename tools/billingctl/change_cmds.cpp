// `billingctl subscription update|consent|prices` and `billingctl charge rekey|refund|refunds`:
// changes to subscriptions and money coming back. The rules live in lib/operations
// (changes.hpp, rekey.hpp, refunds.hpp), shared with billingd's HTTP API; this file parses,
// asks PortOne where an operation needs it (rekey), and prints.
#include <fmt/format.h>

#include <chrono>
#include <thread>

#include "commands.hpp"
#include "domain/merchant_uid.hpp"
#include "operations/changes.hpp"
#include "operations/charges.hpp"
#include "operations/refunds.hpp"
#include "operations/rekey.hpp"
#include "operations/subscriptions.hpp"
#include "output.hpp"
#include "portone.hpp"
#include "storage/change_store.hpp"

namespace billingd::ctl {
namespace {

struct change_options {
    std::int64_t id = 0;
    std::int64_t amount = 0;
    std::string name;
    std::string charge_time;
    std::string interval;
    std::int64_t interval_count = 0;
    std::string customer_uid;
    std::int64_t from_period = -1;
    bool next_period = false;
    std::int64_t period = -1;
    std::string reason;
    std::int64_t wait_seconds = 0;
};

operations::caller caller_of(context& ctx) {
    return {ctx.actor(), ctx.now()};
}

// operations::error -> the exit codes of `billingctl --help`.
[[noreturn]] void fail(const operations::error& e) {
    throw failure(
        e.kind() == operations::error_kind::unavailable ? exit_code::unavailable : exit_code::data,
        e.what());
}

std::int64_t amount_limit(context& ctx) {
    const auto* cfg = ctx.config();
    return operations::amount_limit(cfg ? cfg->engine.max_amount_per_charge : 0);
}

void print_prices(context& ctx, const storage::subscription_record& s) {
    const auto entries = operations::price_schedule(ctx.store(), s.id);
    if (ctx.json()) {
        nlohmann::json out = {{"subscription", to_json(s)},
                              {"price_schedule", nlohmann::json::array()}};
        for (const auto& e : entries) out["price_schedule"].push_back(to_json(e));
        print_json(out);
        return;
    }
    fmt::print("subscription {}: {} now, next period {}\n", s.id,
               format_amount(s.amount, s.currency), s.next_period);
    if (s.consent_period)
        fmt::print("  HELD FOR CONSENT: period {} since {} (billingctl subscription consent {})\n",
                   *s.consent_period, format_local(s.consent_since, s.time_zone), s.id);
    table t{{"FROM PERIOD", "AMOUNT", "NAME", "BY", "APPLIED"}};
    for (const auto& e : entries)
        t.add({std::to_string(e.from_period), format_amount(e.amount, s.currency), e.order_name,
               e.created_by, e.applied_at ? format_local(e.applied_at, s.time_zone) : "pending"});
    t.print();
}

void run_update(context& ctx, const change_options& o) {
    operations::subscription_update u;
    if (o.amount > 0) u.amount = o.amount;
    if (!o.name.empty()) u.order_name = o.name;
    if (!o.charge_time.empty()) u.charge_time = o.charge_time;
    if (!o.interval.empty()) u.interval_unit = o.interval;
    if (o.interval_count > 0) u.interval_count = o.interval_count;
    if (!o.customer_uid.empty()) u.customer_uid = o.customer_uid;
    if (o.from_period >= 0) u.from_period = o.from_period;
    u.amount_limit = amount_limit(ctx);
    try {
        const auto r = operations::update_subscription(ctx.store(), caller_of(ctx), o.id, u);
        if (ctx.json()) {
            print_json({{"subscription", to_json(r.subscription)},
                        {"from_period", r.from_period},
                        {"event_ids", r.event_ids}});
            return;
        }
        fmt::print("subscription {} changed from period {} ({} event{})\n", o.id, r.from_period,
                   r.event_ids.size(), r.event_ids.size() == 1 ? "" : "s");
        print_prices(ctx, r.subscription);
    } catch (const operations::error& e) {
        fail(e);
    }
}

void run_consent(context& ctx, const change_options& o) {
    try {
        std::optional<std::int64_t> period;
        if (o.period >= 0) period = o.period;
        const auto event = operations::record_consent(ctx.store(), caller_of(ctx), o.id, period);
        const auto s = *ctx.store().find_subscription(o.id);
        if (ctx.json()) return print_json({{"subscription", to_json(s)}, {"event_id", event}});
        fmt::print("consent recorded for subscription {}; next period {} due {}\n", o.id,
                   s.next_period, format_local(s.next_due_at, s.time_zone));
    } catch (const operations::error& e) {
        fail(e);
    }
}

void run_prices(context& ctx, const change_options& o) {
    try {
        print_prices(ctx, ctx.subscription(o.id));
    } catch (const operations::error& e) {
        fail(e);
    }
}

void run_rekey(context& ctx, const change_options& o) {
    const auto cfg = ctx.portone_config();
    const auto floor = daemon::trust_floor(cfg).count();
    try {
        operations::rekey_evidence evidence;
        evidence.charge =
            operations::rekey_precheck(ctx.store(), o.id, o.customer_uid, ctx.now(), floor);
        const auto r = ask_payments(cfg.portone, evidence.charge.merchant_uid);
        // In the charge's journal, whatever the rekey's outcome.
        operations::record_lookup(ctx.store(), caller_of(ctx), evidence.charge, r.journal,
                                  "billingctl charge rekey");
        switch (r.verdict) {
            case gateway::outcome::not_found:
                evidence.lookup = "no record at PortOne";
                break;
            case gateway::outcome::declined:
                evidence.lookup = "only failed payments at PortOne";
                break;
            case gateway::outcome::paid:
                throw failure(exit_code::data,
                              fmt::format("charge {}: PortOne has a paid payment under {} "
                                          "(imp_uid {}); the period is paid, so its card is not "
                                          "changed. Record it: billingctl charge resolve {} --paid "
                                          "--imp-uid {} --check",
                                          o.id, evidence.charge.merchant_uid, r.settled->imp_uid,
                                          o.id, r.settled->imp_uid));
            case gateway::outcome::config_error:
                throw failure(exit_code::config,
                              "PortOne refused the lookup (credentials or "
                              "account): " +
                                  r.journal.message);
            default:
                throw failure(exit_code::unavailable,
                              fmt::format("PortOne gave no clear answer about {} ({}): {}; "
                                          "nothing changed, try again",
                                          evidence.charge.merchant_uid,
                                          gateway::to_string(r.verdict), r.journal.message));
        }
        const auto c =
            operations::rekey_charge(ctx.store(), caller_of(ctx), o.customer_uid, evidence, floor);
        if (ctx.json()) return print_json({{"charge", to_json(c)}, {"lookup", evidence.lookup}});
        fmt::print(
            "charge {} now charges customer_uid {} as {} ({} under {}); billingd sends it "
            "on its next pass\n",
            c.id, c.customer_uid, c.merchant_uid, evidence.lookup, evidence.charge.merchant_uid);
    } catch (const operations::error& e) {
        fail(e);
    }
}

void print_refunds(context& ctx, std::int64_t charge_id) {
    const auto c = ctx.charge(charge_id);
    storage::change_store changes(ctx.store().db());
    const auto refunds = changes.refunds_of_charge(c.id);
    const auto rekeys = changes.rekeys_of_charge(c.id);
    if (ctx.json()) {
        nlohmann::json out = {{"charge", to_json(c)},
                              {"refunds", nlohmann::json::array()},
                              {"rekeys", nlohmann::json::array()}};
        for (const auto& r : refunds) out["refunds"].push_back(to_json(r));
        for (const auto& k : rekeys)
            out["rekeys"].push_back({{"old_merchant_uid", k.old_merchant_uid},
                                     {"old_customer_uid", k.old_customer_uid},
                                     {"new_merchant_uid", k.new_merchant_uid},
                                     {"new_customer_uid", k.new_customer_uid},
                                     {"lookup", k.lookup},
                                     {"at", k.at},
                                     {"actor", k.actor}});
        return print_json(out);
    }
    fmt::print("charge {} ({}) {}: paid {}, refunded {}\n", c.id, c.merchant_uid,
               domain::to_string(c.state), format_amount(c.amount, c.currency),
               format_amount(c.refunded_amount, c.currency));
    table t{{"REFUND", "SOURCE", "STATE", "AMOUNT", "REQUESTED BY", "REFUNDED AT (UTC)", "REASON"}};
    for (const auto& r : refunds)
        t.add({std::to_string(r.id), r.source, r.state, format_amount(r.amount, c.currency),
               r.requested_by, format_local(r.refunded_at, "UTC"),
               r.fail_reason ? r.reason + " (" + *r.fail_reason + ")" : r.reason});
    t.print();
    for (const auto& k : rekeys)
        fmt::print("card changed: {} ({}) -> {} ({}) by {}\n", k.old_merchant_uid,
                   k.old_customer_uid, k.new_merchant_uid, k.new_customer_uid, k.actor);
}

void run_refund(context& ctx, const change_options& o) {
    operations::refund_request q;
    if (o.amount > 0) q.amount = o.amount;
    q.reason = o.reason;
    try {
        const auto r = operations::request_refund(ctx.store(), caller_of(ctx), o.id, q);
        // billingd sends it (it wakes when the database changes); wait for the outcome.
        storage::change_store changes(ctx.store().db());
        auto current = r;
        for (std::int64_t waited = 0; waited < o.wait_seconds * 10; ++waited) {
            current = changes.find_refund(r.id).value_or(current);
            if (current.state == "refunded" || current.state == "refused") break;
            std::this_thread::sleep_for(std::chrono::milliseconds{100});
        }
        if (ctx.json()) return print_json({{"refund", to_json(current)}});
        if (current.state == "refunded")
            fmt::print("refund {} of charge {}: {} refunded\n", r.id, o.id,
                       format_amount(r.amount, "KRW"));
        else if (current.state == "refused")
            throw failure(exit_code::data,
                          fmt::format("refund {} of charge {} was refused: {}", r.id, o.id,
                                      current.fail_reason.value_or("")));
        else
            fmt::print(
                "refund {} of charge {} ({}) is {}: billingd sends it (see `billingctl "
                "charge refunds {}`)\n",
                r.id, o.id, format_amount(r.amount, "KRW"), current.state, o.id);
    } catch (const operations::error& e) {
        fail(e);
    }
}

void run_refunds(context& ctx, const change_options& o) {
    print_refunds(ctx, o.id);
}

CLI::App* find(CLI::App& app, const std::string& name) {
    return app.get_subcommand(name);
}

}  // namespace

void add_change_commands(CLI::App& app, action& selected) {
    auto* sub = find(app, "subscription");
    auto* charge = find(app, "charge");
    auto o = std::make_shared<change_options>();

    auto* update = sub->add_subcommand(
        "update",
        "Change a subscription from a period boundary on. --amount/--name go into its price "
        "schedule: they apply from --from-period N (N >= the next period) or, by default, from "
        "the next period without a charge; a charge that exists keeps its amount (its request is "
        "fixed) and nothing is prorated. A promotion is two updates: the low price from the next "
        "period, the normal price from a later one. --charge-time, --interval/--interval-count "
        "and --customer-uid take effect from the next period: a new charge time or interval "
        "re-anchors the calendar at the next period's start date (that date at the new time, then "
        "every new interval from it). Each change writes an event naming --actor. For a charge "
        "that was declined with the old card, see `charge rekey`.");
    add_integer(update, "SUBSCRIPTION_ID", o->id, 1, max_id, "subscription id")->required();
    add_integer(update, "--amount", o->amount, 1, domain::max_amount, "new amount in KRW");
    update->add_option("--name", o->name, "new order name (1-40 characters)");
    update->add_option("--charge-time", o->charge_time, "new local charge time HH:MM");
    update->add_option("--interval", o->interval, "new interval unit: day, week, month or year");
    add_integer(update, "--interval-count", o->interval_count, 1, 1000,
                "every N interval units (1-1000)");
    update->add_option("--customer-uid", o->customer_uid,
                       "new billing key (customer_uid) for the periods to come");
    auto* from = add_integer(update, "--from-period", o->from_period, 0, domain::max_period_index,
                             "first period the change applies to");
    auto* next = update->add_flag("--next-period", o->next_period,
                                  "apply from the next period without a charge (the default)");
    from->excludes(next);
    update->footer(
        "Examples:\n  billingctl subscription update 42 --amount 12900\n"
        "  billingctl subscription update 42 --amount 4900 --next-period   # 50 % off ...\n"
        "  billingctl subscription update 42 --amount 9900 --from-period 3 # ... until period 3\n"
        "  billingctl subscription update 42 --charge-time 09:00 --interval month");
    on_parsed<change_options>(update, selected, db_access::write, o, run_update);

    auto* consent = sub->add_subcommand(
        "consent",
        "Record the customer's consent to a price rise or to the first charge after a trial "
        "([billing] require_consent). Without --period: the period held for consent now, else "
        "the next scheduled price change. A held period is charged on billingd's next pass.");
    add_integer(consent, "SUBSCRIPTION_ID", o->id, 1, max_id, "subscription id")->required();
    add_integer(consent, "--period", o->period, 0, domain::max_period_index,
                "the period consented to (ahead of time)");
    on_parsed<change_options>(consent, selected, db_access::write, o, run_consent);

    auto* prices = sub->add_subcommand(
        "prices", "Show a subscription's price schedule and whether a period is held for consent");
    add_integer(prices, "SUBSCRIPTION_ID", o->id, 1, max_id, "subscription id")->required();
    on_parsed<change_options>(prices, selected, db_access::read, o, run_prices);

    auto* rekey = charge->add_subcommand(
        "rekey",
        "Charge a declined or parked period with a new card. billingctl first checks that no "
        "request of this charge can still be in progress (each was answered, or was sent longer "
        "ago than billingd's trust floor) and asks PortOne about the old merchant_uid: only when "
        "PortOne has no paid payment under it is the old request canceled and the period charged "
        "again under a new merchant_uid (the old one + k1, k2, ...) with --customer-uid; the "
        "subscription's later periods use the new card too. The period can still be paid only "
        "once, and the old merchant_uid is never sent again. Needs the PortOne credentials (exit "
        "69 when PortOne gives no clear answer; nothing changes).");
    add_integer(rekey, "CHARGE_ID", o->id, 1, max_id, "charge id")->required();
    rekey->add_option("--customer-uid", o->customer_uid, "the new billing key")->required();
    rekey->footer("Example:\n  billingctl charge rekey 117 --customer-uid cust_42_card2");
    on_parsed<change_options>(rekey, selected, db_access::write, o, run_rekey);

    auto* refund = charge->add_subcommand(
        "refund",
        "Refund a paid charge, whole (default) or --amount KRW of it. The refund is recorded "
        "first and billingd sends it (POST /payments/cancel with PortOne's checksum, the amount "
        "still refundable); an answer that does not say is reconciled by reading the payment "
        "before anything is sent again. A refund larger than what is left, or while another "
        "refund of the charge is open, is refused without a request. --wait N waits up to N "
        "seconds for billingd's outcome (exit 65 if PortOne refused it). The subscription is "
        "not canceled by a refund: cancel it separately if the customer should not be charged "
        "again.");
    add_integer(refund, "CHARGE_ID", o->id, 1, max_id, "charge id")->required();
    add_integer(refund, "--amount", o->amount, 1, domain::max_amount,
                "KRW to refund (default: all that is left)");
    refund->add_option("--reason", o->reason, "why (sent to PortOne), 1-200 characters")
        ->required();
    add_integer(refund, "--wait", o->wait_seconds, 0, 3600,
                "seconds to wait for the outcome (default 0: return at once)");
    refund->footer(
        "Examples:\n  billingctl charge refund 117 --reason \"customer request\" --wait 30\n"
        "  billingctl charge refund 118 --amount 3000 --reason \"partial: late delivery\"");
    on_parsed<change_options>(refund, selected, db_access::write, o, run_refund);

    auto* refunds = charge->add_subcommand(
        "refunds", "Show a charge's refunds (billingd's and the console's) and card changes");
    add_integer(refunds, "CHARGE_ID", o->id, 1, max_id, "charge id")->required();
    on_parsed<change_options>(refunds, selected, db_access::read, o, run_refunds);
}

}  // namespace billingd::ctl
