// Rows of the billingd tables as plain structs (see schema/0001_initial.sql for meaning).
// Instants are UNIX seconds (UTC).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "domain/states.hpp"

namespace billingd::storage {

struct subscription_record {
    std::int64_t id = 0;
    std::string uid_key;  // set by the database at insert (column DEFAULT); part of merchant_uid
    std::string customer_uid;
    std::int64_t amount = 0;
    std::string currency = "KRW";
    std::string order_name;
    std::string interval_unit = "month";
    std::int64_t interval_count = 1;
    std::string anchor_date;  // YYYY-MM-DD, local
    std::string charge_time = "10:00";
    std::string time_zone = "Asia/Seoul";
    domain::subscription_status status = domain::subscription_status::active;
    std::optional<std::int64_t> trial_end_at;
    bool cancel_at_period_end = false;
    std::optional<std::int64_t> max_periods;
    std::optional<std::string> buyer_name;
    std::optional<std::string> buyer_email;
    std::optional<std::string> buyer_tel;
    std::int64_t next_period = 0;
    std::optional<std::int64_t> next_due_at;
    std::optional<std::string> needs_attention;
    std::int64_t created_at = 0;
    std::int64_t updated_at = 0;
    // The earliest period with a price_schedule entry not yet applied.
    std::optional<std::int64_t> price_change_period;
    // The period that starts on anchor_date at charge_time (0 until a re-anchoring change).
    std::int64_t anchor_period = 0;
    // The period held until the customer consents, and since when (require_consent).
    std::optional<std::int64_t> consent_period;
    std::optional<std::int64_t> consent_since;
    // Read by store::due_subscriptions only: the state of the charge of the period before
    // next_period, if it has one (the next period waits while it is open).
    std::optional<domain::charge_state> previous_charge;
};

struct charge_record {
    std::int64_t id = 0;
    std::int64_t subscription_id = 0;
    std::int64_t period_index = 0;
    std::int64_t period_start = 0;
    std::string merchant_uid;
    std::string customer_uid;
    std::int64_t amount = 0;
    std::string currency = "KRW";
    std::string order_name;
    domain::charge_state state = domain::charge_state::scheduled;
    std::int64_t attempt_count = 0;
    std::int64_t decline_count = 0;
    std::int64_t transient_count = 0;
    std::int64_t lookup_count = 0;
    std::optional<std::int64_t> first_declined_at;
    std::optional<std::int64_t> unknown_since;
    std::optional<std::int64_t> next_action_at;
    std::optional<std::string> imp_uid;
    std::optional<std::int64_t> paid_at;
    std::optional<std::string> fail_reason;
    std::optional<std::string> park_reason;
    std::int64_t created_at = 0;
    std::int64_t updated_at = 0;
    std::int64_t refusal_count = 0;
    std::optional<std::string> last_refusal;  // PortOne's message, until a lookup decides
    std::int64_t refunded_amount = 0;  // refunds applied at PortOne (billingd's and the console's)
};

// One refund of a paid charge (table `refunds`, schema/0007): requested by an operator or the
// API and carried out by billingd (source "billingd"), or found in PortOne (source "console").
struct refund_record {
    std::int64_t id = 0;
    std::int64_t charge_id = 0;
    std::int64_t subscription_id = 0;
    std::string source = "billingd";  // billingd | console
    // requested -> sending -> refunded | refused | unknown -> (lookup) ... ; parked for an operator
    std::string state = "requested";
    std::int64_t amount = 0;
    std::int64_t checksum = 0;  // cancellable amount before this refund (PortOne's checksum)
    std::string reason;
    std::string requested_by;
    std::int64_t requested_at = 0;
    std::int64_t attempt_count = 0;
    std::int64_t lookup_count = 0;
    std::optional<std::int64_t> next_action_at;
    std::optional<std::int64_t> refunded_at;  // PortOne's cancelled_at
    std::optional<std::string> pg_tid;
    std::optional<std::string> cancellation_id;
    std::optional<std::string> receipt_url;
    std::optional<std::string> fail_reason;
    std::int64_t updated_at = 0;
};

// One entry of a subscription's price schedule (table `price_schedule`): the amount and order
// name that apply from `from_period` on, until a later entry.
struct price_entry {
    std::int64_t id = 0;
    std::int64_t subscription_id = 0;
    std::int64_t from_period = 0;
    std::int64_t amount = 0;
    std::string order_name;
    std::string created_by;
    std::int64_t created_at = 0;
    std::optional<std::int64_t> applied_at;  // when a charge first used it
};

// The database's identity (table `install`): the first part of every merchant_uid.
struct install_record {
    std::optional<std::string> install_id;
    std::int64_t created_at = 0;
    std::optional<std::int64_t> live_since;  // first run on the real clock
};

struct attempt_record {
    std::int64_t id = 0;
    std::int64_t at = 0;
    std::optional<std::int64_t> charge_id;
    std::optional<std::int64_t> request_id;
    std::string kind;   // charge | lookup | customer | token
    std::string phase;  // request | answer
    std::optional<std::string> merchant_uid;
    std::optional<std::int64_t> attempt_number;
    std::optional<std::int64_t> amount;
    std::optional<std::string> request_summary;
    std::optional<std::int64_t> request_written;
    std::optional<std::int64_t> http_status;
    std::optional<std::int64_t> portone_code;
    std::optional<std::string> message;
    std::optional<std::string> outcome;
    std::optional<std::string> imp_uid;
    std::optional<std::int64_t> latency_ms;
    std::optional<std::string> raw_answer;
};

struct event_record {
    std::int64_t id = 0;
    std::int64_t at = 0;
    std::optional<std::int64_t> subscription_id;
    std::optional<std::int64_t> charge_id;
    std::string kind;
    std::optional<std::string> from_state;
    std::optional<std::string> to_state;
    std::optional<std::string> detail;
    std::string actor = "billingd";
    std::optional<std::string> data;  // JSON object: the payload the outbox delivers
};

}  // namespace billingd::storage
