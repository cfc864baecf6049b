// Customer (billing key) behaviours of the simulator.
//
// A behaviour says what PortOne answers when a customer_uid is charged:
//   pay                       every charge is approved
//   decline[:REASON]          every charge is declined with REASON
//   decline_first:N[:REASON]  the first N charge requests are declined, later ones approved
//   unregistered              no billing key: "등록되지 않은 구매자입니다." / 404
//   cap:N                     at most N paid charges per calendar month (Asia/Seoul), then
//                             declined with a monthly-limit reason
// Rules come from exact customer_uids and from prefixes (longest prefix wins; an exact rule
// beats any prefix). A customer_uid matched by no rule is unregistered. DELETE of a customer
// makes it unregistered until a rule for it is set again.
//
// Errors: parse_behaviour and load_rules throw std::invalid_argument.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace portone_sim {

struct behaviour {
    enum class kind { pay, decline, decline_first, unregistered, cap };
    kind type = kind::unregistered;
    std::int64_t n = 0;  // decline_first / cap
    std::string reason;  // decline reason (defaulted when empty)
    std::string text;    // as given
};

behaviour parse_behaviour(std::string_view text);

inline constexpr std::string_view default_decline_reason =
    "[카카오페이] 카드 승인이 거절되었습니다. (한도초과)";
inline constexpr std::string_view cap_decline_reason =
    "[카카오페이] 정기결제 월 승인 한도를 초과했습니다.";

// Per-customer state the simulator keeps.
struct customer_state {
    std::int64_t charge_requests = 0;  // charge requests that reached the card (for decline_first)
    bool deleted = false;
    std::int64_t inserted_ms = 0;
    std::int64_t updated_ms = 0;
};

class customer_book {
  public:
    void set_exact(std::string customer_uid, behaviour b);
    void set_prefix(std::string prefix, behaviour b);

    // Adds rules from `{"customers":{UID:BEHAVIOUR}, "prefixes":{PREFIX:BEHAVIOUR}}`. Customers
    // touched by a new rule start afresh (counters reset, undeleted).
    void load_rules(const nlohmann::json& rules);

    // CLI form `UID=BEHAVIOUR` / `PREFIX=BEHAVIOUR`.
    void add_exact_arg(std::string_view arg);
    void add_prefix_arg(std::string_view arg);

    // The behaviour that applies now; unregistered when no rule matches or the key was deleted.
    behaviour lookup(const std::string& customer_uid) const;
    bool registered(const std::string& customer_uid) const;

    // State for a customer (created on first use with `now_ms` as its insertion time).
    customer_state& state(const std::string& customer_uid, std::int64_t now_ms);

    // Revokes the billing key. Returns false when it was not registered.
    bool remove(const std::string& customer_uid, std::int64_t now_ms);

  private:
    void reset_matching(std::string_view prefix, bool exact);

    std::unordered_map<std::string, behaviour> exact_;
    std::map<std::string, behaviour> prefixes_;
    std::unordered_map<std::string, customer_state> states_;
};

}  // namespace portone_sim
