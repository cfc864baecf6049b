#include "operations/customers.hpp"

#include <fmt/format.h>

#include "operations/operation.hpp"

namespace billingd::operations {

void check_customer_uid(naming names, const std::string& customer_uid) {
    check_text(names, "customer_uid_argument", customer_uid, 1, 80, true);
}

billing_key billing_key_of(const std::string& customer_uid, const gateway::customer_result& r) {
    const auto& j = r.journal;
    if (r.exists) return {customer_uid, r.card_name, r.card_number, r.pg_provider};
    switch (j.result) {
        case gateway::outcome::not_found:
        case gateway::outcome::invalid_billing_key:
            throw error(error_kind::not_found, "billing-key-not-found",
                        fmt::format("PortOne has no billing key for customer_uid '{}' ({})",
                                    customer_uid, j.message.empty() ? "not found" : j.message));
        default:
            throw error(
                error_kind::unavailable, "portone-unavailable",
                fmt::format("PortOne cannot be reached or gave no clear answer (HTTP {}, {}): {}",
                            j.http_status, gateway::to_string(j.result), j.message));
    }
}

}  // namespace billingd::operations
