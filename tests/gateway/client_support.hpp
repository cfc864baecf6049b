// What the tests of http_client against portone-sim share: running one call to completion, and
// the check that no journaled field carries a credential.
#pragma once

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <string>

#include "gateway/types.hpp"

namespace client_support {

template <class T>
T run(boost::asio::io_context& io, boost::asio::awaitable<T> task) {
    auto result = boost::asio::co_spawn(io, std::move(task), boost::asio::use_future);
    io.restart();
    io.run();
    return result.get();
}

// The simulator's key and secret, and any access token, appear in no field of an exchange.
inline void check_no_secrets(const billingd::gateway::exchange& x) {
    for (const std::string* field : {&x.kind, &x.request_summary, &x.message, &x.raw, &x.imp_uid})
        for (const char* secret : {"sim_key", "sim_secret", "access_token"})
            CHECK(field->find(secret) == std::string::npos);
}

}  // namespace client_support
