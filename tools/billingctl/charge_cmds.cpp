// `billingctl charge retry|resolve`: an operator's decisions about a parked charge. Each runs
// in one BEGIN IMMEDIATE transaction that re-reads the charge, checks the transition with
// domain::charge_transition_allowed, writes the charge, its events and (resolve) the
// subscription's next period via scheduler::advance_subscription.
#include <fmt/format.h>

#include "calendar/calendar.hpp"
#include "commands.hpp"
#include "output.hpp"
#include "portone.hpp"
#include "scheduler/decide.hpp"
#include "scheduler/engine.hpp"

namespace billingd::ctl {
namespace {

using domain::charge_state;
using domain::subscription_status;

struct charge_options {
    std::int64_t id = 0;
    bool paid = false;
    bool give_up = false;
    bool check = false;
    std::string imp_uid;
    std::string reason;
};

constexpr std::size_t max_text = 200;  // --imp-uid, --reason

[[noreturn]] void refuse(const storage::charge_record& c, std::string_view why) {
    throw failure(exit_code::data, fmt::format("charge {} ({}) is {}: {}", c.id, c.merchant_uid,
                                               domain::to_string(c.state), why));
}

void move(context& ctx, storage::charge_record& c, charge_state to, std::string kind,
          const std::string& detail) {
    if (!domain::charge_transition_allowed(c.state, to))
        refuse(c, fmt::format("{} is not allowed", domain::to_string(to)));
    const std::string from{domain::to_string(c.state)};
    c.state = to;
    c.updated_at = ctx.now();
    ctx.store().update_charge(c);
    // The payload the merchant's application gets (charge.paid / charge.canceled ...).
    nlohmann::json data = {{"merchant_uid", c.merchant_uid},   {"customer_uid", c.customer_uid},
                           {"amount", c.amount},               {"currency", c.currency},
                           {"period_index", c.period_index},   {"period_start", c.period_start},
                           {"reason", detail}};
    if (c.imp_uid) data["imp_uid"] = *c.imp_uid;
    if (c.paid_at) data["paid_at"] = *c.paid_at;
    ctx.event(c.subscription_id, c.id, std::move(kind), from, std::string{domain::to_string(to)},
              detail, data.dump());
}

void print_charge(context& ctx, std::int64_t id, const std::string& what,
                  const std::vector<std::string>& notes) {
    const auto c = *ctx.store().find_charge(id);
    if (ctx.json()) {
        print_json({{"charge", to_json(c)}, {"notes", notes}});
        return;
    }
    fmt::print("charge {} ({}): {}\n", c.id, c.merchant_uid, what);
    for (const auto& n : notes) fmt::print("  {}\n", n);
}

void run_retry(context& ctx, const charge_options& o) {
    auto tx = ctx.store().begin();
    auto c = ctx.charge(o.id);
    if (c.state != charge_state::parked)
        refuse(c, "only a parked charge can be retried (billingd retries the others itself)");
    const auto s = ctx.store().find_subscription(c.subscription_id);
    if (!s || !domain::is_billable(s->status))
        refuse(c, fmt::format("its subscription is {}: give it up with `charge resolve {} "
                              "--give-up --reason ...` instead",
                              s ? domain::to_string(s->status) : "gone", c.id));
    c.next_action_at = ctx.now();
    c.refusal_count = 0;  // the operator fixed the cause: PortOne gets max_refusals tries again
    c.last_refusal.reset();
    move(ctx, c, charge_state::retry_wait, "charge.retry",
         "operator asked to send again" +
             (c.park_reason ? " (was parked: " + *c.park_reason + ")" : std::string{}));
    tx.commit();
    print_charge(ctx, c.id,
                 "retry_wait; billingd sends it again on its next pass (same "
                 "merchant_uid, so PortOne refuses a second payment)",
                 {});
}

// Appends the lookup's request and answer to the journal (its own transaction: the
// exchange happened whatever the operator's decision turns out to be).
void journal_lookup(context& ctx, const storage::charge_record& c, const gateway::exchange& j) {
    auto tx = ctx.store().begin();
    storage::attempt_record q;
    q.at = ctx.now();
    q.charge_id = c.id;
    q.kind = j.kind.empty() ? "lookup" : j.kind;
    q.phase = "request";
    q.merchant_uid = c.merchant_uid;
    q.request_summary = j.request_summary + " (billingctl charge resolve --check)";
    q.request_written = j.request_written ? 1 : 0;
    const auto request_id = ctx.store().append_attempt(q);
    storage::attempt_record a;
    a.at = ctx.now();
    a.charge_id = c.id;
    a.request_id = request_id;
    a.kind = q.kind;
    a.phase = "answer";
    a.merchant_uid = c.merchant_uid;
    if (j.http_status) a.http_status = j.http_status;
    a.portone_code = j.code;
    a.message = j.message;
    a.outcome = std::string{gateway::to_string(j.result)};
    if (!j.imp_uid.empty()) a.imp_uid = j.imp_uid;
    a.latency_ms = j.latency.count();
    if (!j.raw.empty()) a.raw_answer = j.raw.substr(0, gateway::max_journaled_body);
    ctx.store().append_attempt(a);
    tx.commit();
}

// With --check: PortOne must report this merchant_uid paid, with this imp_uid and amount.
// Returns PortOne's paid_at.
std::int64_t check_at_portone(context& ctx, const storage::charge_record& c,
                              const std::string& imp_uid) {
    const auto cfg = ctx.portone_config();
    const auto r = ask_payments(cfg.portone, c.merchant_uid);
    journal_lookup(ctx, c, r.journal);
    switch (r.verdict) {
        case gateway::outcome::paid:
            break;
        case gateway::outcome::not_found:
            refuse(c, "PortOne has no payment under this merchant_uid; not marked paid");
        case gateway::outcome::declined:
            refuse(c, "PortOne reports only failed or cancelled payments; not marked paid");
        case gateway::outcome::config_error:
            throw failure(
                exit_code::config,
                "PortOne refused the lookup (credentials or account): " + r.journal.message);
        default:
            throw failure(
                exit_code::unavailable,
                fmt::format("PortOne cannot be reached or gave no clear answer ({}, HTTP {}): {}",
                            gateway::to_string(r.verdict), r.journal.http_status,
                            r.journal.message));
    }
    const auto& p = *r.settled;
    if (p.imp_uid != imp_uid)
        refuse(c, fmt::format("PortOne's paid payment is imp_uid={}, not {}; not marked paid",
                              p.imp_uid, imp_uid));
    // The same check billingd makes: amount, currency, customer and merchant_uid as sent.
    if (auto mismatch = scheduler::paid_mismatch(c, p))
        refuse(c, fmt::format("PortOne's payment differs from the charge: {}; not marked paid",
                              *mismatch));
    return p.paid_at > 0 ? p.paid_at : ctx.now();
}

// The period is settled: move the subscription on unless it already moved past this period
// (resumed after a pause) or is over (canceled, ended).
std::string settle_period(context& ctx, const storage::charge_record& c, bool paid) {
    const auto s = ctx.store().find_subscription(c.subscription_id);
    if (!s) return "the subscription is gone";
    if (s->status == subscription_status::canceled || s->status == subscription_status::ended)
        return fmt::format("subscription {} is {}: schedule unchanged", s->id,
                           domain::to_string(s->status));
    if (s->next_period != c.period_index + 1)
        return fmt::format("subscription {} is already at period {}: schedule unchanged", s->id,
                           s->next_period);
    scheduler::advance_subscription(ctx.store(), *s, c.period_index, paid, ctx.now(), ctx.actor());
    const auto after = *ctx.store().find_subscription(s->id);
    if (!after.next_due_at)
        return fmt::format("subscription {} is {} (no further period)", s->id,
                           domain::to_string(after.status));
    return fmt::format("subscription {} ({}): period {} due {}", s->id,
                       domain::to_string(after.status), after.next_period,
                       format_local(after.next_due_at, after.time_zone));
}

void run_resolve(context& ctx, const charge_options& o) {
    // Both are written into the charge and its event rows (and shown on terminals).
    if (o.paid) check_text("--imp-uid", o.imp_uid, 1, max_text, true);
    if (o.give_up) check_text("--reason", o.reason, 1, max_text);
    const auto before = ctx.charge(o.id);
    const bool from_ok =
        before.state == charge_state::parked || (o.paid && before.state == charge_state::unknown);
    if (!from_ok)
        refuse(before, o.paid ? "only a parked or unknown charge can be resolved as paid"
                              : "only a parked charge can be given up");
    std::optional<std::int64_t> paid_at;
    if (o.paid && o.check) paid_at = check_at_portone(ctx, before, o.imp_uid);

    auto tx = ctx.store().begin();
    auto c = ctx.charge(o.id);  // again, inside the transaction: billingd may have moved it
    if (c.state != before.state) refuse(c, "it changed while billingctl was checking; run again");
    std::vector<std::string> notes;
    if (o.paid) {
        if (c.state == charge_state::unknown)  // unknown -> paid is not a transition: park first
            move(ctx, c, charge_state::parked, "charge.parked", "operator resolves it as paid");
        c.imp_uid = o.imp_uid;
        c.paid_at = paid_at.value_or(ctx.now());
        c.next_action_at.reset();
        c.unknown_since.reset();
        c.fail_reason.reset();
        move(ctx, c, charge_state::paid, "charge.resolved",
             fmt::format("operator confirmed paid at PortOne: imp_uid={}{}", o.imp_uid,
                         o.check ? " (checked with findAll)" : " (not checked by billingctl)"));
        notes.push_back(settle_period(ctx, c, true));
    } else {
        c.next_action_at.reset();
        c.fail_reason = o.reason;
        move(ctx, c, charge_state::canceled, "charge.resolved", "operator gave up: " + o.reason);
        notes.push_back(settle_period(ctx, c, false));
    }
    tx.commit();
    print_charge(ctx, c.id, o.paid ? "paid" : "canceled (period not charged)", notes);
}

}  // namespace

void add_charge_commands(CLI::App& app, action& selected) {
    auto* group = app.add_subcommand("charge", "Decide about parked charges");
    group->require_subcommand(1);
    auto o = std::make_shared<charge_options>();

    auto* retry = group->add_subcommand(
        "retry",
        "Send a parked charge again: it becomes retry_wait, due now, and billingd sends it on "
        "its next pass under the same merchant_uid (PortOne refuses a second payment under a "
        "paid merchant_uid). Use it after fixing the cause (e.g. the customer registered a "
        "card again, a guardrail was raised). If the money may have moved, look first "
        "(`charge resolve --paid --check`). Only a parked charge of a billable subscription "
        "can be retried; anything else exits 65 and says why.");
    add_integer(retry, "CHARGE_ID", o->id, 1, max_id, "charge id (1 to 2^53)")->required();
    retry->footer("Example:\n  billingctl charge retry 117");
    on_parsed<charge_options>(retry, selected, db_access::write, o, run_retry);

    auto* resolve = group->add_subcommand(
        "resolve",
        "Settle a charge by hand. --paid --imp-uid IMP: you found the payment at PortOne; the "
        "charge becomes paid with that imp_uid (from parked, or from unknown) and the "
        "subscription moves to its next period. --check looks the merchant_uid up at PortOne "
        "first and refuses (exit 65) unless PortOne reports it paid with that imp_uid and the "
        "charged amount (69 if PortOne cannot be reached). --give-up --reason TEXT: the charge "
        "becomes canceled and the period is settled as NOT paid: the schedule continues with "
        "the next period and the subscription's status is unchanged (cancel or pause it "
        "separately if the customer should not be charged again). Only from parked.");
    auto* paid = resolve->add_flag("--paid", o->paid, "the payment exists at PortOne");
    auto* give_up = resolve->add_flag("--give-up", o->give_up, "do not charge this period");
    auto* imp = resolve->add_option("--imp-uid", o->imp_uid,
                                    "PortOne's imp_uid of the payment (1-200 characters)");
    auto* check =
        resolve->add_flag("--check", o->check, "verify with PortOne (findAll) before marking paid");
    auto* reason = resolve->add_option(
        "--reason", o->reason,
        "why (recorded in the event), 1-200 characters without control characters");
    add_integer(resolve, "CHARGE_ID", o->id, 1, max_id, "charge id (1 to 2^53)")->required();
    paid->excludes(give_up);
    paid->needs(imp);
    imp->needs(paid);
    check->needs(paid);
    give_up->needs(reason);
    reason->needs(give_up);
    resolve->footer(
        "Examples:\n  billingctl charge resolve 117 --paid --imp-uid imp_123456789012 --check\n"
        "  billingctl --actor alice charge resolve 118 --give-up --reason \"card stolen\"");
    on_parsed<charge_options>(resolve, selected, db_access::write, o, run_resolve,
                              [](charge_options& opts) {
                                  if (!opts.paid && !opts.give_up)
                                      throw CLI::RequiredError("--paid or --give-up");
                                  if (opts.give_up && opts.reason.empty())
                                      throw CLI::ValidationError("--reason", "must not be empty");
                              });
}

}  // namespace billingd::ctl
