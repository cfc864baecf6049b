// The simulator's payment ledger: every payment record ever created, in creation order.
//
// Records are created in status "ready" when a charge reaches the card (with
// record_at::answer, only when the PG answers) and settled to "paid" or "failed" when the
// simulated PG answers. A paid record may then be cancelled, in parts or whole (`cancel`);
// each cancel is appended to its cancel_history. Nothing is ever deleted. Lookups follow
// PortOne V1: by imp_uid, by merchant_uid (optionally filtered by status) with sorting, and by
// status within a time window.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace portone_sim {

// One cancel of a payment (an entry of the V1 `cancel_history`).
struct cancel_entry {
    std::string pg_tid;
    std::int64_t amount = 0;
    std::int64_t cancelled_ms = 0;
    std::string reason;
    std::string cancellation_id;
    std::string receipt_url;
};

struct payment_record {
    std::uint64_t seq = 0;  // 1-based creation order
    std::string imp_uid;
    std::string merchant_uid;
    std::string customer_uid;
    std::string name;
    std::int64_t amount = 0;
    std::int64_t cancel_amount = 0;
    std::string currency = "KRW";
    std::string status = "ready";  // ready | paid | failed | cancelled
    std::int64_t started_ms = 0;
    std::int64_t paid_ms = 0;
    std::int64_t failed_ms = 0;
    std::int64_t cancelled_ms = 0;
    std::int64_t updated_ms = 0;
    std::string fail_reason;
    std::string pg_tid;
    std::string apply_num;
    std::string card_number;
    std::optional<std::string> buyer_name, buyer_email, buyer_tel, buyer_addr, buyer_postcode;
    std::optional<std::string> custom_data, notice_url;
    std::int64_t card_quota = 0;
    std::vector<cancel_entry> cancel_history;  // oldest first
};

// The V1 payment object (`response` of find / payments/{imp_uid} / again).
nlohmann::json to_payment_json(const payment_record& p);

// Sort keys accepted by `sorting=`: [-]started (default -started), [-]paid, [-]updated.
enum class sort_order { started_desc, started_asc, paid_desc, paid_asc, updated_desc, updated_asc };
std::optional<sort_order> parse_sorting(std::string_view text);

class ledger {
  public:
    explicit ledger(std::uint64_t seed = 0);

    // Creates a "ready" record with a fresh imp_uid and pg_tid; returns its index.
    std::size_t create(payment_record draft, std::int64_t now_ms);

    payment_record& at(std::size_t index) { return records_.at(index); }
    const std::vector<payment_record>& all() const { return records_; }

    const payment_record* by_imp_uid(const std::string& imp_uid) const;

    // Records for a merchant_uid, optionally only one status, in the given order.
    std::vector<const payment_record*> by_merchant_uid(const std::string& merchant_uid,
                                                       const std::string& status,
                                                       sort_order order) const;

    // Cancels `amount` (0 < amount <= amount - cancel_amount, status paid, or cancelled with
    // something left) of a record at now_ms: cancel_amount and cancelled_at grow, an entry is
    // appended to cancel_history, and the status becomes "cancelled" when nothing is left, else
    // `partial_status`. The caller checks the preconditions.
    void cancel(std::size_t index, std::int64_t amount, std::string reason,
                const std::string& partial_status, std::int64_t now_ms);

    // Index of a record, or nullopt.
    std::optional<std::size_t> index_of(const std::string& imp_uid) const;

    // Records with `status` ("all": any) whose time of that status (paid_at, failed_at,
    // cancelled_at; started_at for ready and all) lies within [from_s, to_s], in `order`.
    std::vector<const payment_record*> by_status(const std::string& status, std::int64_t from_s,
                                                 std::int64_t to_s, sort_order order) const;

    // True when a record for merchant_uid is paid or cancelled (a new charge is refused).
    bool merchant_uid_taken(const std::string& merchant_uid) const;

    // Paid charges of a customer in the calendar month (Asia/Seoul) containing now_ms.
    std::int64_t paid_in_month(const std::string& customer_uid, std::int64_t now_ms) const;

    nlohmann::json to_json() const;

  private:
    std::vector<payment_record> records_;
    std::unordered_map<std::string, std::size_t> by_imp_;
    std::unordered_map<std::string, std::vector<std::size_t>> by_merchant_;
    std::unordered_map<std::string, std::vector<std::size_t>> by_customer_;
    std::uint64_t imp_base_;
};

}  // namespace portone_sim
