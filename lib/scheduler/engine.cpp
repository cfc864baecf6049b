// Pass orchestration: write-ahead batches, bounded workers, group commits of answers.
#include "scheduler/engine.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cassert>

#include "calendar/calendar.hpp"
#include "scheduler/engine_impl.hpp"

namespace billingd::scheduler {

namespace asio = boost::asio;
using domain::charge_state;

pass_summary& pass_summary::operator+=(const pass_summary& o) {
    scheduled += o.scheduled;
    materialised += o.materialised;
    skipped += o.skipped;
    sent += o.sent;
    paid += o.paid;
    declined += o.declined;
    unknown += o.unknown;
    transient += o.transient;
    refused += o.refused;
    parked += o.parked;
    reconciled += o.reconciled;
    canceled += o.canceled;
    refunds += o.refunds;
    console_refunds += o.console_refunds;
    held_for_consent += o.held_for_consent;
    if (__builtin_add_overflow(paid_amount, o.paid_amount, &paid_amount)) paid_amount = INT64_MAX;
    halted = halted || o.halted;
    if (halt_reason.empty()) halt_reason = o.halt_reason;
    work_left = o.work_left;
    return *this;
}

engine::engine(storage::store& store, gateway::client& gateway, const clock& clock,
               engine_config config)
    : impl_(std::make_unique<impl>(store, gateway, clock, std::move(config))) {
    auto& m = *impl_;
    if (m.config.max_in_flight == 0) m.config.max_in_flight = 1;
    if (m.config.batch_size < 1) m.config.batch_size = 1;
    m.policy.max_amount_per_charge = m.config.max_amount_per_charge;
    m.policy.max_charges_per_pass = m.config.max_charges_per_pass;
    m.policy.max_charges_per_hour = m.config.max_charges_per_hour;
    m.policy.max_attempts_per_charge = m.config.max_attempts_per_charge;
    m.policy.max_refusals = std::max<std::int64_t>(1, m.config.max_refusals);
    m.policy.refusal_base_delay = m.config.refusal_base_delay.count();
    m.policy.refusal_max_delay = m.config.refusal_max_delay.count();
    m.policy.in_progress_floor = m.config.in_progress_floor.count();
    m.install_id = store.claim_install_id(m.config.merchant_uid_prefix);
}

engine::~engine() = default;

void engine::on_decision(std::function<void(const decision&)> sink) {
    impl_->sink = std::move(sink);
}

bool engine::halted() const {
    return impl_->halted;
}

std::chrono::sys_seconds engine::halt_probe_at() const {
    return from_unix(impl_->halt_probe_at);
}

const std::string& engine::halt_reason() const {
    return impl_->halt_reason;
}

const std::string& engine::install_id() const {
    return impl_->install_id;
}

engine::breaker_status engine::breaker() const {
    const auto& m = *impl_;
    breaker_status b;
    b.open = m.breaker_open;
    b.probe_at = from_unix(m.breaker_probe_at);
    b.recent_calls = m.recent_calls.size();
    b.recent_failures =
        static_cast<std::size_t>(std::count(m.recent_calls.begin(), m.recent_calls.end(), true));
    return b;
}

void engine::impl::record_call(const gateway::exchange& x, probe_kind probe, bool first_send) {
    // An enveloped refusal (HTTP 200, code != 0) of a first send is PortOne or the PG failing
    // to process, e.g. a KakaoPay outage: it counts like a 5xx. A refusal of a re-send (after a
    // decline or an earlier refusal) is about that merchant_uid ("already used"), not about
    // PortOne's health, and must not hold other customers' charges back.
    const bool refusal =
        x.result == gateway::outcome::refused && x.http_status == 200 && first_send;
    const bool failed =
        x.result == gateway::outcome::transient || refusal ||
        (x.result == gateway::outcome::unknown && (x.http_status == 0 || x.http_status >= 500));
    storage::charge_record none;
    if (probe != probe_kind::none) probe_in_flight = false;
    if (probe == probe_kind::halt && halted) {
        // Only a clear answer from PortOne lifts a halt; no answer at all proves nothing.
        const bool no_answer =
            x.result == gateway::outcome::transient ||
            (x.result == gateway::outcome::unknown && (x.http_status == 0 || x.http_status >= 500));
        if (x.result == gateway::outcome::config_error || no_answer) {
            halt_probe_at = now() + config.halt_probe_after.count();
            decide(none, "halt_renewed",
                   (no_answer ? "probe got no answer: " : "probe refused again: ") + x.message);
        } else {
            halted = false;
            halt_blocks_lookups = false;
            decide(none, "halt_lifted", "probe answered; charging resumes");
        }
        return;
    }
    const bool was_probe = probe == probe_kind::breaker;
    recent_calls.push_back(failed);
    while (recent_calls.size() > std::max<std::size_t>(1, config.breaker_window))
        recent_calls.pop_front();
    if (breaker_open) {
        if (!was_probe) return;
        if (failed) {
            breaker_probe_at = now() + config.breaker_open_for.count();
            decide(none, "breaker_open", "probe failed: " + x.message);
        } else {
            breaker_open = false;
            recent_calls.clear();
            decide(none, "breaker_closed", "probe answered; sending resumes");
        }
        return;
    }
    const auto failures =
        static_cast<std::size_t>(std::count(recent_calls.begin(), recent_calls.end(), true));
    if (recent_calls.size() >= config.breaker_min_calls &&
        static_cast<double>(failures) >=
            config.breaker_failure_ratio * static_cast<double>(recent_calls.size())) {
        breaker_open = true;
        breaker_probe_at = now() + config.breaker_open_for.count();
        decide(none, "breaker_open",
               std::to_string(failures) + " of the last " + std::to_string(recent_calls.size()) +
                   " PortOne calls failed; no new charges until a probe succeeds");
    }
}

void engine::impl::halt(const std::string& reason, bool blocks_lookups) {
    halt_probe_at = now() + config.halt_probe_after.count();
    summary.halted = true;
    summary.halt_reason = reason;
    halt_blocks_lookups = halt_blocks_lookups || blocks_lookups;
    if (halted) return;
    halted = true;
    halt_reason = reason;
    storage::charge_record none;
    decide(none, "halted",
           reason + "; nothing is sent until a probe at " +
               calendar::format_utc(from_unix(halt_probe_at)) + " is answered");
}

void engine::impl::guardrail_event(const std::string& which, const std::string& detail) {
    if (guardrail_reported) return;  // once per pass
    guardrail_reported = true;
    record_event(store, now(), std::nullopt, std::nullopt, "guardrail." + which, std::nullopt,
                 std::nullopt, detail, "billingd");
    storage::charge_record none;
    decide(none, "guardrail", which + ": " + detail);
}

gate_state engine::impl::gates(std::int64_t t) {
    gate_state g;
    g.stopping = stopping;
    g.halted = halted;
    g.halt_blocks_lookups = halt_blocks_lookups;
    g.halt_probe_at = halt_probe_at;
    g.breaker_open = breaker_open;
    g.breaker_probe_at = breaker_probe_at;
    g.probe_in_flight = probe_in_flight;
    g.charges_this_pass = charges_this_pass;
    // From the journal, so that a restart does not grant a fresh hour.
    if (config.max_charges_per_hour > 0)
        g.charges_last_hour = store.charge_requests_since(t - 3600);
    if (config.quiet_zone && !config.quiet.empty()) {
        const auto allowed =
            to_unix(calendar::next_allowed(from_unix(t), config.quiet, config.quiet_zone));
        if (allowed > t) g.quiet_until = allowed;
    }
    return g;
}

void engine::stop() {
    impl_->stopping = true;
}

int engine::recover() {
    auto& m = *impl_;
    int recovered = m.recover_refunds();
    for (auto state : {charge_state::sending, charge_state::reconciling}) {
        for (;;) {
            auto tx = m.store.begin();
            auto rows = m.store.charges_in_state(state, m.config.batch_size);
            if (rows.empty()) break;
            for (auto& c : rows) {
                m.stored = c;
                if (!c.unknown_since) c.unknown_since = m.now();
                // A lookup at once is safe: "no record" is not trusted before the trust floor
                // of the request that may still be in progress (decide_after_lookup).
                c.next_action_at = m.now();
                m.transition(c, charge_state::unknown,
                             "found " + std::string{domain::to_string(state)} +
                                 " at start: the request may have been sent",
                             "charge.recovered");
                m.decide(c, "recovered", "in doubt after restart; reconcile before resending");
                ++recovered;
            }
            tx.commit();
        }
    }
    return recovered;
}

std::optional<std::chrono::sys_seconds> engine::next_wakeup() {
    auto& m = *impl_;
    if (!m.store.unscheduled_subscriptions(0, 1).empty()) return m.clk.now();
    auto t = m.store.earliest_wakeup();
    if (const auto refund = m.changes.earliest_refund_action(); refund && (!t || *refund < *t))
        t = refund;
    if (const auto check = m.next_console_check(); check && (!t || *check < *t)) t = check;
    if (!t) return std::nullopt;
    const auto now = m.now();
    if (*t > now) return from_unix(*t);
    // Due now, but a gate may hold it: sleep until the gate opens instead of spinning.
    std::int64_t held_until = 0;
    if (m.halted) held_until = m.halt_probe_at;
    if (m.breaker_open) held_until = std::max(held_until, m.breaker_probe_at);
    if (const auto cap = m.config.max_charges_per_hour; cap > 0) {
        // The hour reopens when the oldest request that still fills the cap is an hour old.
        const auto sent = m.store.charge_requests_since(now - 3600);
        if (sent >= cap)
            if (auto at = m.store.charge_request_time(now - 3600, sent - cap))
                held_until = std::max(held_until, *at + 3600);
    }
    return from_unix(std::max(*t, held_until));
}

asio::awaitable<pass_summary> engine::run_pass() {
    auto& m = *impl_;
    m.summary = pass_summary{};
    m.charges_this_pass = 0;
    m.guardrail_reported = false;
    m.failed = false;
    m.pending.clear();
    m.in_flight = 0;
    // Between passes nothing is on the wire: a probe flag left by a failed pass is stale.
    m.probe_in_flight = false;
    if (m.stopping) co_return m.summary;
    // A row still `sending`/`reconciling` was cut off by a failure (storage, or an exception
    // in a request): it is in doubt.
    recover();

    m.subscriptions_passed_over = 0;
    m.schedule_new_subscriptions();
    co_await m.check_console_refunds();

    auto executor = co_await asio::this_coro::executor;
    asio::steady_timer wake(executor, asio::steady_timer::time_point::max());
    std::exception_ptr failure;
    bool all_picked = false;
    for (;;) {
        std::vector<job> started;
        if (!m.failed) {
            try {
                const bool had_answers = !m.pending.empty();
                if (had_answers) all_picked = false;  // answers can make rows due again
                const std::size_t free_slots = m.config.max_in_flight - m.in_flight;
                if (had_answers || (free_slots > 0 && !all_picked && !m.stopping)) {
                    bool exhausted = false;
                    started = m.commit_step(exhausted);
                    if (started.empty() && exhausted) all_picked = true;
                }
            } catch (...) {
                // Nothing of this group commit is durable: its rows stay as they were (those
                // on the wire stay `sending`/`reconciling` and are looked up next pass).
                m.failed = true;
                failure = std::current_exception();
            }
        }
        for (auto& j : started) {
            ++m.in_flight;
            asio::co_spawn(executor, m.execute(std::move(j)),
                           [&m, &failure, &wake](std::exception_ptr e, job_result r) {
                               --m.in_flight;
                               if (e) {
                                   if (!failure) failure = e;
                                   m.failed = true;
                               } else {
                                   m.pending.push_back(std::move(r));
                               }
                               wake.cancel();
                           });
        }
        if (m.in_flight == 0) {
            if (m.failed || (m.pending.empty() && started.empty() && all_picked) ||
                (m.stopping && m.pending.empty()))
                break;
            continue;
        }
        if (!m.pending.empty() && !m.failed) {
            // Let the other answers that are ready join this group commit.
            co_await asio::post(executor, asio::use_awaitable);
            continue;
        }
        wake.expires_at(asio::steady_timer::time_point::max());
        boost::system::error_code ec;
        co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    m.pending.clear();
    if (failure) std::rethrow_exception(failure);
    co_return m.summary;
}

asio::awaitable<pass_summary> engine::run_until_idle() {
    auto& m = *impl_;
    pass_summary total;
    for (int pass = 0; pass < 10'000; ++pass) {
        auto s = co_await run_pass();
        const bool progressed = s.scheduled + s.materialised + s.sent + s.reconciled + s.skipped +
                                    s.canceled + s.parked + s.refunds + s.held_for_consent >
                                0;
        total += s;
        if (m.halted || m.stopping || s.work_left || !progressed) break;
        const auto t = m.now();
        if (m.store.due_charges(t, 1).empty() && m.store.due_subscriptions(t, 1).empty() &&
            m.store.unscheduled_subscriptions(0, 1).empty() && m.changes.due_refunds(t, 1).empty())
            break;
    }
    co_return total;
}

// One group commit: the answers that arrived are applied, and charges are written ahead for
// the worker slots that are free — in one transaction, before any of the new requests leaves.
// `exhausted` says whether everything due was looked at (false: more rows wait).
std::vector<job> engine::impl::commit_step(bool& exhausted) {
    const bool answers = !pending.empty();
    auto tx = store.begin();
    if (answers) {
        auto batch = std::move(pending);
        pending.clear();
        for (auto& r : batch) {
            if (r.done.what == job::kind::refund || r.done.what == job::kind::refund_lookup)
                apply_refund(r);
            else
                apply(r);
        }
    }
    std::vector<job> started;
    exhausted = true;
    const std::size_t free_slots = config.max_in_flight - in_flight;
    if (free_slots > 0 && !stopping) started = pick_due(free_slots, exhausted);
    if (config.at_step) {
        if (answers) config.at_step("before_outcome_commit");
        if (!started.empty()) config.at_step("before_write_ahead_commit");
    }
    tx.commit();  // write-ahead: durable before any of these requests is sent
    if (!started.empty() && config.at_step) config.at_step("after_write_ahead_commit");
    return started;
}

// Reads what is due inside the group commit's transaction (a pause, cancel or resume
// committed a moment ago is seen), decides each row (decide_due) and carries the decision out:
// first the charges that exist (retries, dunning, lookups), then the subscriptions whose next
// period starts, whose charge row is only created as it is sent. At most `free_slots` requests
// are written ahead. A gate that holds new charges back switches the read to charges in doubt
// only (lookups still go out) and starts no new period.
std::vector<job> engine::impl::pick_due(std::size_t free_slots, bool& exhausted) {
    std::vector<job> picked;
    const auto t = now();
    auto g = gates(t);
    bool sends_held = false;
    int examined = 0;
    int changed = 0;  // rows moved out of the due set without a request
    exhausted = false;
    // Keep the transaction short; the caller comes back for the rest, unless every row looked
    // at is held behind a gate (coming back would find the same rows).
    const auto batch_full = [&] {
        if (examined < config.batch_size) return false;
        exhausted = picked.empty() && changed == 0;
        return true;
    };
    const auto want = [&] {
        return static_cast<int>(std::min<std::size_t>(
            free_slots - picked.size(), static_cast<std::size_t>(config.batch_size - examined)));
    };
    if (!g.stopping) pick_refunds(picked, free_slots, g);
    bool blocked = false;
    while (!blocked && picked.size() < free_slots) {
        if (batch_full()) return picked;
        auto rows =
            sends_held ? store.due_in_doubt_charges(t, want()) : store.due_charges(t, want());
        if (rows.empty()) break;
        for (auto& c : rows) {
            if (picked.size() >= free_slots) break;
            ++examined;
            stored = c;
            auto s = store.find_subscription(c.subscription_id);
            const auto a = decide_due(c, s ? &*s : nullptr, t, g, policy);
            switch (a.kind) {
                case action_kind::send:
                    picked.push_back(write_ahead_charge(c, *s, a.probe));
                    count_send(g, a.probe);
                    break;
                case action_kind::look_up:
                    picked.push_back(write_ahead_lookup(c, a.probe));
                    if (a.probe != probe_kind::none) g.probe_in_flight = probe_in_flight = true;
                    break;
                case action_kind::cancel:
                    cancel(c, a.reason);
                    if (a.end_subscription && s &&
                        domain::subscription_transition_allowed(
                            s->status, domain::subscription_status::canceled)) {
                        store.set_schedule(s->id, s->next_period, std::nullopt, t);
                        set_subscription_status(*s, domain::subscription_status::canceled,
                                                a.reason);
                    }
                    ++changed;
                    break;
                case action_kind::park:
                    park(c, a.reason);
                    ++changed;
                    break;
                case action_kind::none:
                    // Final or parked rows need no action (a hand edit set next_action_at).
                    c.next_action_at.reset();
                    c.updated_at = t;
                    write(c);
                    ++changed;
                    break;
                case action_kind::hold:
                    if (a.at > t) {
                        c.next_action_at = a.at;
                        c.updated_at = t;
                        write(c);
                        ++changed;
                        break;
                    }
                    // Behind a gate: the row stays due for a later commit or pass.
                    summary.work_left = true;
                    if (!a.guardrail.empty()) guardrail_event(a.guardrail, a.reason);
                    // Lookups held too (halted, stopping): nothing more can go out now.
                    if (in_doubt(c) || g.stopping || g.halted) blocked = true;
                    sends_held = true;
                    break;
            }
            if (blocked) break;
        }
    }
    bool undone = false;
    if (!blocked && !sends_held && !g.stopping && picked.size() < free_slots)
        undone = start_due_periods(picked, free_slots, g, examined, changed, sends_held);
    // Periods undone with a refused row are started again by the next group commit.
    exhausted = !undone && (batch_full() ? picked.empty() && changed == 0 : true);
    return picked;
}

// The subscriptions whose next period is due, under one savepoint for the whole group commit
// rather than one per row (a savepoint copies every page a row touches: most of a charge's
// cost). Whatever can fail for one row fails at that row's first write, which SQLite undoes
// alone; should a row still be refused later in its work (a row written with the checks
// bypassed, a trigger added by hand), the new periods of this group commit are undone
// together, that row is flagged, and the next group commit starts them again without it.
bool engine::impl::start_due_periods(std::vector<job>& picked, std::size_t free_slots,
                                     gate_state& g, int& examined, int& changed, bool& held) {
    const auto t = now();
    const auto before = std::make_tuple(picked.size(), g, charges_this_pass, probe_in_flight,
                                        summary, examined, changed);
    std::optional<storage::subscription_record> refused_row;
    std::string refused_reason;
    {
        storage::savepoint periods(store.db());
        // Outside the try: the row `current` points at must outlive the catch.
        std::vector<storage::subscription_record> rows;
        const storage::subscription_record* current = nullptr;
        try {
            while (!held && picked.size() < free_slots && examined < config.batch_size) {
                const auto want = static_cast<int>(
                    std::min<std::size_t>(free_slots - picked.size(),
                                          static_cast<std::size_t>(config.batch_size - examined)));
                rows = store.due_subscriptions(t, want, subscriptions_passed_over);
                if (rows.empty()) break;
                for (const auto& s : rows) {
                    if (picked.size() >= free_slots || held) break;
                    ++examined;
                    current = &s;
                    std::optional<job> sent;
                    if (!materialise_one(s, g, sent, held)) ++subscriptions_passed_over;
                    if (sent) {
                        count_send(g, sent->probe);
                        picked.push_back(std::move(*sent));
                    } else if (!held) {
                        ++changed;
                    }
                }
                current = nullptr;
            }
            periods.release();
            return false;
        } catch (const storage::constraint_error& e) {
            if (!current) throw;
            refused_row = *current;
            refused_reason = e.what();
        }
    }  // not released: this group commit's new periods are undone
    picked.resize(std::get<0>(before));
    std::tie(std::ignore, g, charges_this_pass, probe_in_flight, summary, examined, changed) =
        before;
    if (!flag(*refused_row, "the database refused this row: " + refused_reason))
        ++subscriptions_passed_over;
    ++changed;
    return true;
}

void engine::impl::count_send(gate_state& g, probe_kind probe) {
    ++g.charges_this_pass;
    ++g.charges_last_hour;
    ++charges_this_pass;
    if (probe != probe_kind::none) g.probe_in_flight = probe_in_flight = true;
}

job engine::impl::write_ahead_charge(storage::charge_record& c,
                                     const storage::subscription_record& s, probe_kind probe) {
    ++c.attempt_count;
    c.next_action_at.reset();
    c.last_refusal.reset();
    transition(c, charge_state::sending, "attempt " + std::to_string(c.attempt_count));
    std::optional<std::int64_t> period_end;
    if (auto rule = billing_rule_of(s); rule.rule)
        period_end = to_unix(calendar::period_start(*rule.rule, c.period_index + 1));
    return charge_job(c, s, probe, period_end);
}

job engine::impl::charge_job(const storage::charge_record& c, const storage::subscription_record& s,
                             probe_kind probe, std::optional<std::int64_t> period_end) {
    job j;
    j.period_end = period_end;
    j.what = job::kind::charge;
    j.probe = probe;
    j.request.customer_uid = c.customer_uid;
    j.request.merchant_uid = c.merchant_uid;
    j.request.amount = c.amount;
    j.request.currency = c.currency;
    j.request.name = c.order_name;
    j.request.buyer_name = s.buyer_name.value_or("");
    j.request.buyer_email = s.buyer_email.value_or("");
    j.request.buyer_tel = s.buyer_tel.value_or("");
    j.request.custom_data = "{\"subscription_id\":" + std::to_string(c.subscription_id) +
                            ",\"period\":" + std::to_string(c.period_index) + "}";
    // merchant_uid, amount and the attempt number are columns of the journal row, and the
    // charge row keeps customer_uid fixed: the summary names the endpoint only.
    j.request_attempt_id =
        journal_request(c, "charge", c.attempt_count, "POST /subscribe/payments/again");
    j.charge = c;
    return j;
}

job engine::impl::write_ahead_lookup(storage::charge_record& c, probe_kind probe) {
    if (!c.unknown_since && in_doubt(c)) c.unknown_since = now();
    ++c.lookup_count;
    c.next_action_at.reset();
    transition(c, charge_state::reconciling, "lookup " + std::to_string(c.lookup_count));
    job j;
    j.what = job::kind::lookup;
    j.probe = probe;
    j.request_attempt_id = journal_request(c, "lookup", c.lookup_count, "GET /payments/findAll");
    j.charge = c;
    return j;
}

std::int64_t engine::impl::journal_request(const storage::charge_record& c, const char* kind,
                                           std::int64_t number, std::string summary) {
    storage::attempt_record a;
    a.at = now();
    a.charge_id = c.id;
    a.kind = kind;
    a.phase = "request";
    a.merchant_uid = c.merchant_uid;
    a.attempt_number = number;
    a.amount = c.amount;
    a.request_summary = std::move(summary);
    return store.append_attempt(a);
}

asio::awaitable<job_result> engine::impl::execute(job j) {
    job_result r;
    if (j.what == job::kind::refund || j.what == job::kind::refund_lookup) {
        co_return co_await execute_refund(std::move(j));
    }
    if (j.what == job::kind::charge) {
        ++summary.sent;
        gateway::charge_request request = j.request;
        r.charge = co_await gateway.charge(std::move(request));
        record_call(r.charge->journal, j.probe,
                    j.charge.decline_count == 0 && j.charge.refusal_count == 0);
        if (r.charge->journal.result == gateway::outcome::invalid_billing_key) {
            std::string customer_uid = j.charge.customer_uid;
            r.customer = co_await gateway.get_customer(std::move(customer_uid));
        }
    } else {
        std::string merchant_uid = j.charge.merchant_uid;
        r.lookup = co_await gateway.find_all(std::move(merchant_uid));
        record_call(r.lookup->journal, j.probe, false);
    }
    r.done = std::move(j);
    co_return r;
}

}  // namespace billingd::scheduler
