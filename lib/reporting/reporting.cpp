#include "reporting/reporting.hpp"

#include <date/tz.h>

#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "calendar/calendar.hpp"

namespace billingd::reporting {
namespace {

struct offset_row {
    std::int64_t from;
    std::int64_t until;
    std::int64_t offset;
    bool operator==(const offset_row&) const = default;
};

constexpr std::int64_t first_instant = std::numeric_limits<std::int64_t>::min() + 1;
constexpr std::int64_t last_instant = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t day_seconds = 86400;

// Offsets from 1900 to 2100; the first and last interval extend to the ends of time.
std::vector<offset_row> offsets_of(const date::time_zone* zone) {
    using namespace std::chrono;
    const sys_seconds begin = sys_days{std::chrono::year{1900} / 1 / 1};
    const sys_seconds end = sys_days{std::chrono::year{2100} / 1 / 1};
    std::vector<offset_row> rows;
    sys_seconds t = begin;
    while (t < end) {
        const date::sys_info info = zone->get_info(t);
        const std::int64_t offset = info.offset.count();
        const std::int64_t from = rows.empty() ? first_instant : t.time_since_epoch().count();
        const bool last = info.end >= end;
        const std::int64_t until = last ? last_instant : info.end.time_since_epoch().count();
        // Adjacent intervals with one offset (an abbreviation or DST-flag change) merge.
        if (!rows.empty() && rows.back().offset == offset) {
            rows.back().until = until;
        } else {
            rows.push_back({from, until, offset});
        }
        if (last) break;
        t = info.end;
    }
    return rows;
}

std::vector<offset_row> stored_offsets(storage::connection& db) {
    storage::statement st(db,
                          "SELECT valid_from, valid_until, utc_offset FROM reporting_offsets "
                          "ORDER BY valid_from");
    std::vector<offset_row> rows;
    while (st.step()) rows.push_back({st.int64(0), st.int64(1), st.int64(2)});
    return rows;
}

std::optional<std::string> stored_zone(storage::connection& db) {
    storage::statement st(db, "SELECT name FROM reporting_zone");
    if (!st.step()) return std::nullopt;
    return st.text(0);
}

std::int64_t unix_of(std::chrono::sys_seconds t) {
    return t.time_since_epoch().count();
}

}  // namespace

bool write_reporting_zone(storage::connection& db, std::string_view zone_name,
                          const date::time_zone* zone, std::int64_t now) {
    const auto offsets = offsets_of(zone);
    if (stored_zone(db) == zone_name && stored_offsets(db) == offsets) return false;

    storage::write_transaction tx(db);
    db.exec("DELETE FROM reporting_offsets");
    {
        storage::statement insert(db, "INSERT INTO reporting_offsets VALUES (?1, ?2, ?3)");
        for (const auto& r : offsets) {
            insert.bind(1, r.from).bind(2, r.until).bind(3, r.offset);
            insert.run();
        }
    }
    db.exec("DELETE FROM reporting_days");
    {
        using namespace std::chrono;
        storage::statement insert(db, "INSERT INTO reporting_days VALUES (?1, ?2, ?3)");
        const calendar::time_of_day midnight{};
        const local_days first{std::chrono::year{2000} / 1 / 1};
        const local_days stop{std::chrono::year{2100} / 1 / 1};
        sys_seconds start = calendar::resolve_local(first, midnight, zone);
        for (local_days d = first; d < stop; d += days{1}) {
            const sys_seconds next = calendar::resolve_local(d + days{1}, midnight, zone);
            insert.bind(1, calendar::format_local_date(d))
                .bind(2, unix_of(start))
                .bind(3, unix_of(next));
            insert.run();
            start = next;
        }
    }
    {
        storage::statement st(db,
                              "INSERT INTO reporting_zone (singleton, name, written_at) "
                              "VALUES (1, ?1, ?2) ON CONFLICT (singleton) DO UPDATE SET "
                              "name = excluded.name, written_at = excluded.written_at");
        st.bind(1, zone_name).bind(2, now);
        st.run();
    }
    db.exec("DELETE FROM revenue_daily");
    db.exec("UPDATE reporting_state SET rolled_until = NULL, refreshed_at = NULL");
    tx.commit();
    return true;
}

int refresh_revenue(storage::connection& db, std::int64_t now) {
    // The local day that contains `now`; the roll-up ends where the day before it starts.
    std::optional<std::int64_t> target;
    {
        storage::statement st(db,
                              "SELECT starts_at FROM reporting_days WHERE starts_at < "
                              "(SELECT starts_at FROM reporting_days WHERE starts_at <= ?1 "
                              "ORDER BY starts_at DESC LIMIT 1) ORDER BY starts_at DESC LIMIT 1");
        st.bind(1, now);
        if (st.step()) target = st.optional_int64(0);
    }
    if (!target) return 0;  // outside 2000..2099
    std::optional<std::int64_t> rolled;
    {
        storage::statement st(db, "SELECT rolled_until FROM reporting_state");
        if (st.step()) rolled = st.optional_int64(0);
    }
    if (rolled == target) return 0;

    storage::write_transaction tx(db);
    std::int64_t from = 0;
    if (rolled) {
        // Advancing: redo the two newest rolled days too. Going back (a test clock): redo
        // from the new end, which drops the days after it.
        from = std::min(*rolled, *target) - 2 * day_seconds;
    } else {
        storage::statement st(
            db, "SELECT min(paid_at) FROM charges INDEXED BY charges_paid WHERE state = 'paid'");
        st.step();
        from = st.optional_int64(0).value_or(*target) - day_seconds;
    }
    {
        storage::statement st(db,
                              "DELETE FROM revenue_daily WHERE day >= coalesce((SELECT day FROM "
                              "reporting_days WHERE starts_at <= ?1 ORDER BY starts_at DESC "
                              "LIMIT 1), '0000')");
        st.bind(1, from);
        st.run();
    }
    {
        storage::statement st(
            db,
            "INSERT INTO revenue_daily (day, currency, charges, amount) "
            "SELECT d.day, c.currency, count(*), sum(c.amount) "
            "FROM reporting_days d JOIN charges c INDEXED BY charges_paid ON c.state = 'paid' AND "
            "c.paid_at >= d.starts_at AND c.paid_at < d.ends_at "
            // A local day lasts at most 25 hours: the lower bound on starts_at lets the
            // starts_at index find the first day instead of walking every day since 2000.
            "WHERE d.starts_at > ?1 - 90000 AND d.ends_at > ?1 AND d.starts_at < ?2 "
            "GROUP BY d.day, c.currency");
        st.bind(1, from).bind(2, *target);
        st.run();
    }
    const int changed = db.changes();
    {
        storage::statement st(db,
                              "UPDATE reporting_state SET rolled_until = ?1, refreshed_at = ?2");
        st.bind(1, *target).bind(2, now);
        st.run();
    }
    tx.commit();
    return changed;
}

}  // namespace billingd::reporting
