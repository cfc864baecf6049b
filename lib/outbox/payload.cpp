#include "outbox/payload.hpp"

#include <array>
#include <nlohmann/json.hpp>

namespace billingd::outbox {
namespace {

struct mapping {
    std::string_view kind;
    std::string_view to_state;    // "" matches any
    std::string_view from_state;  // "" matches any
    std::string_view type;        // "" : not a merchant event
};

// First match wins. A subscription.status change back to active/trialing from paused or
// unpaid is reported by the `subscription.resumed` row written in the same transaction, so
// only activations after a trial or dunning are `subscription.activated`.
constexpr std::array<mapping, 29> types{{
    {"subscription.created", "", "", "subscription.created"},
    {"subscription.status", "active", "trialing", "subscription.activated"},
    {"subscription.status", "active", "past_due", "subscription.activated"},
    {"subscription.status", "past_due", "", "subscription.past_due"},
    {"subscription.status", "unpaid", "", "subscription.unpaid"},
    {"subscription.status", "paused", "", "subscription.paused"},
    {"subscription.status", "canceled", "", "subscription.canceled"},
    {"subscription.status", "ended", "", "subscription.ended"},
    {"subscription.resumed", "", "", "subscription.resumed"},
    {"subscription.cancel_at_period_end", "", "", "subscription.cancel_at_period_end"},
    {"subscription.trial_will_end", "", "", "subscription.trial_will_end"},
    {"charge.paid", "", "", "charge.paid"},
    {"charge.declined", "", "", "charge.declined"},
    {"charge.dunning_exhausted", "", "", "charge.dunning_exhausted"},
    {"charge.parked", "", "", "charge.parked"},
    {"charge.canceled", "", "", "charge.canceled"},
    // An operator settling a parked charge (billingctl charge resolve).
    {"charge.resolved", "paid", "", "charge.paid"},
    {"charge.resolved", "canceled", "", "charge.canceled"},
    {"charge.upcoming", "", "", "charge.upcoming"},
    // Changes and refunds (schema 7).
    {"subscription.price_scheduled", "", "", "subscription.price_scheduled"},
    {"subscription.price_changed", "", "", "subscription.price_changed"},
    {"subscription.card_changed", "", "", "subscription.card_changed"},
    {"subscription.schedule_changed", "", "", "subscription.schedule_changed"},
    {"subscription.consent_required", "", "", "subscription.consent_required"},
    {"subscription.consent_given", "", "", "subscription.consent_given"},
    {"subscription.consent_timed_out", "", "", "subscription.consent_timed_out"},
    {"charge.rekeyed", "", "", "charge.rekeyed"},
    {"charge.refunded", "", "", "charge.refunded"},
    {"refund.refused", "", "", "refund.refused"},
}};

bool matches(std::string_view pattern, const std::optional<std::string>& value) {
    return pattern.empty() || (value && *value == pattern);
}

}  // namespace

std::optional<std::string_view> merchant_type(std::string_view kind,
                                              const std::optional<std::string>& from_state,
                                              const std::optional<std::string>& to_state) {
    for (const auto& m : types) {
        if (m.kind != kind || !matches(m.to_state, to_state) || !matches(m.from_state, from_state))
            continue;
        if (m.type.empty()) return std::nullopt;
        return m.type;
    }
    return std::nullopt;
}

std::string delivery_id(std::string_view install_id, std::int64_t event_id) {
    return "evt_" + std::string(install_id) + "_" + std::to_string(event_id);
}

std::string payload(const storage::event_record& e, std::string_view type,
                    std::string_view install_id) {
    using nlohmann::json;
    json data = json::object();
    if (e.data) {
        // Written by billingd or billingctl as an object; anything else (a row written by
        // hand) is passed on as it is rather than dropped.
        // Nesting beyond a sane depth is dropped while parsing (the parser does not recurse,
        // but writing the envelope out would, once per level).
        json parsed = json::parse(
            *e.data, [](int depth, json::parse_event_t, json&) { return depth <= 32; }, false);
        if (parsed.is_object()) {
            data = std::move(parsed);
        } else if (!parsed.is_discarded()) {
            data["value"] = std::move(parsed);
        }
    }
    if (type.starts_with("subscription.")) {
        if (e.to_state && !data.contains("status")) data["status"] = *e.to_state;
        if (e.from_state && !data.contains("previous_status"))
            data["previous_status"] = *e.from_state;
    }
    json body = {
        {"id", delivery_id(install_id, e.id)},
        {"type", type},
        {"version", payload_version},
        {"created_at", e.at},
        {"subscription_id", e.subscription_id ? json(*e.subscription_id) : json(nullptr)},
        {"charge_id", e.charge_id ? json(*e.charge_id) : json(nullptr)},
        {"data", std::move(data)},
    };
    // Invalid UTF-8 in a hand-written row must not stop delivery: replace it.
    return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace billingd::outbox
