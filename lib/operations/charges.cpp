#include "operations/charges.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "operations/format.hpp"
#include "operations/queries.hpp"
#include "scheduler/decide.hpp"
#include "scheduler/engine.hpp"
#include "storage/store.hpp"

namespace billingd::operations {
namespace {

using domain::charge_state;
using domain::subscription_status;

[[noreturn]] void refuse(const storage::charge_record& c, std::string type, std::string_view why) {
    throw error(error_kind::conflict, std::move(type),
                fmt::format("charge {} ({}) is {}: {}", c.id, c.merchant_uid,
                            domain::to_string(c.state), why));
}

void move(storage::store& store, const caller& who, storage::charge_record& c, charge_state to,
          std::string kind, const std::string& detail) {
    if (!domain::charge_transition_allowed(c.state, to))
        refuse(c, "charge-transition-not-allowed",
               fmt::format("{} is not allowed", domain::to_string(to)));
    const std::string from{domain::to_string(c.state)};
    c.state = to;
    c.updated_at = who.now;
    store.update_charge(c);
    // The payload the merchant's application gets (charge.paid / charge.canceled ...).
    nlohmann::json data = {{"merchant_uid", c.merchant_uid},
                           {"customer_uid", c.customer_uid},
                           {"amount", c.amount},
                           {"currency", c.currency},
                           {"period_index", c.period_index},
                           {"period_start", c.period_start},
                           {"reason", detail}};
    if (c.imp_uid) data["imp_uid"] = *c.imp_uid;
    if (c.paid_at) data["paid_at"] = *c.paid_at;
    record_event(store, who, c.subscription_id, c.id, std::move(kind), from,
                 std::string{domain::to_string(to)}, detail, data.dump());
}

// The period is settled: move the subscription on unless it already moved past this period
// (resumed after a pause) or is over (canceled, ended).
std::string settle_period(storage::store& store, const caller& who, const storage::charge_record& c,
                          bool paid) {
    const auto s = store.find_subscription(c.subscription_id);
    if (!s) return "the subscription is gone";
    if (s->status == subscription_status::canceled || s->status == subscription_status::ended)
        return fmt::format("subscription {} is {}: schedule unchanged", s->id,
                           domain::to_string(s->status));
    if (s->next_period != c.period_index + 1)
        return fmt::format("subscription {} is already at period {}: schedule unchanged", s->id,
                           s->next_period);
    scheduler::advance_subscription(store, *s, c.period_index, paid, who.now, who.actor);
    const auto after = *store.find_subscription(s->id);
    if (!after.next_due_at)
        return fmt::format("subscription {} is {} (no further period)", s->id,
                           domain::to_string(after.status));
    return fmt::format("subscription {} ({}): period {} due {}", s->id,
                       domain::to_string(after.status), after.next_period,
                       format_local(after.next_due_at, after.time_zone));
}

}  // namespace

charge_change retry(storage::store& store, const caller& who, std::int64_t charge_id) {
    change_scope tx(store);
    auto c = charge(store, charge_id);
    if (c.state != charge_state::parked)
        refuse(c, "charge-not-retryable",
               "only a parked charge can be retried (billingd retries the others itself)");
    const auto s = store.find_subscription(c.subscription_id);
    if (!s || !domain::is_billable(s->status))
        refuse(c, "charge-not-retryable",
               fmt::format("its subscription is {}: give it up with `charge resolve {} "
                           "--give-up --reason ...` instead",
                           s ? domain::to_string(s->status) : "gone", c.id));
    c.next_action_at = who.now;
    c.refusal_count = 0;  // the cause was fixed: PortOne gets max_refusals tries again
    c.last_refusal.reset();
    move(store, who, c, charge_state::retry_wait, "charge.retry",
         "operator asked to send again" +
             (c.park_reason ? " (was parked: " + *c.park_reason + ")" : std::string{}));
    charge_change r{*store.find_charge(c.id), {}};
    tx.commit();
    return r;
}

void check_resolution(const resolution& r, naming names) {
    // Both are written into the charge and its event rows (and shown on terminals).
    if (r.paid)
        check_text(names, "imp_uid", r.imp_uid, 1, max_resolution_text, true);
    else
        check_text(names, "reason", r.reason, 1, max_resolution_text);
}

void check_resolvable(const storage::charge_record& c, const resolution& r) {
    const bool from_ok =
        c.state == charge_state::parked || (r.paid && c.state == charge_state::unknown);
    if (!from_ok)
        refuse(c, "charge-not-resolvable",
               r.paid ? "only a parked or unknown charge can be resolved as paid"
                      : "only a parked charge can be given up");
}

charge_change resolve(storage::store& store, const caller& who, std::int64_t charge_id,
                      const resolution& r, std::optional<charge_state> expected) {
    change_scope tx(store);
    auto c = charge(store, charge_id);
    if (expected && c.state != *expected)
        refuse(c, "charge-changed", "it changed while billingctl was checking; run again");
    check_resolvable(c, r);
    charge_change out;
    if (r.paid) {
        if (c.state == charge_state::unknown)  // unknown -> paid is not a transition: park first
            move(store, who, c, charge_state::parked, "charge.parked",
                 "operator resolves it as paid");
        c.imp_uid = r.imp_uid;
        c.paid_at = r.paid_at.value_or(who.now);
        c.next_action_at.reset();
        c.unknown_since.reset();
        c.fail_reason.reset();
        move(store, who, c, charge_state::paid, "charge.resolved",
             fmt::format("operator confirmed paid at PortOne: imp_uid={}{}", r.imp_uid,
                         r.checked ? " (checked with findAll)" : " (not checked by billingctl)"));
        out.notes.push_back(settle_period(store, who, c, true));
    } else {
        c.next_action_at.reset();
        c.fail_reason = r.reason;
        move(store, who, c, charge_state::canceled, "charge.resolved",
             "operator gave up: " + r.reason);
        out.notes.push_back(settle_period(store, who, c, false));
    }
    out.charge = *store.find_charge(c.id);
    tx.commit();
    return out;
}

void record_lookup(storage::store& store, const caller& who, const storage::charge_record& c,
                   const gateway::exchange& j, const std::string& note) {
    change_scope tx(store);
    storage::attempt_record q;
    q.at = who.now;
    q.charge_id = c.id;
    q.kind = j.kind.empty() ? "lookup" : j.kind;
    q.phase = "request";
    q.merchant_uid = c.merchant_uid;
    q.request_summary = j.request_summary + " (" + note + ")";
    q.request_written = j.request_written ? 1 : 0;
    const auto request_id = store.append_attempt(q);
    storage::attempt_record a;
    a.at = who.now;
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
    store.append_attempt(a);
    tx.commit();
}

std::optional<std::int64_t> paid_at_portone(const storage::charge_record& c,
                                            const gateway::lookup_result& r,
                                            const std::string& imp_uid) {
    switch (r.verdict) {
        case gateway::outcome::paid:
            break;
        case gateway::outcome::not_found:
            refuse(c, "charge-not-paid-at-portone",
                   "PortOne has no payment under this merchant_uid; not marked paid");
        case gateway::outcome::declined:
            refuse(c, "charge-not-paid-at-portone",
                   "PortOne reports only failed or cancelled payments; not marked paid");
        default:
            throw error(
                error_kind::unavailable, "portone-unavailable",
                fmt::format("PortOne cannot be reached or gave no clear answer ({}, HTTP {}): {}",
                            gateway::to_string(r.verdict), r.journal.http_status,
                            r.journal.message));
    }
    const auto& p = *r.settled;
    if (p.imp_uid != imp_uid)
        refuse(c, "charge-differs-at-portone",
               fmt::format("PortOne's paid payment is imp_uid={}, not {}; not marked paid",
                           p.imp_uid, imp_uid));
    // The same check billingd makes: amount, currency, customer and merchant_uid as sent.
    if (auto mismatch = scheduler::paid_mismatch(c, p))
        refuse(c, "charge-differs-at-portone",
               fmt::format("PortOne's payment differs from the charge: {}; not marked paid",
                           *mismatch));
    return p.paid_at > 0 ? std::optional<std::int64_t>{p.paid_at} : std::nullopt;
}

}  // namespace billingd::operations
