#include "domain/states.hpp"

#include <array>
#include <utility>

namespace billingd::domain {
namespace {

constexpr std::array subscription_names{
    std::pair{subscription_status::trialing, std::string_view{"trialing"}},
    std::pair{subscription_status::active, std::string_view{"active"}},
    std::pair{subscription_status::past_due, std::string_view{"past_due"}},
    std::pair{subscription_status::unpaid, std::string_view{"unpaid"}},
    std::pair{subscription_status::paused, std::string_view{"paused"}},
    std::pair{subscription_status::canceled, std::string_view{"canceled"}},
    std::pair{subscription_status::ended, std::string_view{"ended"}},
};

constexpr std::array charge_names{
    std::pair{charge_state::scheduled, std::string_view{"scheduled"}},
    std::pair{charge_state::sending, std::string_view{"sending"}},
    std::pair{charge_state::paid, std::string_view{"paid"}},
    std::pair{charge_state::declined, std::string_view{"declined"}},
    std::pair{charge_state::unknown, std::string_view{"unknown"}},
    std::pair{charge_state::reconciling, std::string_view{"reconciling"}},
    std::pair{charge_state::retry_wait, std::string_view{"retry_wait"}},
    std::pair{charge_state::parked, std::string_view{"parked"}},
    std::pair{charge_state::skipped, std::string_view{"skipped"}},
    std::pair{charge_state::canceled, std::string_view{"canceled"}},
};

template <typename Table, typename Value>
std::string_view name_of(const Table& table, Value v) {
    for (const auto& [value, name] : table)
        if (value == v) return name;
    return "?";
}

template <typename Value, typename Table>
std::optional<Value> value_of(const Table& table, std::string_view text) {
    for (const auto& [value, name] : table)
        if (name == text) return value;
    return std::nullopt;
}

}  // namespace

std::string_view to_string(subscription_status s) {
    return name_of(subscription_names, s);
}
std::string_view to_string(charge_state s) {
    return name_of(charge_names, s);
}

std::optional<subscription_status> parse_subscription_status(std::string_view text) {
    return value_of<subscription_status>(subscription_names, text);
}
std::optional<charge_state> parse_charge_state(std::string_view text) {
    return value_of<charge_state>(charge_names, text);
}

bool is_final(charge_state s) {
    return s == charge_state::paid || s == charge_state::skipped || s == charge_state::canceled;
}

bool is_in_doubt(charge_state s) {
    return s == charge_state::sending || s == charge_state::unknown ||
           s == charge_state::reconciling;
}

bool charge_transition_allowed(charge_state from, charge_state to) {
    using enum charge_state;
    switch (from) {
        case scheduled:
            return to == sending || to == skipped || to == canceled || to == parked;
        case sending:
            // retry_wait only when the request provably never left.
            return to == paid || to == declined || to == unknown || to == retry_wait ||
                   to == parked;
        case declined:
            // dunning resend, exhausted (canceled), an operator's decision, a lookup before
            // canceling a period the subscription moved past, or a card change (retry_wait).
            return to == sending || to == canceled || to == parked || to == reconciling ||
                   to == retry_wait;
        case unknown:
            return to == reconciling || to == parked;
        case reconciling:
            // only a lookup that found nothing (or only failures) allows a resend later, or a
            // cancel when the subscription no longer expects the period.
            return to == paid || to == declined || to == unknown || to == retry_wait ||
                   to == parked || to == canceled;
        case retry_wait:
            // reconciling: an operator retried a charge that had been in doubt.
            return to == sending || to == reconciling || to == canceled || to == parked;
        case parked:
            // operator: confirmed paid at PortOne, retry after checking, or give up.
            return to == paid || to == retry_wait || to == canceled;
        case paid:
        case skipped:
        case canceled:
            return false;
    }
    return false;
}

bool subscription_transition_allowed(subscription_status from, subscription_status to) {
    using enum subscription_status;
    if (from == to) return false;
    switch (from) {
        case trialing:
            return to == active || to == past_due || to == paused || to == canceled || to == ended;
        case active:
            return to == past_due || to == paused || to == canceled || to == ended;
        case past_due:
            return to == active || to == unpaid || to == canceled || to == paused || to == ended;
        case unpaid:
            return to == active || to == canceled;
        case paused:
            return to == active || to == trialing || to == canceled;
        case canceled:
        case ended:
            return false;
    }
    return false;
}

bool is_billable(subscription_status s) {
    using enum subscription_status;
    return s == trialing || s == active || s == past_due;
}

}  // namespace billingd::domain
