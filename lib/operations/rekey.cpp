#include "operations/rekey.hpp"

#include <fmt/format.h>

#include <map>

#include "calendar/calendar.hpp"
#include "domain/json_object.hpp"
#include "domain/merchant_uid.hpp"
#include "domain/text.hpp"
#include "storage/change_store.hpp"
#include "storage/store.hpp"

namespace billingd::operations {
namespace {

using domain::charge_state;

[[noreturn]] void conflict(std::string type, const std::string& message) {
    throw error(error_kind::conflict, std::move(type), message);
}

storage::charge_record check(storage::store& store, std::int64_t charge_id,
                             const std::string& new_customer_uid, std::int64_t now,
                             std::int64_t trust_floor) {
    if (auto bad = domain::check_text("customer_uid", new_customer_uid, 1, 80))
        throw error(error_kind::invalid, "invalid-customer-uid", *bad);
    const auto c = store.find_charge(charge_id);
    if (!c)
        throw error(error_kind::not_found, "charge-not-found",
                    fmt::format("no charge with id {}", charge_id));
    if (c->state != charge_state::declined && c->state != charge_state::parked)
        conflict("charge-not-rekeyable",
                 fmt::format("charge {} ({}) is {}: only a declined or parked charge can change "
                             "its card",
                             c->id, c->merchant_uid, domain::to_string(c->state)));
    if (c->customer_uid == new_customer_uid)
        throw error(error_kind::invalid, "same-customer-uid",
                    fmt::format("charge {} already uses customer_uid {}", c->id, new_customer_uid));
    const auto s = store.find_subscription(c->subscription_id);
    if (!s || !domain::is_billable(s->status))
        conflict(
            "subscription-closed",
            fmt::format("subscription {} is {}: its periods are not charged", c->subscription_id,
                        s ? std::string{domain::to_string(s->status)} : "gone"));
    // Every charge request was answered, or was written so long ago that its answer can no
    // longer come (the trust floor): nothing of the old request is still on its way.
    std::map<std::int64_t, bool> answered;  // request row id -> answered
    std::int64_t last_unanswered = 0;
    const auto journal = store.attempts_of_charge(c->id);
    for (const auto& a : journal)
        if (a.phase == "answer" && a.request_id) answered[*a.request_id] = true;
    for (const auto& a : journal)
        if (a.kind == "charge" && a.phase == "request" && !answered.count(a.id))
            last_unanswered = std::max(last_unanswered, a.at);
    if (last_unanswered > 0 && last_unanswered + trust_floor > now)
        conflict(
            "request-may-be-in-progress",
            fmt::format(
                "charge {}: a request written at {} has no answer and may still be "
                "in progress at PortOne; try again after {}",
                c->id,
                calendar::format_utc(calendar::sys_seconds{std::chrono::seconds{last_unanswered}}),
                calendar::format_utc(
                    calendar::sys_seconds{std::chrono::seconds{last_unanswered + trust_floor}})));
    return *c;
}

}  // namespace

storage::charge_record rekey_precheck(storage::store& store, std::int64_t charge_id,
                                      const std::string& new_customer_uid, std::int64_t now,
                                      std::int64_t trust_floor) {
    auto c = check(store, charge_id, new_customer_uid, now, trust_floor);
    storage::change_store changes(store.db());
    if (changes.rekeys_of_charge(c.id).size() >= max_rekeys_per_charge)
        conflict("too-many-rekeys", fmt::format("charge {} has changed its card {} times, the "
                                                "most a period can",
                                                c.id, max_rekeys_per_charge));
    return c;
}

storage::charge_record rekey_charge(storage::store& store, const caller& who,
                                    const std::string& new_customer_uid,
                                    const rekey_evidence& evidence, std::int64_t trust_floor) {
    storage::change_store changes(store.db());
    change_scope tx(store);
    auto c = check(store, evidence.charge.id, new_customer_uid, who.now, trust_floor);
    const auto& seen = evidence.charge;
    if (c.state != seen.state || c.attempt_count != seen.attempt_count ||
        c.lookup_count != seen.lookup_count || c.updated_at != seen.updated_at ||
        c.merchant_uid != seen.merchant_uid)
        conflict("charge-changed",
                 fmt::format("charge {} changed while PortOne was asked (now {}, attempt {}); "
                             "run the command again",
                             c.id, domain::to_string(c.state), c.attempt_count));
    const auto earlier = changes.rekeys_of_charge(c.id);
    if (earlier.size() >= max_rekeys_per_charge)
        conflict("too-many-rekeys", fmt::format("charge {} has changed its card {} times, the "
                                                "most a period can",
                                                c.id, max_rekeys_per_charge));
    const std::string base = earlier.empty() ? c.merchant_uid : earlier.front().old_merchant_uid;
    const std::string merchant_uid = fmt::format("{}k{}", base, earlier.size() + 1);
    if (!domain::is_valid_merchant_uid(merchant_uid))
        conflict("merchant-uid-too-long",
                 fmt::format("charge {}: {} cannot take a rekey suffix (40 characters at most)",
                             c.id, base));
    storage::rekey_record r;
    r.charge_id = c.id;
    r.old_merchant_uid = c.merchant_uid;
    r.old_customer_uid = c.customer_uid;
    r.new_merchant_uid = merchant_uid;
    r.new_customer_uid = new_customer_uid;
    r.old_state = std::string{domain::to_string(c.state)};
    r.lookup = evidence.lookup;
    r.at = who.now;
    r.actor = who.actor;
    changes.rekey(r);
    // A new card starts its own dunning; the attempt numbers of the journal go on.
    const std::string from_state{domain::to_string(c.state)};
    c.merchant_uid = merchant_uid;
    c.customer_uid = new_customer_uid;
    c.state = charge_state::retry_wait;
    c.next_action_at = who.now;
    c.decline_count = 0;
    c.transient_count = 0;
    c.refusal_count = 0;
    c.first_declined_at.reset();
    c.unknown_since.reset();
    c.last_refusal.reset();
    c.park_reason.reset();
    c.fail_reason.reset();
    c.updated_at = who.now;
    store.update_charge(c);
    if (const auto s = store.find_subscription(c.subscription_id);
        s && s->customer_uid != new_customer_uid)
        changes.set_customer_uid(s->id, new_customer_uid, who.now);
    domain::json_object data;
    data.add("old_merchant_uid", r.old_merchant_uid)
        .add("merchant_uid", r.new_merchant_uid)
        .add("old_customer_uid", r.old_customer_uid)
        .add("customer_uid", r.new_customer_uid)
        .add("amount", c.amount)
        .add("period_index", c.period_index)
        .add("lookup", r.lookup);
    record_event(store, who, c.subscription_id, c.id, "charge.rekeyed", from_state, "retry_wait",
                 fmt::format("card changed: {} -> {}; charged again as {} ({})", r.old_customer_uid,
                             r.new_customer_uid, merchant_uid, r.lookup),
                 data.str());
    tx.commit();
    return *store.find_charge(c.id);
}

}  // namespace billingd::operations
