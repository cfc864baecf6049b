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

    // POST /payments/cancel (refunds). The caller never has two cancels of one imp_uid on the
    // wire at once.
    virtual boost::asio::awaitable<cancel_result> cancel([[maybe_unused]] cancel_request request) {
        cancel_result r;
        r.journal = unsupported("cancel");
        co_return r;
    }

    // GET /payments/{imp_uid}
    virtual boost::asio::awaitable<payment_result> get_payment(
        [[maybe_unused]] std::string imp_uid) {
        payment_result r;
        r.journal = unsupported("payment");
        co_return r;
    }

    // GET /payments/status/cancelled: one page of payments cancelled between `from` and `to`
    // (UNIX s; PortOne allows at most 90 days), for finding refunds made in the console.
    virtual boost::asio::awaitable<payment_page_result> cancelled_payments(
        [[maybe_unused]] std::int64_t from, [[maybe_unused]] std::int64_t to,
        [[maybe_unused]] std::int64_t page) {
        payment_page_result r;
        r.journal = unsupported("cancelled_list");
        co_return r;
    }

  protected:
    // What a client that does not speak an endpoint answers (scripted test fakes): a
    // configuration error, which stops the work that needs it instead of guessing.
    static exchange unsupported(std::string kind) {
        exchange e;
        e.kind = std::move(kind);
        e.result = outcome::config_error;
        e.message = "this PortOne client does not implement " + e.kind;
        return e;
    }
};

}  // namespace billingd::gateway
