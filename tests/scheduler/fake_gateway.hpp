// A scripted PortOne for engine tests: per-customer behaviour, a ledger of payments, and
// checks of the invariants the engine must keep while a request is on the wire.
#pragma once

#include <doctest/doctest.h>

#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gateway/client.hpp"

namespace billingd::testing {

namespace asio = boost::asio;
using gateway::outcome;

struct fake_payment {
    std::string merchant_uid;
    std::string customer_uid;
    std::int64_t amount = 0;
    std::string status;  // paid | failed
    std::string imp_uid;
    std::string currency = "KRW";
    std::int64_t cancel_amount = 0;
    std::vector<gateway::cancellation> cancel_history;
};

class fake_gateway final : public gateway::client {
  public:
    // Behaviour per customer_uid: "pay", "decline", "unregistered", "unknown_after_commit"
    // (pays, then the answer is lost), "lost_before" (never reaches PortOne: transient),
    // "wrong_amount" (pays a different amount), "ready" (stays ready: lookups say unknown).
    std::map<std::string, std::string> behaviour;
    std::vector<fake_payment> ledger;
    std::vector<std::string> calls;  // "charge:<uid>", "lookup:<uid>", "customer:<uid>"
    std::size_t in_flight = 0;
    std::size_t max_in_flight_seen = 0;
    std::set<std::string> on_wire;  // merchant_uids with a request outstanding
    bool concurrent_same_uid = false;
    // Called when a charge request arrives, before it is processed (write-ahead checks).
    std::function<void(const gateway::charge_request&)> on_charge;
    int yields = 3;     // scheduling points per call, so workers interleave
    bool down = false;  // every call answers HTTP 503 without touching the ledger
    // PortOne refusing re-use of a merchant_uid whose payments failed (HTTP 200, code 1).
    bool refuse_failed_reuse = false;
    // Refunds: how the next cancels behave, one word each, consumed in order ("apply" when
    // empty): "apply", "lost_after_apply" (applied, then the answer is lost: unknown),
    // "lost_before" (never reached PortOne: transient), "timeout_before" (unknown, not applied).
    std::vector<std::string> cancel_script;
    int cancelled_list_calls = 0;
    int payment_calls = 0;
    int cancel_applied = 0;

    // A cancel made in PortOne's console (no checksum).
    void console_cancel(const std::string& imp_uid, std::int64_t amount) {
        for (auto& p : ledger)
            if (p.imp_uid == imp_uid) apply_cancel(p, amount, "console refund");
    }

    std::size_t paid_count(const std::string& merchant_uid) const {
        std::size_t n = 0;
        for (const auto& p : ledger)
            if (p.merchant_uid == merchant_uid && p.status == "paid") ++n;
        return n;
    }

    std::size_t failed_count(const std::string& merchant_uid) const {
        std::size_t n = 0;
        for (const auto& p : ledger)
            if (p.merchant_uid == merchant_uid && p.status == "failed") ++n;
        return n;
    }

    asio::awaitable<gateway::charge_result> charge(gateway::charge_request request) override {
        enter(request.merchant_uid);
        calls.push_back("charge:" + request.merchant_uid);
        if (on_charge) on_charge(request);
        co_await interleave();
        gateway::charge_result r;
        r.journal.kind = "charge";
        r.journal.request_written = true;
        r.journal.http_status = 200;
        const auto b = behaviour.count(request.customer_uid) ? behaviour[request.customer_uid]
                                                             : std::string{"pay"};
        if (down) {
            r.journal.http_status = 503;
            r.journal.result = outcome::unknown;
            r.journal.message = "HTTP 503";
        } else if (b == "bad_credentials") {
            r.journal.http_status = 401;
            r.journal.result = outcome::config_error;
            r.journal.message = "HTTP 401 after a token refresh";
        } else if (b == "pg_failure") {
            r.journal.code = -1;
            r.journal.result = outcome::refused;
            r.journal.message = "PG사 통신 중 오류가 발생했습니다";
        } else if (b == "module_missing") {
            r.journal.code = 1;
            r.journal.result = outcome::config_error;
            r.journal.message = "비인증결제모듈 사용정보를 찾을 수 없습니다.";
        } else if (b == "wrong_endpoint") {
            r.journal.http_status = 404;
            r.journal.result = outcome::config_error;
            r.journal.message = "HTTP 404";
        } else if (refuse_failed_reuse && failed_count(request.merchant_uid) > 0 &&
                   paid_count(request.merchant_uid) == 0) {
            r.journal.code = 1;
            r.journal.result = outcome::refused;
            r.journal.message = "이미 주문이 이루어진 건입니다.";
        } else if (b == "lost_before") {
            r.journal.request_written = false;
            r.journal.http_status = 0;
            r.journal.result = outcome::transient;
            r.journal.message = "connection refused";
        } else if (b == "unregistered") {
            r.journal.code = 1;
            r.journal.result = outcome::invalid_billing_key;
            r.journal.message = "등록되지 않은 구매자입니다.";
        } else if (paid_count(request.merchant_uid) > 0) {
            r.journal.code = 1;
            r.journal.result = outcome::refused;
            r.journal.message = "이미 주문이 이루어진 건입니다.";
        } else {
            fake_payment p{request.merchant_uid,
                           request.customer_uid,
                           request.amount,
                           "paid",
                           "imp_" + std::to_string(100000 + ledger.size()),
                           request.currency};
            if (b == "decline" || (b.rfind("decline_first:", 0) == 0 &&
                                   declines_[request.customer_uid]++ < std::stoi(b.substr(14))))
                p.status = "failed";
            if (b == "wrong_amount") p.amount += 1;
            if (b == "ready") p.status = "ready";
            if (b == "decline_lost") p.status = "failed";  // declined, the answer lost
            ledger.push_back(p);
            gateway::payment answer = to_payment(p);
            answer.fail_reason = p.status == "failed" ? "한도초과" : "";
            answer.paid_at = 0;  // billingd records its own clock
            r.journal.code = 0;
            r.journal.imp_uid = p.imp_uid;
            if (b == "unknown_after_commit" || b == "ready" || b == "decline_lost") {
                r.journal.http_status = 0;
                r.journal.code.reset();
                r.journal.result = outcome::unknown;
                r.journal.message = "read timeout";
            } else {
                r.journal.result = p.status == "paid" ? outcome::paid : outcome::declined;
                r.answer = answer;
            }
        }
        leave(request.merchant_uid);
        co_return r;
    }

    asio::awaitable<gateway::lookup_result> find_all(std::string merchant_uid) override {
        enter(merchant_uid);
        calls.push_back("lookup:" + merchant_uid);
        co_await interleave();
        gateway::lookup_result r;
        r.journal.kind = "lookup";
        r.journal.request_written = true;
        r.verdict = outcome::not_found;
        r.journal.http_status = 404;
        if (down) {
            r.verdict = outcome::unknown;
            r.journal.http_status = 503;
            r.journal.result = outcome::unknown;
            leave(merchant_uid);
            co_return r;
        }
        bool ready = false;
        for (const auto& p : ledger) {
            if (p.merchant_uid != merchant_uid) continue;
            gateway::payment answer = to_payment(p);
            r.payments.push_back(answer);
            if (p.status == "paid") {
                r.verdict = outcome::paid;
                r.settled = answer;
            } else if (p.status == "ready") {
                ready = true;
            } else if (r.verdict != outcome::paid) {
                r.verdict = outcome::declined;
                answer.fail_reason = "한도초과";
                r.settled = answer;
            }
        }
        if (ready && r.verdict != outcome::paid) r.verdict = outcome::unknown;
        r.journal.result = r.verdict;
        if (!r.payments.empty()) r.journal.http_status = 200;
        leave(merchant_uid);
        co_return r;
    }

    asio::awaitable<gateway::customer_result> get_customer(std::string customer_uid) override {
        calls.push_back("customer:" + customer_uid);
        co_await interleave();
        gateway::customer_result r;
        r.journal.kind = "customer";
        r.journal.request_written = true;
        const bool unregistered =
            behaviour.count(customer_uid) && behaviour[customer_uid] == "unregistered";
        r.exists = !unregistered;
        r.journal.http_status = unregistered ? 404 : 200;
        r.journal.result = unregistered ? outcome::not_found : outcome::found;
        co_return r;
    }

    asio::awaitable<gateway::cancel_result> cancel(gateway::cancel_request request) override {
        calls.push_back("cancel:" + request.imp_uid);
        co_await interleave();
        gateway::cancel_result r;
        r.journal.kind = "cancel";
        std::string how = "apply";
        if (!cancel_script.empty()) {
            how = cancel_script.front();
            cancel_script.erase(cancel_script.begin());
        }
        if (how == "lost_before") {
            r.journal.result = outcome::transient;
            r.journal.message = "connection refused";
            co_return r;
        }
        r.journal.request_written = true;
        if (how == "timeout_before") {
            r.journal.result = outcome::unknown;
            r.journal.message = "timeout";
            co_return r;
        }
        fake_payment* p = find(request.imp_uid);
        if (!p) {
            r.journal.result = outcome::not_found;
            r.journal.http_status = 404;
            co_return r;
        }
        r.journal.http_status = 200;
        const auto left = p->amount - p->cancel_amount;
        if (p->status == "cancelled" || request.checksum != left || request.amount > left) {
            r.journal.result = outcome::refused;
            r.journal.code = 1;
            r.journal.message =
                p->status == "cancelled" ? "already cancelled" : "checksum mismatch";
            co_return r;
        }
        apply_cancel(*p, request.amount, request.reason);
        ++cancel_applied;
        if (how == "lost_after_apply") {
            r.journal.http_status = 0;
            r.journal.result = outcome::unknown;
            r.journal.message = "read timeout";
            co_return r;
        }
        r.journal.result = outcome::found;
        r.answer = to_payment(*p);
        co_return r;
    }

    asio::awaitable<gateway::payment_result> get_payment(std::string imp_uid) override {
        ++payment_calls;  // not in `calls`: console checks read payments on every check
        co_await interleave();
        gateway::payment_result r;
        r.journal.kind = "payment";
        r.journal.request_written = true;
        if (down) {
            r.journal.http_status = 503;
            r.journal.result = outcome::unknown;
            co_return r;
        }
        if (const auto* p = find(imp_uid)) {
            r.journal.http_status = 200;
            r.journal.result = outcome::found;
            r.found = to_payment(*p);
        } else {
            r.journal.http_status = 404;
            r.journal.result = outcome::not_found;
        }
        co_return r;
    }

    asio::awaitable<gateway::payment_page_result> cancelled_payments(std::int64_t from,
                                                                     std::int64_t to,
                                                                     std::int64_t page) override {
        ++cancelled_list_calls;  // not in `calls`: every pass may check
        co_await interleave();
        gateway::payment_page_result r;
        r.journal.kind = "cancelled_list";
        r.journal.request_written = true;
        r.journal.http_status = 200;
        r.journal.result = outcome::found;
        (void)from;
        (void)to;
        for (const auto& p : ledger)
            if (p.status == "cancelled") r.list.push_back(to_payment(p));
        r.total = static_cast<std::int64_t>(r.list.size());
        co_return r;
    }

  private:
    fake_payment* find(const std::string& imp_uid) {
        for (auto& p : ledger)
            if (p.imp_uid == imp_uid && (p.status == "paid" || p.status == "cancelled")) return &p;
        return nullptr;
    }
    static void apply_cancel(fake_payment& p, std::int64_t amount, const std::string& reason) {
        p.cancel_amount += amount;
        gateway::cancellation c;
        c.amount = amount;
        c.reason = reason;
        c.pg_tid = "tid_" + std::to_string(p.cancel_history.size() + 1);
        c.cancellation_id = p.imp_uid + "_c" + std::to_string(p.cancel_history.size() + 1);
        p.cancel_history.push_back(c);
        if (p.cancel_amount >= p.amount) p.status = "cancelled";
    }
    static gateway::payment to_payment(const fake_payment& p) {
        gateway::payment answer;
        answer.imp_uid = p.imp_uid;
        answer.merchant_uid = p.merchant_uid;
        answer.customer_uid = p.customer_uid;
        answer.status = p.status;
        answer.amount = p.amount;
        answer.currency = p.currency;
        answer.cancel_amount = p.cancel_amount;
        answer.cancel_history = p.cancel_history;
        return answer;
    }
    asio::awaitable<void> interleave() {
        for (int i = 0; i < yields; ++i)
            co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    }
    void enter(const std::string& uid) {
        if (!on_wire.insert(uid).second) concurrent_same_uid = true;
        max_in_flight_seen = std::max(max_in_flight_seen, ++in_flight);
    }
    void leave(const std::string& uid) {
        on_wire.erase(uid);
        --in_flight;
    }
    std::map<std::string, int> declines_;
};

// Never two charge requests for one merchant_uid unless one was answered "already paid".
inline void check_one_request_per_uid(const fake_gateway& gw) {
    std::map<std::string, int> charges;
    for (const auto& c : gw.calls)
        if (c.rfind("charge:", 0) == 0) ++charges[c];
    for (const auto& [call, n] : charges) {
        CAPTURE(call);
        CHECK(n == 1);
    }
}

}  // namespace billingd::testing
