// Refund requests: see refunds.hpp. billingd carries them out (lib/scheduler/refunds.cpp).
#include "operations/refunds.hpp"

#include <fmt/format.h>

#include "domain/json_object.hpp"
#include "domain/text.hpp"
#include "storage/change_store.hpp"
#include "storage/store.hpp"

namespace billingd::operations {

storage::refund_record request_refund(storage::store& store, const caller& who,
                                      std::int64_t charge_id, const refund_request& request) {
    if (auto bad = domain::check_text("reason", request.reason, 1, 200))
        throw error(error_kind::invalid, "invalid-reason", *bad);
    if (request.amount && *request.amount <= 0)
        throw error(error_kind::invalid, "invalid-amount",
                    fmt::format("amount: {} is not a positive number of KRW", *request.amount));
    storage::change_store changes(store.db());
    change_scope tx(store);
    const auto c = store.find_charge(charge_id);
    if (!c)
        throw error(error_kind::not_found, "charge-not-found",
                    fmt::format("no charge with id {}", charge_id));
    if (c->state != domain::charge_state::paid)
        throw error(error_kind::conflict, "charge-not-paid",
                    fmt::format("charge {} ({}) is {}: only a paid charge can be refunded", c->id,
                                c->merchant_uid, domain::to_string(c->state)));
    if (!c->imp_uid)
        throw error(error_kind::conflict, "charge-not-paid",
                    fmt::format("charge {} ({}) is paid but has no PortOne imp_uid to refund "
                                "(resolved by hand without one?)",
                                c->id, c->merchant_uid));
    if (const auto open = changes.open_refund_of_charge(c->id))
        throw error(error_kind::conflict, "refund-in-progress",
                    fmt::format("refund {} of charge {} is still {}: wait for its outcome "
                                "(billingctl charge show {})",
                                open->id, c->id, open->state, c->id));
    const std::int64_t left = c->amount - c->refunded_amount;
    if (left <= 0)
        throw error(error_kind::conflict, "refund-exceeds-paid",
                    fmt::format("charge {} is fully refunded ({} KRW)", c->id, c->refunded_amount));
    const std::int64_t amount = request.amount.value_or(left);
    if (amount > left)
        throw error(error_kind::conflict, "refund-exceeds-paid",
                    fmt::format("refund of {} KRW is more than is left of charge {}: {} paid, {} "
                                "refunded, {} left",
                                amount, c->id, c->amount, c->refunded_amount, left));
    storage::refund_record r;
    r.charge_id = c->id;
    r.subscription_id = c->subscription_id;
    r.source = "billingd";
    r.state = "requested";
    r.amount = amount;
    r.checksum = left;
    r.reason = request.reason;
    r.requested_by = who.actor;
    r.requested_at = who.now;
    r.next_action_at = who.now;
    r.updated_at = who.now;
    r.id = changes.insert_refund(r);
    domain::json_object data;
    data.add("refund_id", r.id)
        .add("merchant_uid", c->merchant_uid)
        .add("imp_uid", *c->imp_uid)
        .add("amount", amount)
        .add("currency", c->currency)
        .add("paid_amount", c->amount)
        .add("refunded_before", c->refunded_amount)
        .add("reason", r.reason);
    record_event(store, who, c->subscription_id, c->id, "refund.requested", std::nullopt,
                 "requested", fmt::format("refund {}: {} KRW: {}", r.id, amount, r.reason),
                 data.str());
    tx.commit();
    return r;
}

std::vector<storage::refund_record> refunds_of_charge(storage::store& store,
                                                      std::int64_t charge_id) {
    if (!store.find_charge(charge_id))
        throw error(error_kind::not_found, "charge-not-found",
                    fmt::format("no charge with id {}", charge_id));
    return storage::change_store(store.db()).refunds_of_charge(charge_id);
}

}  // namespace billingd::operations
