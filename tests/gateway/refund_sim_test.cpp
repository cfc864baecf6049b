// Refunds end to end: the real http_client's cancel, get_payment and cancelled_payments
// against portone-sim, in both of the simulator's inferred modes and under its cancel faults.
// Every case starts its own simulator.
#include <doctest/doctest.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "client_support.hpp"
#include "gateway/http_client.hpp"
#include "sim_support.hpp"

namespace asio = boost::asio;
namespace gw = billingd::gateway;
using client_support::check_no_secrets;
using client_support::run;
using gw::outcome;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

struct refund_session {
    explicit refund_session(std::vector<std::string> extra = {},
                            void (*tweak)(gw::http_client_options&) = nullptr)
        : sim(args(std::move(extra))) {
        gw::http_client_options o;
        o.base_url = sim.http_url();
        o.imp_key = "sim_key";
        o.imp_secret = "sim_secret";
        o.connect_timeout = 2s;
        o.charge_timeout = 1500ms;
        o.lookup_timeout = 2s;
        if (tweak) tweak(o);
        client = gw::make_http_client(io, std::move(o));
    }
    static std::vector<std::string> args(std::vector<std::string> extra) {
        std::vector<std::string> a = {"--port",   "0",        "--seed",         "7",
                                      "--prefix", "pay_=pay", "--hang-seconds", "20"};
        a.insert(a.end(), extra.begin(), extra.end());
        return a;
    }

    // A paid 9900 KRW charge; its imp_uid.
    std::string paid(const std::string& merchant_uid) {
        gw::charge_request r;
        r.customer_uid = "pay_" + merchant_uid;
        r.merchant_uid = merchant_uid;
        r.amount = 9900;
        r.name = "Monthly plan";
        auto result = run(io, client->charge(r));
        REQUIRE(result.journal.result == outcome::paid);
        return result.journal.imp_uid;
    }
    gw::cancel_result cancel(const std::string& imp_uid, std::int64_t amount,
                             std::int64_t checksum) {
        gw::cancel_request r;
        r.imp_uid = imp_uid;
        r.amount = amount;
        r.checksum = checksum;
        r.reason = "고객 요청 환불";
        auto result = run(io, client->cancel(r));
        check_no_secrets(result.journal);
        return result;
    }
    gw::payment_result payment(const std::string& imp_uid) {
        auto result = run(io, client->get_payment(imp_uid));
        check_no_secrets(result.journal);
        return result;
    }
    gw::payment_page_result cancelled(std::int64_t from, std::int64_t to, std::int64_t page) {
        auto result = run(io, client->cancelled_payments(from, to, page));
        check_no_secrets(result.journal);
        return result;
    }
    json requests(const std::string& imp_uid) const {
        return json::parse(
            sim.request("GET", "/__sim/requests?imp_uid=" + imp_uid))["imp_uids"][imp_uid];
    }
    std::int64_t refunded(const std::string& imp_uid) {
        auto p = payment(imp_uid);
        REQUIRE(p.journal.result == outcome::found);
        return p.found->cancel_amount;
    }

    sim_support::sim_process sim;
    asio::io_context io;
    std::unique_ptr<gw::client> client;
};

}  // namespace

TEST_CASE("a refund the sim applies is found with its cancel_history; the rest cancels it") {
    refund_session s;
    const auto imp = s.paid("rf-1");
    auto r = s.cancel(imp, 3000, 9900);
    CHECK(r.journal.result == outcome::found);
    CHECK(r.journal.kind == "cancel");
    CHECK(r.journal.request_summary ==
          "POST /payments/cancel imp_uid=" + imp + " amount=3000 checksum=9900");
    CHECK(r.journal.imp_uid == imp);
    CHECK(r.journal.code == 0);
    REQUIRE(r.answer);
    CHECK(r.answer->status == "paid");
    CHECK(r.answer->cancel_amount == 3000);
    CHECK(r.answer->cancelled_at > 0);
    REQUIRE(r.answer->cancel_history.size() == 1);
    const auto first = r.answer->cancel_history[0];
    CHECK(first.amount == 3000);
    CHECK(first.reason == "고객 요청 환불");
    CHECK(first.cancelled_at == r.answer->cancelled_at);
    CHECK_FALSE(first.pg_tid.empty());
    CHECK_FALSE(first.cancellation_id.empty());
    CHECK_FALSE(first.receipt_url.empty());

    const auto looked = s.payment(imp);
    CHECK(looked.journal.result == outcome::found);
    CHECK(looked.journal.kind == "payment");
    CHECK(looked.journal.request_summary == "GET /payments/" + imp);
    REQUIRE(looked.found);
    CHECK(looked.found->cancel_history.size() == 1);

    r = s.cancel(imp, 6900, 6900);
    CHECK(r.journal.result == outcome::found);
    REQUIRE(r.answer);
    CHECK(r.answer->status == "cancelled");
    CHECK(r.answer->cancel_amount == 9900);
    CHECK(r.answer->cancel_history.size() == 2);
    CHECK(s.requests(imp)["cancels"] == 2);
    CHECK(s.requests(imp)["max_concurrent_cancels"] == 1);
}

TEST_CASE("a refused cancel is refused whether PortOne answers it HTTP 200 or 400") {
    for (const std::string status : {"200", "400"}) {
        CAPTURE(status);
        refund_session s({"--cancel-refusal-status", status});
        const auto imp = s.paid("rf-2");
        auto r = s.cancel(imp, 3000, 9000);  // checksum mismatch
        CHECK(r.journal.result == outcome::refused);
        CHECK(r.journal.http_status == std::stoi(status));
        CHECK(r.journal.code.value_or(0) != 0);
        CHECK(r.journal.message.find("checksum") != std::string::npos);
        CHECK_FALSE(r.answer);
        REQUIRE(s.cancel(imp, 9900, 9900).journal.result == outcome::found);
        r = s.cancel(imp, 1, 1);  // nothing left
        CHECK(r.journal.result == outcome::refused);
        CHECK(s.refunded(imp) == 9900);
    }
}

TEST_CASE("partial_cancel_status cancelled: a partial refund is still found, and the rest too") {
    refund_session s({"--partial-cancel-status", "cancelled"});
    const auto imp = s.paid("rf-3");
    auto r = s.cancel(imp, 3000, 9900);
    CHECK(r.journal.result == outcome::found);
    REQUIRE(r.answer);
    CHECK(r.answer->status == "cancelled");
    CHECK(r.answer->cancel_amount == 3000);
    r = s.cancel(imp, 6900, 6900);
    CHECK(r.journal.result == outcome::found);
    CHECK(r.answer->cancel_amount == 9900);
}

TEST_CASE("an unknown imp_uid is not_found for a cancel and for a payment lookup") {
    refund_session s;
    const auto r = s.cancel("imp_000000000001", 100, 100);
    CHECK(r.journal.result == outcome::not_found);
    CHECK(r.journal.http_status == 404);
    const auto p = s.payment("imp_000000000001");
    CHECK(p.journal.result == outcome::not_found);
    CHECK_FALSE(p.found);
}

TEST_CASE("an answer lost after the refund went through is unknown; the payment shows it") {
    for (const std::string fault : {"cancel:reset_after:1.0:1", "cancel:hang_after:1.0:1"}) {
        CAPTURE(fault);
        refund_session s({"--fault", fault},
                         [](gw::http_client_options& o) { o.charge_timeout = 300ms; });
        const auto imp = s.paid("rf-4");
        const auto r = s.cancel(imp, 3000, 9900);
        CHECK(r.journal.result == outcome::unknown);
        CHECK(r.journal.request_written);
        CHECK(r.journal.http_status == 0);
        CHECK_FALSE(r.answer);
        // The reconciliation the contract asks for: read the payment, and a resend with the
        // same checksum is refused rather than applied twice.
        CHECK(s.refunded(imp) == 3000);
        CHECK(s.cancel(imp, 3000, 9900).journal.result == outcome::refused);
        CHECK(s.refunded(imp) == 3000);
        CHECK(s.requests(imp)["cancels"] == 2);
    }
}

TEST_CASE("5xx before and after the commit are both unknown; the payment tells them apart") {
    refund_session s(
        {"--fault", "cancel:http503_before:1.0:1", "--fault", "cancel:http500_after:1.0:1"});
    const auto imp = s.paid("rf-5");
    auto r = s.cancel(imp, 1000, 9900);
    CHECK(r.journal.result == outcome::unknown);
    CHECK(r.journal.http_status == 503);
    CHECK(s.refunded(imp) == 0);
    r = s.cancel(imp, 1000, 9900);
    CHECK(r.journal.result == outcome::unknown);
    CHECK(r.journal.http_status == 500);
    CHECK(s.refunded(imp) == 1000);
}

TEST_CASE("429 is transient and a PG failure refused; neither refunds anything") {
    refund_session s({"--fault", "cancel:http429:1.0:1", "--fault", "cancel:pg_failure:1.0:1"});
    const auto imp = s.paid("rf-6");
    CHECK(s.cancel(imp, 1000, 9900).journal.result == outcome::transient);
    const auto r = s.cancel(imp, 1000, 9900);
    CHECK(r.journal.result == outcome::refused);
    CHECK(r.journal.code == -1);
    CHECK(s.refunded(imp) == 0);
    CHECK(s.cancel(imp, 1000, 9900).journal.result == outcome::found);
}

TEST_CASE("non-JSON and oversized cancel answers are unknown, with a bounded journal") {
    refund_session s({"--fault", "cancel:non_json:1.0:1", "--fault", "cancel:oversize:1.0:1",
                      "--oversize-bytes", "3000000"},
                     [](gw::http_client_options& o) { o.max_response_bytes = 64 * 1024; });
    const auto imp = s.paid("rf-7");
    auto r = s.cancel(imp, 1000, 9900);
    CHECK(r.journal.result == outcome::unknown);
    CHECK_FALSE(r.journal.code);
    r = s.cancel(imp, 1000, 8900);
    CHECK(r.journal.result == outcome::unknown);
    CHECK(r.journal.message.find("larger than") != std::string::npos);
    CHECK(r.journal.raw.size() <= gw::max_journaled_body);
    CHECK(s.refunded(imp) == 2000);
}

TEST_CASE("a cancel is sent once: a keep-alive connection the server closed is not used") {
    refund_session s({"--idle-timeout", "1"});
    const auto imp = s.paid("rf-8");
    std::this_thread::sleep_for(1500ms);  // the simulator drops the idle connection
    CHECK(s.cancel(imp, 1000, 9900).journal.result == outcome::found);
    CHECK(s.requests(imp)["cancels"] == 1);
}

TEST_CASE("a token that dies early is refreshed once and the cancel goes out once") {
    refund_session s({"--fault", "token:token_expire_early:1.0:1"});
    const auto imp = s.paid("rf-9");                                    // uses the one-shot token
    CHECK(s.cancel(imp, 1000, 9900).journal.result == outcome::found);  // 401, new token, again
    CHECK(s.requests(imp)["cancels"] == 1);  // the 401 was refused unprocessed
    CHECK(s.refunded(imp) == 1000);
}

TEST_CASE("the after_cancel_written hook fires once the cancel left") {
    static int fired = 0;
    static std::string seen;
    refund_session s({}, [](gw::http_client_options& o) {
        o.after_cancel_written = [](std::string_view imp_uid) {
            ++fired;
            seen = imp_uid;
        };
    });
    const auto imp = s.paid("rf-10");
    s.payment(imp);
    CHECK(fired == 0);
    CHECK(s.cancel(imp, 1000, 9900).journal.result == outcome::found);
    CHECK(fired == 1);
    CHECK(seen == imp);
}

TEST_CASE("console refunds are found page by page in the cancelled list") {
    refund_session s({}, [](gw::http_client_options& o) { o.cancelled_page_size = 2; });
    std::vector<std::string> imps;
    for (int i = 0; i < 3; ++i) imps.push_back(s.paid("rf-11-" + std::to_string(i)));
    for (const auto& imp : imps)
        REQUIRE(json::parse(s.sim.request("POST", "/__sim/console-cancel",
                                          json{{"imp_uid", imp}, {"reason", "console"}}.dump()))
                    .value("ok", false));
    s.paid("rf-11-paid");  // not cancelled: not listed

    const std::int64_t now = std::time(nullptr);
    auto page = s.cancelled(now - 3600, now + 3600, 1);
    CHECK(page.journal.result == outcome::found);
    CHECK(page.journal.kind == "cancelled_list");
    CHECK(page.journal.request_summary ==
          "GET /payments/status/cancelled from=" + std::to_string(now - 3600) +
              " to=" + std::to_string(now + 3600) + " page=1");
    CHECK(page.total == 3);
    CHECK(page.list.size() == 2);
    CHECK(page.next == 2);
    std::vector<std::string> seen;
    for (const auto& p : page.list) seen.push_back(p.imp_uid);
    page = s.cancelled(now - 3600, now + 3600, 2);
    CHECK(page.journal.result == outcome::found);
    CHECK(page.next == 0);
    REQUIRE(page.list.size() == 1);
    seen.push_back(page.list[0].imp_uid);
    std::sort(seen.begin(), seen.end());
    CHECK(seen == imps);
    CHECK(page.list[0].cancel_history.at(0).reason == "console");

    // Before the refunds: nothing. A window over 90 days: PortOne refuses it.
    page = s.cancelled(now - 80 * 86400, now - 7200, 1);
    CHECK(page.journal.result == outcome::found);
    CHECK(page.list.empty());
    CHECK(s.cancelled(now - 91 * 86400, now, 1).journal.result == outcome::config_error);
}
