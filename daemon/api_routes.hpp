// The HTTP API's requests and answers, without the network: authentication, routing, JSON in
// and out, and problem+json errors (RFC 9457). api_server.cpp (Beast) reads a request, asks
// route() what to do, carries that out on the event loop, and writes the answer.
//
// route() answers reads at once (on billingd's own connection: an API client reads its own
// writes). A change comes back as an api_change for the server's writer, which runs it in its
// next group commit (operations::group_commit): every change is an operation of
// lib/operations, the one implementation billingctl calls too. A billing-key check comes back
// as an api_portone_call, asked on the event loop and answered by customer_answer().
//
// The endpoints, their bodies and every error `type` are documented in api/openapi.yaml;
// tests/e2e/test_api.py checks the server against it. Errors: route() never throws for what a
// client sends; storage::error from a read propagates (the server answers 503).
// Thread safety: the event loop's thread (the store is billingd's connection).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "daemon/config.hpp"
#include "gateway/types.hpp"
#include "scheduler/clock.hpp"
#include "storage/store.hpp"

namespace billingd::operations {
class error;
class idempotency_keys;
}  // namespace billingd::operations

namespace billingd::daemon {

struct api_request {
    std::string method;  // "GET", "POST", ...
    std::string target;  // origin form: "/v1/subscriptions?status=active"
    std::string authorization;
    std::optional<std::string> idempotency_key;
    std::string content_type;
    std::string body;
};

struct api_response {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
};

// A change for the writer's next group commit. `run` is called with the group's transaction
// open and must not await; an operations::error it throws is answered as a problem (its
// savepoint rolled back), a storage::error fails the whole group (every request in it is
// answered 503 and nothing of it is kept).
struct api_change {
    std::function<api_response()> run;
    bool wakes_engine = false;  // it may have created work (a subscription, a refund, a resume)
};

// GET /v1/customers/{customer_uid}: PortOne is asked (get_customer) on the event loop.
struct api_portone_call {
    std::string customer_uid;
};

using api_plan = std::variant<api_response, api_change, api_portone_call>;

class api_routes {
  public:
    api_routes(storage::store& store, const config& cfg, const scheduler::clock& clock);
    ~api_routes();
    api_routes(const api_routes&) = delete;
    api_routes& operator=(const api_routes&) = delete;

    api_plan route(const api_request& request);
    api_response customer_answer(const std::string& customer_uid,
                                 const gateway::customer_result& r);
    // Forgets idempotency keys older than [api] idempotency_hours, a few at a time (the writer
    // calls it inside a group commit now and then). Returns how many.
    int forget_old_keys();

    // application/problem+json.
    static api_response problem(int status, const std::string& type, const std::string& detail,
                                const std::string& field = {});
    static api_response problem(const operations::error& e);

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace billingd::daemon
