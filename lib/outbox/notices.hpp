// Notices ahead of time, as events: `charge.upcoming` a plan-dependent number of days before
// each charge, and `subscription.trial_will_end` for a trialing subscription's first paid
// charge. Korean e-commerce rules require telling the customer before a free trial turns
// paid; merchants also send "your card will be charged" reminders.
//
// A notice for period P of a subscription is due from next_due_at(P) - lead until the charge
// is due; it is written once per (subscription, kind, period) — outbox_notices' primary key —
// so restarts and catch-up never repeat it. A charge already due when billingd looks (e.g.
// after downtime) gets no notice: it is not upcoming any more.
//
// Errors: storage::error. Thread safety: one thread, like the connection.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include "storage/sqlite.hpp"

namespace billingd::outbox {

// Days of notice per interval unit; 0 disables notices for that unit. A plan of several
// units (every 3 months) takes its unit's lead.
struct notice_leads {
    int day = 0;
    int week = 1;
    int month = 3;
    int year = 7;
};

struct notice_pass {
    int written = 0;  // events written
    // When the next notice becomes due (nothing else changing), if any.
    std::optional<std::int64_t> next_at;
};

// Writes notices with statements prepared once; the connection must outlive it.
class notice_producer {
  public:
    explicit notice_producer(storage::connection& db);
    ~notice_producer();
    notice_producer(const notice_producer&) = delete;
    notice_producer& operator=(const notice_producer&) = delete;

    // Writes every notice due at `now` (own transactions, in batches).
    notice_pass produce(std::int64_t now, const notice_leads& leads);

  private:
    struct statements;
    storage::connection& db_;
    std::unique_ptr<statements> st_;
};

// One-off convenience (tests, tools): prepares, produces, forgets.
notice_pass produce_notices(storage::connection& db, std::int64_t now, const notice_leads& leads);

}  // namespace billingd::outbox
