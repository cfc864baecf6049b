// `billingctl charge retry|resolve`: an operator's decisions about a parked charge, carried
// out by operations/charges.hpp (one transaction each that re-reads the charge); --check asks
// PortOne first, here, and the operation says what the answer means.
#include <fmt/format.h>

#include "commands.hpp"
#include "operations/charges.hpp"
#include "output.hpp"
#include "portone.hpp"

namespace billingd::ctl {
namespace {

struct charge_options {
    std::int64_t id = 0;
    bool paid = false;
    bool give_up = false;
    bool check = false;
    std::string imp_uid;
    std::string reason;
};

void print_charge(context& ctx, const operations::charge_change& r, const std::string& what) {
    const auto& c = r.charge;
    if (ctx.json()) {
        print_json({{"charge", to_json(c)}, {"notes", r.notes}});
        return;
    }
    fmt::print("charge {} ({}): {}\n", c.id, c.merchant_uid, what);
    for (const auto& n : r.notes) fmt::print("  {}\n", n);
}

void run_retry(context& ctx, const charge_options& o) {
    print_charge(ctx, operations::retry(ctx.store(), ctx.caller(), o.id),
                 "retry_wait; billingd sends it again on its next pass (same "
                 "merchant_uid, so PortOne refuses a second payment)");
}

// With --check: PortOne must report this merchant_uid paid, with this imp_uid and amount.
// Returns PortOne's paid_at, if it gave one. The exchange is journaled whatever it says.
std::optional<std::int64_t> check_at_portone(context& ctx, const storage::charge_record& c,
                                             const std::string& imp_uid) {
    const auto cfg = ctx.portone_config();
    const auto r = ask_payments(cfg.portone, c.merchant_uid);
    operations::record_lookup(ctx.store(), ctx.caller(), c, r.journal,
                              "billingctl charge resolve --check");
    if (r.verdict == gateway::outcome::config_error)
        throw failure(exit_code::config,
                      "PortOne refused the lookup (credentials or account): " + r.journal.message);
    return operations::paid_at_portone(c, r, imp_uid);
}

void run_resolve(context& ctx, const charge_options& o) {
    operations::resolution r;
    r.paid = o.paid;
    r.imp_uid = o.imp_uid;
    r.reason = o.reason;
    r.checked = o.paid && o.check;
    operations::check_resolution(r, operations::naming::options);
    const auto before = ctx.charge(o.id);
    operations::check_resolvable(before, r);
    if (r.checked) r.paid_at = check_at_portone(ctx, before, o.imp_uid);
    // The charge must still be as it was while PortOne was asked: billingd may have moved it.
    const auto done = operations::resolve(ctx.store(), ctx.caller(), o.id, r, before.state);
    print_charge(ctx, done, o.paid ? "paid" : "canceled (period not charged)");
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
