#include "portone.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <exception>
#include <optional>
#include <stdexcept>

#include "context.hpp"

namespace billingd::ctl {
namespace {

template <typename Result, typename Call>
Result run(const gateway::http_client_options& options, Call call) {
    boost::asio::io_context io;
    std::unique_ptr<gateway::client> client;
    try {
        client = gateway::make_http_client(io, options);
    } catch (const std::invalid_argument& e) {
        throw failure(exit_code::config, std::string{"[portone] "} + e.what());
    }
    std::optional<Result> result;
    std::exception_ptr error;
    boost::asio::co_spawn(io, call(*client), [&](std::exception_ptr e, Result r) {
        if (e)
            error = e;
        else
            result = std::move(r);
    });
    io.run();
    if (error) std::rethrow_exception(error);
    return std::move(*result);
}

}  // namespace

gateway::customer_result ask_customer(const gateway::http_client_options& options,
                                      std::string customer_uid) {
    return run<gateway::customer_result>(
        options, [&](gateway::client& c) { return c.get_customer(customer_uid); });
}

gateway::lookup_result ask_payments(const gateway::http_client_options& options,
                                    std::string merchant_uid) {
    return run<gateway::lookup_result>(
        options, [&](gateway::client& c) { return c.find_all(merchant_uid); });
}

}  // namespace billingd::ctl
