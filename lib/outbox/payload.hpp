// What the merchant's application receives: which event rows are merchant events (the type
// table), and the versioned JSON envelope of one event.
//
// The envelope (payload_version 1; README "Events for the merchant's application"):
//   {"id":"evt_<install id>_<event id>","type":"charge.paid","version":1,
//    "created_at":<UNIX s>,"subscription_id":42|null,"charge_id":117|null,"data":{...}}
// `id` is stable (the same bytes for every retry) and unique across databases (the install
// id); `data` is the event row's data object, plus from/to status for subscription changes.
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "storage/records.hpp"

namespace billingd::outbox {

inline constexpr int payload_version = 1;

// The merchant event type of an event row, or nullopt for internal kinds (scheduling,
// recovery, guardrails) that are not delivered. The one table from kind/to_state to type.
std::optional<std::string_view> merchant_type(std::string_view kind,
                                              const std::optional<std::string>& from_state,
                                              const std::optional<std::string>& to_state);
inline std::optional<std::string_view> merchant_type(const storage::event_record& e) {
    return merchant_type(e.kind, e.from_state, e.to_state);
}

// "evt_<install id>_<event id>": the webhook-id header and the envelope's id.
std::string delivery_id(std::string_view install_id, std::int64_t event_id);

// The JSON body (compact, UTF-8) for event `e` of merchant type `type`.
std::string payload(const storage::event_record& e, std::string_view type,
                    std::string_view install_id);

}  // namespace billingd::outbox
