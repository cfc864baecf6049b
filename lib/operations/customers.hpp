// Whether PortOne holds a billing key for a customer_uid (billingctl customer verify, the
// API's GET /customers/{customer_uid}). The caller asks PortOne (operations never talk to the
// network); these functions check the input first and say what the answer means.
//
// Errors (operations::error): invalid (the customer_uid, before anything is sent: it goes
// into PortOne's URL path), not_found "billing-key-not-found", unavailable
// "portone-unavailable". A config_error answer (credentials) is the caller's to report.
#pragma once

#include <string>

#include "gateway/types.hpp"
#include "operations/input.hpp"

namespace billingd::operations {

struct billing_key {
    std::string customer_uid;
    std::string card_name;
    std::string card_number;  // masked by PortOne
    std::string pg_provider;
};

void check_customer_uid(naming names, const std::string& customer_uid);

billing_key billing_key_of(const std::string& customer_uid, const gateway::customer_result& r);

}  // namespace billingd::operations
