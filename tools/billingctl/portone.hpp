// billingctl's calls to PortOne, run to completion on a private io_context. This header keeps
// Asio out of the command files; portone.cpp is billingctl's only Asio translation unit
// (Beast and OpenSSL stay inside the gateway library).
//
// Errors: failure(exit_code::config) for a bad base_url or ca_file; otherwise the classified
// result of gateway/client.hpp, never an exception for anything the network can do.
#pragma once

#include <string>

#include "gateway/http_client.hpp"
#include "gateway/types.hpp"

namespace billingd::ctl {

gateway::customer_result ask_customer(const gateway::http_client_options& options,
                                      std::string customer_uid);
gateway::lookup_result ask_payments(const gateway::http_client_options& options,
                                    std::string merchant_uid);

}  // namespace billingd::ctl
