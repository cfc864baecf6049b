#include "outbox/notices.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace billingd::outbox {
namespace {

using storage::statement;

constexpr std::int64_t day_seconds = 86400;
constexpr int batch = 500;

// Candidates: billable, scheduled subscriptions whose next charge is due in (now, now + lead]
// of their unit, and which lack the notice for that period. next_due_at is when next_period
// is due; "+ EXISTS" covers a row whose next_period's charge exists already (the schedule of
// schema versions before 4 pointed at the period of the latest charge until it settled).
constexpr std::string_view candidates_sql = R"(
SELECT id, status, customer_uid, amount, currency, interval_unit, interval_count,
       next_due_at, trial_end_at, period
  FROM (SELECT s.*, s.next_period + EXISTS (SELECT 1 FROM charges c
                                             WHERE c.subscription_id = s.id
                                               AND c.period_index = s.next_period) AS period
          FROM subscriptions s
         WHERE s.next_due_at IS NOT NULL AND s.needs_attention IS NULL
           AND s.status IN ('trialing', 'active', 'past_due')
           AND s.next_due_at > ?1 AND s.next_due_at <= ?1 + 86400 * ?6) AS w
 WHERE w.next_due_at <= ?1 + 86400 * (CASE w.interval_unit WHEN 'day' THEN ?2
                                         WHEN 'week' THEN ?3 WHEN 'month' THEN ?4
                                         ELSE ?5 END)
   AND NOT EXISTS (SELECT 1 FROM outbox_notices n
                    WHERE n.subscription_id = w.id AND n.kind = 'charge.upcoming'
                      AND n.period_index = w.period)
 ORDER BY w.next_due_at, w.id
 LIMIT ?7)";

// The earliest next_due_at of a unit beyond its notice window: when its notice becomes due.
constexpr std::string_view next_sql = R"(
SELECT min(next_due_at) FROM subscriptions
 WHERE next_due_at IS NOT NULL AND needs_attention IS NULL
   AND status IN ('trialing', 'active', 'past_due')
   AND next_due_at > ?1 AND interval_unit = ?2)";

std::optional<std::int64_t> first_int(statement& st) {
    std::optional<std::int64_t> v;
    try {
        if (st.step()) v = st.optional_int64(0);
    } catch (...) {
        st.reset();
        throw;
    }
    st.reset();
    return v;
}

struct candidate {
    std::int64_t id = 0;
    std::string status;
    std::string customer_uid;
    std::int64_t amount = 0;
    std::string currency;
    std::string unit;
    std::int64_t count = 1;
    std::int64_t due_at = 0;
    std::optional<std::int64_t> trial_end_at;
    std::int64_t period = 0;
};

}  // namespace

struct notice_producer::statements {
    explicit statements(storage::connection& db)
        : select(db, candidates_sql),
          claim(db,
                "INSERT INTO outbox_notices (subscription_id, kind, period_index, event_id) "
                "VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING"),
          noticed(db,
                  "SELECT 1 FROM outbox_notices WHERE subscription_id = ?1 AND kind = ?2 AND "
                  "period_index = ?3"),
          insert_event(db,
                       "INSERT INTO events (at, subscription_id, kind, detail, actor, data) "
                       "VALUES (?1, ?2, ?3, ?4, 'billingd', ?5)"),
          next(db, next_sql) {}
    statement select;
    statement claim;
    statement noticed;
    statement insert_event;
    statement next;
};

notice_producer::notice_producer(storage::connection& db)
    : db_(db), st_(std::make_unique<statements>(db)) {}

notice_producer::~notice_producer() = default;

notice_pass produce_notices(storage::connection& db, std::int64_t now, const notice_leads& l) {
    return notice_producer(db).produce(now, l);
}

notice_pass notice_producer::produce(std::int64_t now, const notice_leads& l) {
    auto& db = db_;
    auto& select = st_->select;
    auto& claim = st_->claim;
    auto& noticed = st_->noticed;
    auto& insert_event = st_->insert_event;
    notice_pass out;
    const int max_lead = std::max({l.day, l.week, l.month, l.year});
    if (max_lead <= 0) return out;
    for (;;) {
        storage::write_transaction tx(db);
        std::vector<candidate> rows;
        select.bind(1, now).bind(2, l.day).bind(3, l.week).bind(4, l.month).bind(5, l.year);
        select.bind(6, max_lead).bind(7, batch);
        try {
            while (select.step()) {
                candidate c;
                c.id = select.int64(0);
                c.status = select.text(1);
                c.customer_uid = select.text(2);
                c.amount = select.int64(3);
                c.currency = select.text(4);
                c.unit = select.text(5);
                c.count = select.int64(6);
                c.due_at = select.int64(7);
                c.trial_end_at = select.optional_int64(8);
                c.period = select.int64(9);
                rows.push_back(std::move(c));
            }
        } catch (...) {
            select.reset();
            throw;
        }
        select.reset();
        if (rows.empty()) break;
        for (const auto& c : rows) {
            std::vector<std::string> kinds{"charge.upcoming"};
            if (c.status == "trialing" && c.trial_end_at)
                kinds.emplace_back("subscription.trial_will_end");
            for (const auto& kind : kinds) {
                noticed.bind(1, c.id).bind(2, kind).bind(3, c.period);
                if (first_int(noticed)) continue;
                nlohmann::json data = {{"customer_uid", c.customer_uid},
                                       {"amount", c.amount},
                                       {"currency", c.currency},
                                       {"period_index", c.period},
                                       {"due_at", c.due_at},
                                       {"interval_unit", c.unit},
                                       {"interval_count", c.count}};
                if (kind == "subscription.trial_will_end") data["trial_end_at"] = *c.trial_end_at;
                const std::string detail =
                    "period " + std::to_string(c.period) + " due at " + std::to_string(c.due_at);
                insert_event.bind(1, now).bind(2, c.id).bind(3, kind).bind(4, detail);
                insert_event.bind(
                    5, data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
                insert_event.run();
                claim.bind(1, c.id).bind(2, kind).bind(3, c.period).bind(4, db.last_insert_rowid());
                claim.run();
                ++out.written;
            }
        }
        tx.commit();
        if (static_cast<int>(rows.size()) < batch) break;
    }

    auto& next = st_->next;
    const std::pair<const char*, int> units[] = {
        {"day", l.day}, {"week", l.week}, {"month", l.month}, {"year", l.year}};
    for (const auto& [unit, lead] : units) {
        if (lead <= 0) continue;
        next.bind(1, now + std::int64_t{lead} * day_seconds).bind(2, unit);
        if (auto due = first_int(next)) {
            const std::int64_t at = *due - std::int64_t{lead} * day_seconds;
            out.next_at = out.next_at ? std::min(*out.next_at, at) : at;
        }
    }
    return out;
}

}  // namespace billingd::outbox
