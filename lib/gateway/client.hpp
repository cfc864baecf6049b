// The PortOne client interface the scheduler talks to.
//
// Implementations: http_client (Beast/OpenSSL, http_client.hpp) for PortOne and portone-sim,
// and scripted fakes in tests. Calls never throw for anything PortOne or the network can do:
// every answer, including timeouts and garbage, comes back classified in `exchange::result`.
// They throw only on programming errors or resource exhaustion.
//
// Thread safety: one io_context thread; calls may overlap (bounded by max_in_flight inside
// the implementation); the caller guarantees never two overlapping calls for one merchant_uid.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "gateway/types.hpp"

namespace billingd::gateway {

class client {
  public:
    virtual ~client() = default;

    // POST /subscribe/payments/again
    virtual boost::asio::awaitable<charge_result> charge(charge_request request) = 0;

    // GET /payments/findAll/{merchant_uid} (every page), reduced by the reconciliation recipe.
    virtual boost::asio::awaitable<lookup_result> find_all(std::string merchant_uid) = 0;

    // GET /subscribe/customers/{customer_uid}
    virtual boost::asio::awaitable<customer_result> get_customer(std::string customer_uid) = 0;
};

}  // namespace billingd::gateway
