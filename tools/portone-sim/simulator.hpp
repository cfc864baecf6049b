// The PortOne V1 simulator's behaviour, as pure functions from request to planned answer.
//
// The transport (server.cpp) calls `handle` when a request has been read, waits `plan.delay`
// on an async timer, then calls `complete` and carries out the returned action (answer,
// reset the connection, or hang). `complete` runs whether or not the client is still there: a
// client that gives up during the latency still gets charged (as with the real PG). With
// record_at::arrival a charge is recorded "ready" in `handle` and settled to paid/failed in
// `complete`, so a lookup during the latency sees "ready"; with record_at::answer the record
// only appears in `complete`, so such a lookup gets 404. A cancel is checked (checksum,
// amount, status) and applied in `complete`, so two overlapping cancels are decided one after
// the other, and a lookup during the latency does not see it yet.
//
// Every authenticated charge, find and findAll request is counted per merchant_uid, every
// cancel and GET /payments/{imp_uid} per imp_uid, with how many were in progress at once (see
// request_counter, imp_uid_counter). A request is in progress from `handle` to the end of
// `complete`; when the completion says `hang`, until the transport calls
// `release(completion.held)` after it has let go of the connection.
//
// Thread safety: none; one io_context thread owns the simulator. Times are UNIX milliseconds
// passed by the caller, so tests control the clock. Nothing here throws for anything a
// client can send; configuration errors (bad fault/behaviour specs) throw
// std::invalid_argument from the setters.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "customers.hpp"
#include "faults.hpp"
#include "ledger.hpp"
#include "tokens.hpp"

namespace portone_sim {

// When a charge's payment record appears: on arrival ("ready", settled later) or only when
// the PG answers.
enum class record_at { arrival, answer };
// Whether a merchant_uid whose payments all failed may be charged again.
enum class failed_uid_reuse { allow, refuse };

// The HTTP status of a refused cancel (code != 0): PortOne's is not documented (inferred).
enum class cancel_refusal_status { http200, http400 };
// The status of a payment after a partial cancel: V1 has no partial status (inferred).
enum class partial_cancel_status { paid, cancelled };

struct sim_modes {  // members named like the flags and the /__sim/modes keys
    portone_sim::record_at record_at = portone_sim::record_at::arrival;
    portone_sim::failed_uid_reuse failed_uid_reuse = portone_sim::failed_uid_reuse::allow;
    portone_sim::cancel_refusal_status cancel_refusal_status =
        portone_sim::cancel_refusal_status::http200;
    portone_sim::partial_cancel_status partial_cancel_status =
        portone_sim::partial_cancel_status::paid;
};

std::string_view to_string(record_at r);
std::string_view to_string(failed_uid_reuse f);
std::string_view to_string(cancel_refusal_status s);  // "200" | "400"
std::string_view to_string(partial_cancel_status s);  // "paid" | "cancelled"
// Parse the names above ("arrival", "answer", "allow", "refuse", "200", "400", "paid",
// "cancelled"); nullopt for anything else.
std::optional<record_at> parse_record_at(std::string_view text);
std::optional<failed_uid_reuse> parse_failed_uid_reuse(std::string_view text);
std::optional<cancel_refusal_status> parse_cancel_refusal_status(std::string_view text);
std::optional<partial_cancel_status> parse_partial_cancel_status(std::string_view text);

struct sim_config {
    std::string imp_key = "sim_key";
    std::string imp_secret = "sim_secret";
    token_config tokens;
    int unknown_customer_code = 1;  // PortOne answered both 1 and -1
    std::uint64_t seed = 0;
    std::size_t oversize_bytes = std::size_t{8} << 20;
    sim_modes modes;
};

struct http_request {
    std::string method;  // "GET", "POST", "DELETE", ...
    std::string target;  // origin-form: path and query
    std::string body;
    std::string content_type;
    std::string authorization;     // Authorization header
    std::string imp_token_header;  // X-ImpTokenHeader header
};

struct http_response {
    int status = 200;
    std::string content_type = "application/json; charset=utf-8";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;  // extra headers
};

enum class transport_action {
    respond,  // write `response`
    reset,    // close the TCP connection abruptly (RST), no answer
    hang,     // never answer; hold the connection until the client leaves or a timeout
};

struct pending_charge {
    std::optional<std::size_t> record;  // recorded on arrival; otherwise `draft` in complete()
    payment_record draft;
    std::int64_t arrived_ms = 0;
    behaviour rule;
    std::int64_t attempt = 0;  // 1-based charge request number for this customer
};

// A cancel as asked, checked and applied in complete() (at the PG's answer).
struct pending_cancel {
    std::string imp_uid;                   // wins over merchant_uid when both are given
    std::string merchant_uid;              // otherwise: its paid payment (else its latest)
    std::optional<std::int64_t> amount;    // none: everything still cancellable
    std::optional<std::int64_t> checksum;  // when given, must equal what is still cancellable
    std::string reason;
    sim_modes modes;  // as when it arrived
};

// A counted request that is still in progress: a charge or lookup of one merchant_uid, or a
// cancel or payment lookup of one imp_uid (then `imp_uid` is set and `merchant_uid` empty).
struct tracked_request {
    std::string merchant_uid;
    bool charge = false;
    std::string imp_uid;
    bool cancel = false;
};

// Requests per merchant_uid, so a test can prove a client never overlaps them.
struct request_counter {
    std::uint64_t charges = 0;  // POST /subscribe/payments/again
    std::uint64_t lookups = 0;  // GET /payments/find and /payments/findAll
    std::uint64_t in_progress_charges = 0;
    std::uint64_t in_progress = 0;  // charges and lookups
    std::uint64_t max_concurrent_charges = 0;
    std::uint64_t max_concurrent = 0;
    std::vector<std::int64_t> charge_arrivals_ms;  // UNIX ms, in arrival order
};

// Requests per imp_uid, so a test can prove a cancel was sent once and never overlapped.
struct imp_uid_counter {
    std::uint64_t cancels = 0;  // POST /payments/cancel
    std::uint64_t lookups = 0;  // GET /payments/{imp_uid}
    std::uint64_t in_progress_cancels = 0;
    std::uint64_t in_progress = 0;
    std::uint64_t max_concurrent_cancels = 0;
    std::uint64_t max_concurrent = 0;
    std::vector<std::int64_t> cancel_arrivals_ms;  // UNIX ms, in arrival order
};

struct plan {
    std::chrono::milliseconds delay{0};  // simulated latency before complete()
    http_response response;  // answer, unless `charge` or `cancel` is carried out in complete()
    std::optional<pending_charge> charge;
    std::optional<pending_cancel> cancel;
    std::optional<fault_kind> after;  // an *_after fault applied in complete()
    std::uint64_t variant = 0;
    std::optional<tracked_request> tracked;
};

struct completion {
    transport_action action = transport_action::respond;
    http_response response;
    // Set with `hang`: the request stays in progress until the transport calls release().
    std::optional<tracked_request> held;
};

class simulator {
  public:
    explicit simulator(sim_config config);

    plan handle(const http_request& request, std::int64_t now_ms);
    completion complete(plan p, std::int64_t now_ms);

    // handle + complete without waiting (tests). A `hang` is released at once.
    completion serve(const http_request& request, std::int64_t now_ms);

    // Ends a request that complete() left held (a hang), once the connection is let go.
    void release(const tracked_request& request);

    customer_book& customers() { return customers_; }
    fault_plan& faults() { return faults_; }
    token_store& tokens() { return tokens_; }
    const ledger& payments() const { return ledger_; }
    const sim_config& config() const { return config_; }
    sim_modes& modes() { return config_.modes; }
    const std::map<std::string, request_counter>& request_counters() const { return counters_; }
    const std::map<std::string, imp_uid_counter>& imp_uid_counters() const { return imp_counters_; }

    nlohmann::json stats_json() const;
    nlohmann::json modes_json() const;
    // `{"merchant_uids":{UID:{...}},"imp_uids":{IMP:{...}}}`; with `merchant_uid` only
    // {"merchant_uids":{that uid}}, with `imp_uid` only {"imp_uids":{that uid}} (zeros if never
    // seen).
    nlohmann::json requests_json(const std::optional<std::string>& merchant_uid,
                                 const std::optional<std::string>& imp_uid = std::nullopt) const;

    // A refund made in PortOne's console (POST /__sim/console-cancel): no checksum, at now_ms.
    // Returns the payment after it, or the refusal's message.
    struct console_cancel_result {
        std::optional<std::size_t> record;
        int status = 200;
        std::string error;
    };
    console_cancel_result console_cancel(const std::string& imp_uid,
                                         const std::string& merchant_uid,
                                         std::optional<std::int64_t> amount, std::string reason,
                                         std::int64_t now_ms);

  private:
    // portone_api.cpp
    void get_token(const http_request& request, bool single_use, std::int64_t now_ms, plan& p);
    void charge(const http_request& request, std::int64_t now_ms, plan& p);
    void find(const std::vector<std::string>& segments,
              const std::map<std::string, std::string>& query, bool all, plan& p);
    void get_payment(const std::string& imp_uid, plan& p);
    void cancel(const http_request& request, plan& p);
    void apply_cancel(pending_cancel& pending, std::int64_t now_ms, plan& p);
    void payments_by_status(const std::string& status,
                            const std::map<std::string, std::string>& query, std::int64_t now_ms,
                            plan& p);
    std::optional<std::size_t> cancel_target(const std::string& imp_uid,
                                             const std::string& merchant_uid) const;
    // The imp_uid a cancel request is counted under (its payment's, when it names only a
    // merchant_uid); nullopt when it names neither.
    std::optional<std::string> cancel_imp_uid(const http_request& request) const;
    void customer(const std::string& method, const std::string& customer_uid, std::int64_t now_ms,
                  plan& p);
    void settle(pending_charge& pending, std::int64_t now_ms, plan& p);
    void track(tracked_request request, std::int64_t now_ms, plan& p);

    // control.cpp
    void control(const http_request& request, const std::vector<std::string>& segments,
                 std::int64_t now_ms, plan& p);

    sim_config config_;
    customer_book customers_;
    fault_plan faults_;
    token_store tokens_;
    ledger ledger_;
    std::map<std::string, std::uint64_t> requests_;
    std::map<std::string, std::uint64_t> responses_;   // "200", ..., "reset", "hang"
    std::map<std::string, request_counter> counters_;  // by merchant_uid
    std::map<std::string, imp_uid_counter> imp_counters_;
};

// Canned answers shared by the handlers.
http_response json_response(int status, std::string body);
http_response html_response(int status);
std::string masked_card_number(const std::string& customer_uid);

inline constexpr std::string_view msg_not_found = "존재하지 않는 결제정보입니다.";
inline constexpr std::string_view msg_unregistered = "등록되지 않은 구매자입니다.";
inline constexpr std::string_view msg_duplicate =
    "이미 주문이 이루어진 건입니다. (동일한 merchant_uid로 결제 또는 취소된 기록이 있습니다)";
inline constexpr std::string_view msg_fully_cancelled = "이미 전액취소된 주문입니다.";
inline constexpr std::string_view msg_cancel_not_paid =
    "결제완료 상태가 아닌 결제건은 취소할 수 없습니다.";
inline constexpr std::string_view msg_cancel_too_much = "취소요청금액이 취소가능금액을 초과합니다.";
inline constexpr std::string_view msg_checksum_mismatch =
    "[checksum] 취소가능금액이 요청하신 checksum과 일치하지 않습니다.";
inline constexpr std::string_view msg_pg_failure =
    "[kakaopay] PG사와의 통신 중 오류가 발생했습니다. 잠시 후 다시 시도해주세요.";

}  // namespace portone_sim
