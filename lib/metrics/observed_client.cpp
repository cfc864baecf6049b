#include "metrics/observed_client.hpp"

namespace billingd::metrics {

// Parameters are taken by value and moved into the awaited call as named objects (the GCC 12
// coroutine pitfall: no braced temporaries in an awaited call).
boost::asio::awaitable<gateway::charge_result> observed_client::charge(
    gateway::charge_request request) {
    gateway::charge_result r = co_await inner_->charge(std::move(request));
    metrics_.observe_request("charge", gateway::to_string(r.journal.result), r.journal.latency);
    co_return r;
}

boost::asio::awaitable<gateway::lookup_result> observed_client::find_all(std::string merchant_uid) {
    gateway::lookup_result r = co_await inner_->find_all(std::move(merchant_uid));
    metrics_.observe_request("lookup", gateway::to_string(r.verdict), r.journal.latency);
    co_return r;
}

boost::asio::awaitable<gateway::customer_result> observed_client::get_customer(
    std::string customer_uid) {
    gateway::customer_result r = co_await inner_->get_customer(std::move(customer_uid));
    metrics_.observe_request("customer", gateway::to_string(r.journal.result), r.journal.latency);
    co_return r;
}

boost::asio::awaitable<gateway::cancel_result> observed_client::cancel(
    gateway::cancel_request request) {
    gateway::cancel_result r = co_await inner_->cancel(std::move(request));
    metrics_.observe_request("cancel", gateway::to_string(r.journal.result), r.journal.latency);
    co_return r;
}

boost::asio::awaitable<gateway::payment_result> observed_client::get_payment(std::string imp_uid) {
    gateway::payment_result r = co_await inner_->get_payment(std::move(imp_uid));
    metrics_.observe_request("payment", gateway::to_string(r.journal.result), r.journal.latency);
    co_return r;
}

boost::asio::awaitable<gateway::payment_page_result> observed_client::cancelled_payments(
    std::int64_t from, std::int64_t to, std::int64_t page) {
    gateway::payment_page_result r = co_await inner_->cancelled_payments(from, to, page);
    metrics_.observe_request("cancelled_list", gateway::to_string(r.journal.result),
                             r.journal.latency);
    co_return r;
}

}  // namespace billingd::metrics
