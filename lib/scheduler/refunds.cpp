// Refunds (POST /payments/cancel), carried out like charges: a refund row becomes `sending`,
// with its `request` journal row, in the group commit right before its request leaves; the
// answer is applied in the next group commit. An answer that does not say whether the cancel
// was applied makes the refund `unknown`, and the payment is read (GET /payments/{imp_uid})
// before anything is sent again: the cancel is found in cancel_history (refunded), or the
// payment still has the whole cancellable amount the refund was written with (sent again,
// with the same checksum, so PortOne refuses a duplicate), or the payment changed otherwise
// (a refund made elsewhere): then nothing is sent again and the refund is refused.
//
// Also here: the low-rate check for refunds made in PortOne's console.
#include <algorithm>

#include "calendar/calendar.hpp"
#include "domain/text.hpp"
#include "scheduler/engine_impl.hpp"

namespace billingd::scheduler {
namespace asio = boost::asio;

namespace {

constexpr std::int64_t max_refund_delay = 3600;
constexpr std::int64_t max_console_pages = 1000;  // 100 per page: 100,000 cancellations a check

std::int64_t doubling(std::int64_t base, std::int64_t n) {
    const auto shift = std::clamp<std::int64_t>(n - 1, 0, 12);
    return std::min(max_refund_delay, base << shift);
}

// The cancel_history entry that records this refund: its amount, at or after it was asked
// for (PortOne's clock may run a little behind), not recorded for another refund row.
const gateway::cancellation* find_entry(const gateway::payment& p, const storage::refund_record& r,
                                        storage::change_store& changes) {
    for (auto it = p.cancel_history.rbegin(); it != p.cancel_history.rend(); ++it)
        if (it->amount == r.amount &&
            (it->cancelled_at == 0 || it->cancelled_at >= r.requested_at - 300) &&
            !changes.knows_cancellation(r.charge_id, it->cancellation_id, it->pg_tid, it->amount))
            return &*it;
    return nullptr;
}

// The answer columns of a refund_attempts row. The body is kept only when the answer did
// not say what was asked (a cancelled list or a payment that was read is not kept: what it
// changed is).
void fill_answer(storage::refund_attempt_record& a, const gateway::exchange& x, bool keep_body) {
    a.phase = "answer";
    a.request_written = x.request_written ? 1 : 0;
    if (x.http_status != 0) a.http_status = x.http_status;
    a.portone_code = x.code;
    if (!x.message.empty()) a.message = x.message;
    a.outcome = std::string{gateway::to_string(x.result)};
    a.latency_ms = x.latency.count();
    if (keep_body && !x.raw.empty()) a.raw_answer = x.raw.substr(0, gateway::max_journaled_body);
}

}  // namespace

std::int64_t engine::impl::journal_refund(const storage::refund_record& r,
                                          const std::string& imp_uid, const char* kind,
                                          std::string summary) {
    storage::refund_attempt_record a;
    a.at = now();
    a.refund_id = r.id;
    a.charge_id = r.charge_id;
    a.kind = kind;
    a.phase = "request";
    a.imp_uid = imp_uid;
    a.amount = r.amount;
    a.checksum = r.checksum;
    a.request_summary = std::move(summary);
    return changes.append_refund_attempt(a);
}

void engine::impl::journal_refund_answer(const job& j, const gateway::exchange& x) {
    storage::refund_attempt_record a;
    a.at = now();
    a.refund_id = j.refund.id;
    a.charge_id = j.refund.charge_id;
    a.request_id = j.request_attempt_id;
    a.kind = j.what == job::kind::refund ? "cancel" : "payment";
    a.imp_uid = j.imp_uid;
    a.amount = j.refund.amount;
    a.checksum = j.refund.checksum;
    fill_answer(a, x, true);
    changes.append_refund_attempt(a);
}

// What billingd will not send, whatever the row says (a row written by hand with the schema's
// checks bypassed): the reason, or nothing when the row is sendable.
std::optional<std::string> unsendable(const storage::refund_record& r,
                                      const storage::charge_record& c) {
    if (r.amount <= 0 || r.checksum < r.amount || r.amount > c.amount)
        return "amount " + std::to_string(r.amount) + " / checksum " + std::to_string(r.checksum) +
               " do not fit the charge of " + std::to_string(c.amount);
    if (auto bad = domain::check_text("reason", r.reason, 1, 200)) return *bad;
    return std::nullopt;
}

int engine::impl::recover_refunds() {
    int recovered = 0;
    auto tx = store.begin();
    // `sending`: the cancel may have left. `unknown` without a next action: its lookup was on
    // the wire. Both are looked up before anything is sent again.
    for (bool more = true; more;) {
        more = false;
        const auto limit = config.batch_size + static_cast<int>(refunds_passed_over.size());
        for (auto& r : changes.refunds_on_the_wire(limit)) {
            if (refunds_passed_over.count(r.id)) continue;
            more = true;  // each row leaves the set: recovered or passed over
            isolated_refund(r.id, [&] {
                r.state = "unknown";
                r.next_action_at = now();
                r.updated_at = now();
                changes.update_refund(r);
                ++recovered;
            });
        }
    }
    tx.commit();
    return recovered;
}

void engine::impl::isolated_refund(std::int64_t refund_id, const std::function<void()>& work) {
    std::optional<std::string> refused;
    {
        storage::savepoint row(store.db());
        try {
            work();
            row.release();
            return;
        } catch (const storage::constraint_error& e) {
            refused = e.what();
        }
    }  // not released: undone
    // A row the schema refuses (written by hand with the checks bypassed) is taken out of the
    // due set and reported; it never fails the group commit that carries everyone's charges.
    // It is left alone until a restart, also where even that could not be written.
    refunds_passed_over.insert(refund_id);
    try {
        storage::savepoint row(store.db());
        changes.stop_refund(refund_id, "the database refused this row: " + *refused, now());
        record_event(
            store, now(), std::nullopt, std::nullopt, "refund.invalid", std::nullopt, std::nullopt,
            "refund " + std::to_string(refund_id) + ": the database refused this row: " + *refused,
            "billingd");
        row.release();
    } catch (const storage::constraint_error&) {
    }
    storage::charge_record none;
    decide(none, "refund_invalid", "refund " + std::to_string(refund_id) + ": " + *refused);
}

void engine::impl::pick_refunds(std::vector<job>& picked, std::size_t free_slots,
                                const gate_state& g) {
    if (picked.size() >= free_slots) return;
    const auto t = now();
    const bool sends_closed = g.halted || (g.breaker_open && t < g.breaker_probe_at);
    const bool lookups_closed = g.halted && g.halt_blocks_lookups;
    const auto want = static_cast<int>(free_slots - picked.size() + refunds_passed_over.size());
    for (auto& r : changes.due_refunds(t, want)) {
        if (picked.size() >= free_slots) break;
        if (refunds_passed_over.count(r.id)) continue;
        isolated_refund(r.id, [&] {
            const auto c = store.find_charge(r.charge_id);
            const auto refuse = [&](const std::string& why) {
                r.state = "refused";
                r.fail_reason = why;
                r.next_action_at.reset();
                r.updated_at = t;
                changes.update_refund(r);
            };
            if (r.state != "requested" && r.state != "unknown") {
                changes.stop_refund(r.id, std::nullopt, t);  // final rows need nothing
                return;
            }
            if (!c || !c->imp_uid)
                return refuse("the charge has no PortOne payment (imp_uid) to refund");
            if (auto bad = unsendable(r, *c)) return refuse("not sent: " + *bad);
            job j;
            j.imp_uid = *c->imp_uid;
            if (r.state == "requested") {
                if (sends_closed) return;  // stays due; the gate's reopening wakes the loop
                ++r.attempt_count;
                r.state = "sending";
                j.what = job::kind::refund;
                j.request_attempt_id =
                    journal_refund(r, j.imp_uid, "cancel",
                                   "POST /payments/cancel imp_uid=" + j.imp_uid +
                                       " amount=" + std::to_string(r.amount) +
                                       " checksum=" + std::to_string(r.checksum));
            } else {
                if (lookups_closed) return;
                ++r.lookup_count;
                j.what = job::kind::refund_lookup;
                j.request_attempt_id =
                    journal_refund(r, j.imp_uid, "payment", "GET /payments/" + j.imp_uid);
            }
            r.next_action_at.reset();  // on the wire
            r.updated_at = t;
            changes.update_refund(r);
            j.refund = r;
            j.charge = *c;
            picked.push_back(std::move(j));
        });
    }
}

asio::awaitable<job_result> engine::impl::execute_refund(job j) {
    job_result r;
    if (j.what == job::kind::refund) {
        gateway::cancel_request request;
        request.imp_uid = j.imp_uid;
        request.amount = j.refund.amount;
        request.checksum = j.refund.checksum;
        request.reason = j.refund.reason;
        r.cancel = co_await gateway.cancel(std::move(request));
        record_call(r.cancel->journal, probe_kind::none, false);
    } else {
        std::string imp_uid = j.imp_uid;
        r.payment = co_await gateway.get_payment(std::move(imp_uid));
        record_call(r.payment->journal, probe_kind::none, false);
    }
    r.done = std::move(j);
    co_return r;
}

void engine::impl::refund_again_later(storage::refund_record& r, const std::string& state,
                                      std::int64_t delay, const std::string& why) {
    r.state = state;
    r.next_action_at = now() + delay;
    r.fail_reason = why;
    r.updated_at = now();
    changes.update_refund(r);
}

void engine::impl::settle_refund(storage::refund_record& r, const storage::charge_record& c,
                                 const gateway::payment& p, const gateway::cancellation* entry) {
    const auto t = now();
    r.state = "refunded";
    r.next_action_at.reset();
    r.fail_reason.reset();
    r.refunded_at = entry && entry->cancelled_at > 0 ? entry->cancelled_at
                    : p.cancelled_at > 0             ? p.cancelled_at
                                                     : t;
    if (entry) {
        if (!entry->pg_tid.empty()) r.pg_tid = entry->pg_tid;
        if (!entry->cancellation_id.empty()) r.cancellation_id = entry->cancellation_id;
        if (!entry->receipt_url.empty()) r.receipt_url = entry->receipt_url;
    }
    r.updated_at = t;
    changes.update_refund(r);
    // PortOne's total is the truth (it includes refunds made elsewhere, which the console
    // check records as rows of their own).
    const auto total = std::clamp(std::max(p.cancel_amount, c.refunded_amount + r.amount),
                                  std::int64_t{0}, c.amount);
    changes.set_refunded_amount(c.id, total, t);
    domain::json_object data = charge_data(c);
    data.add("refund_id", r.id)
        .add("refund_amount", r.amount)
        .add("refunded_amount", total)
        .add("fully_refunded", std::int64_t{total >= c.amount})
        .add("reason", r.reason)
        .add("source", r.source)
        .add("cancellation_id", r.cancellation_id);
    if (c.imp_uid) data.add("imp_uid", *c.imp_uid);
    record_event(store, t, c.subscription_id, c.id, "charge.refunded", std::nullopt, "refunded",
                 "refund " + std::to_string(r.id) + ": " + std::to_string(r.amount) + " KRW (" +
                     std::to_string(total) + " of " + std::to_string(c.amount) + " refunded)",
                 "billingd", data.str());
    ++summary.refunds;
    decide(c, "refunded", "refund " + std::to_string(r.id) + " " + std::to_string(r.amount));
}

void engine::impl::apply_refund(job_result& result) {
    isolated_refund(result.done.refund.id, [&] { apply_refund_answer(result); });
}

void engine::impl::apply_refund_answer(job_result& result) {
    const auto& j = result.done;
    const auto& x = result.cancel ? result.cancel->journal : result.payment->journal;
    journal_refund_answer(j, x);
    auto current = changes.find_refund(j.refund.id);
    // Still as the write-ahead left it: nobody else settles refunds, but a hand edit might.
    if (!current || current->state != j.refund.state || current->next_action_at) return;
    auto& r = *current;
    const auto c = store.find_charge(r.charge_id);
    if (!c) return;
    const auto t = now();
    const auto first_look =
        config.settle_unknown_immediately ? 0 : config.refund_lookup_delay.count();
    const auto refuse = [&](const std::string& why) {
        r.state = "refused";
        r.next_action_at.reset();
        r.fail_reason = why;
        r.updated_at = t;
        changes.update_refund(r);
        domain::json_object data = charge_data(*c);
        data.add("refund_id", r.id).add("refund_amount", r.amount).add("reason", why);
        record_event(store, t, c->subscription_id, c->id, "refund.refused", "sending", "refused",
                     "refund " + std::to_string(r.id) + " refused: " + why, "billingd", data.str());
        ++summary.refunds;
        decide(*c, "refund_refused", why);
    };
    using gateway::outcome;
    if (result.cancel) {
        switch (x.result) {
            case outcome::found:
                if (result.cancel->answer) {
                    settle_refund(r, *c, *result.cancel->answer,
                                  find_entry(*result.cancel->answer, r, changes));
                    return;
                }
                refund_again_later(r, "unknown", first_look,
                                   "applied, but no payment in the answer");
                return;
            case outcome::refused:
            case outcome::not_found:
                // After an earlier attempt whose outcome was unknown, a refusal may mean that
                // attempt went through (checksum no longer matches): read the payment.
                if (r.attempt_count > 1) {
                    refund_again_later(r, "unknown", 0,
                                       "refused after an earlier attempt: " + x.message);
                    return;
                }
                refuse(x.message.empty() ? std::string{gateway::to_string(x.result)} : x.message);
                return;
            case outcome::transient:
                refund_again_later(r, "requested", doubling(30, r.attempt_count),
                                   "not processed: " + x.message);
                return;
            case outcome::config_error:
                halt("PortOne refused a refund request: " + x.message, false);
                refund_again_later(r, "requested", config.halt_probe_after.count(), x.message);
                return;
            default:
                refund_again_later(r, "unknown", first_look, "outcome unknown: " + x.message);
                return;
        }
    }
    // A payment read for a refund in doubt.
    switch (x.result) {
        case outcome::found: {
            const auto& p = *result.payment->found;
            if (const auto* entry = find_entry(p, r, changes)) {
                settle_refund(r, *c, p, entry);
                return;
            }
            // Amounts as PortOne reported them (a hostile answer may carry any integer).
            const bool sane = p.amount >= 0 && p.cancel_amount >= 0 && p.cancel_amount <= p.amount;
            if (sane && p.amount - p.cancel_amount == r.checksum) {
                // Not applied: send it again, with the same checksum.
                refund_again_later(r, "requested", 0, "not applied at PortOne; sent again");
                return;
            }
            refuse("the payment changed at PortOne (" + std::to_string(p.cancel_amount) + " of " +
                   std::to_string(p.amount) +
                   " cancelled) and shows no cancel of this refund; not sent again");
            return;
        }
        case outcome::not_found:
            refuse("PortOne has no payment " + j.imp_uid);
            return;
        case outcome::config_error:
            halt("PortOne refused a payment lookup: " + x.message, true);
            refund_again_later(r, "unknown", config.halt_probe_after.count(), x.message);
            return;
        default:
            refund_again_later(r, "unknown",
                               doubling(config.refund_lookup_delay.count(), r.lookup_count),
                               "lookup gave no answer: " + x.message);
            return;
    }
}

// --- refunds made in PortOne's console ---

std::optional<std::int64_t> engine::impl::next_console_check() {
    if (config.console_check_interval.count() <= 0) return std::nullopt;
    const auto at = changes.console_checked_at();
    return at ? *at + config.console_check_interval.count() : now();
}

bool engine::impl::charging_work_due() {
    const auto t = now();
    return !store.due_charges(t, 1).empty() || !store.due_subscriptions(t, 1).empty() ||
           !changes.due_refunds(t, 1).empty();
}

asio::awaitable<void> engine::impl::check_console_refunds() {
    const auto due = next_console_check();
    const auto t = now();
    if (!due || *due > t || halted || stopping) co_return;
    const std::int64_t from = t - std::int64_t{config.console_check_days} * 86400;
    bool complete = true;
    for (std::int64_t page = 1; page <= max_console_pages;) {
        const auto answer = co_await gateway.cancelled_payments(from, t, page);
        auto tx = store.begin();
        storage::refund_attempt_record a;
        a.at = now();
        a.kind = "cancelled_list";
        a.request_summary = "GET /payments/status/cancelled from=" + std::to_string(from) +
                            " to=" + std::to_string(t) + " page=" + std::to_string(page);
        const bool found = answer.journal.result == gateway::outcome::found;
        fill_answer(a, answer.journal, !found);
        changes.append_refund_attempt(a);
        if (!found) {
            tx.commit();
            complete = false;
            break;
        }
        for (const auto& p : answer.list) summary.console_refunds += record_console_refunds(p);
        tx.commit();
        if (answer.next <= page) break;
        page = answer.next;
        if (charging_work_due()) {  // the next pass comes first; the check starts over soon
            complete = false;
            break;
        }
    }
    // Partial refunds made in the console: a few paid charges read one by one, round robin.
    if (complete && config.console_check_payments > 0) {
        auto after = changes.console_swept_after();
        auto rows = changes.charges_to_sweep(after, from, config.console_check_payments);
        if (rows.empty() && after > 0) {
            after = 0;  // back to the start of the window
            rows = changes.charges_to_sweep(0, from, config.console_check_payments);
        }
        for (std::size_t i = 0; i < rows.size() && !stopping && !charging_work_due(); ++i) {
            const std::int64_t charge_id = rows[i].first;
            const std::string imp_uid = rows[i].second;
            std::string uid = imp_uid;
            const auto answer = co_await gateway.get_payment(std::move(uid));
            auto tx = store.begin();
            storage::refund_attempt_record a;
            a.at = now();
            a.charge_id = charge_id;
            a.kind = "payment";
            a.imp_uid = imp_uid;
            a.request_summary = "GET /payments/" + imp_uid + " (console refund check)";
            const bool found = answer.journal.result == gateway::outcome::found;
            fill_answer(a, answer.journal, !found);
            // Journaled when it failed or found a refund: a read that changes nothing (nearly
            // every one) leaves no row, only the cursor moves (2,400 rows a day otherwise).
            if (!found) {
                changes.append_refund_attempt(a);
                tx.commit();
                break;  // PortOne is not answering: the rest waits for the next check
            }
            if (answer.found)
                if (const int n = record_console_refunds(*answer.found); n > 0) {
                    summary.console_refunds += n;
                    changes.append_refund_attempt(a);
                }
            changes.set_console_swept_after(charge_id);
            tx.commit();
        }
    }
    auto tx = store.begin();
    // A failed check is tried again after a quarter of the interval, not at once.
    changes.set_console_checked(t,
                                complete ? t : t - config.console_check_interval.count() * 3 / 4);
    tx.commit();
}

int engine::impl::record_console_refunds(const gateway::payment& p) {
    if (p.merchant_uid.empty() || p.cancel_amount <= 0) return 0;
    auto c = store.find_charge_by_merchant_uid(p.merchant_uid);
    if (!c || c->state != domain::charge_state::paid || (c->imp_uid && *c->imp_uid != p.imp_uid))
        return 0;
    if (p.cancel_amount <= c->refunded_amount) return 0;  // nothing new
    // A refund of billingd's own still in flight is settled by its own reconciliation.
    if (changes.open_refund_of_charge(c->id)) return 0;
    const auto t = now();
    int found = 0;
    std::int64_t recorded = c->refunded_amount;
    const auto add = [&](std::int64_t amount, std::int64_t at, const gateway::cancellation* e) {
        storage::refund_record r;
        r.charge_id = c->id;
        r.subscription_id = c->subscription_id;
        r.source = "console";
        r.state = "refunded";
        r.amount = amount;
        r.checksum = std::max(amount, c->amount - recorded);
        r.reason = e && !e->reason.empty() ? e->reason.substr(0, 200)
                                           : std::string{"refunded outside billingd"};
        r.requested_by = "portone";
        r.requested_at = at;
        r.refunded_at = at;
        if (e && !e->pg_tid.empty()) r.pg_tid = e->pg_tid;
        if (e && !e->cancellation_id.empty()) r.cancellation_id = e->cancellation_id;
        if (e && !e->receipt_url.empty()) r.receipt_url = e->receipt_url;
        r.updated_at = t;
        r.id = changes.insert_refund(r);
        recorded = std::min(c->amount, recorded + amount);
        changes.set_refunded_amount(c->id, recorded, t);
        domain::json_object data = charge_data(*c);
        data.add("refund_id", r.id)
            .add("refund_amount", amount)
            .add("refunded_amount", recorded)
            .add("fully_refunded", std::int64_t{recorded >= c->amount})
            .add("reason", r.reason)
            .add("source", "console")
            .add("cancellation_id", r.cancellation_id)
            .add("imp_uid", p.imp_uid);
        record_event(
            store, t, c->subscription_id, c->id, "charge.refunded", std::nullopt, "refunded",
            "refund made outside billingd: " + std::to_string(amount) + " KRW (" +
                std::to_string(recorded) + " of " + std::to_string(c->amount) + " refunded)",
            "billingd", data.str());
        decide(*c, "console_refund", std::to_string(amount));
        ++found;
    };
    for (const auto& e : p.cancel_history) {
        if (recorded >= p.cancel_amount) break;
        if (e.amount <= 0 ||
            changes.knows_cancellation(c->id, e.cancellation_id, e.pg_tid, e.amount))
            continue;
        add(std::min(e.amount, p.cancel_amount - recorded),
            e.cancelled_at > 0 ? e.cancelled_at : (p.cancelled_at > 0 ? p.cancelled_at : t), &e);
    }
    // A total without (enough) history entries: one row for what is left.
    if (recorded < std::min(p.cancel_amount, c->amount))
        add(std::min(p.cancel_amount, c->amount) - recorded,
            p.cancelled_at > 0 ? p.cancelled_at : t, nullptr);
    return found;
}

}  // namespace billingd::scheduler
