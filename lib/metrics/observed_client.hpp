// A gateway::client that forwards every call to another and reports each exchange (endpoint,
// answer class, latency from the exchange's journal record) to process_metrics. It changes
// nothing about the calls: same arguments, same results, no extra awaits that could reorder
// them. Thread safety: as the wrapped client (one io_context thread).
#pragma once

#include <memory>

#include "gateway/client.hpp"
#include "metrics/process_metrics.hpp"

namespace billingd::metrics {

class observed_client final : public gateway::client {
  public:
    observed_client(std::unique_ptr<gateway::client> inner, process_metrics& metrics)
        : inner_(std::move(inner)), metrics_(metrics) {}

    boost::asio::awaitable<gateway::charge_result> charge(gateway::charge_request request) override;
    boost::asio::awaitable<gateway::lookup_result> find_all(std::string merchant_uid) override;
    boost::asio::awaitable<gateway::customer_result> get_customer(
        std::string customer_uid) override;
    boost::asio::awaitable<gateway::cancel_result> cancel(gateway::cancel_request request) override;
    boost::asio::awaitable<gateway::payment_result> get_payment(std::string imp_uid) override;
    boost::asio::awaitable<gateway::payment_page_result> cancelled_payments(
        std::int64_t from, std::int64_t to, std::int64_t page) override;

  private:
    std::unique_ptr<gateway::client> inner_;
    process_metrics& metrics_;
};

}  // namespace billingd::metrics
