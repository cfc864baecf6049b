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
    parked += o.parked;
    reconciled += o.reconciled;
    canceled += o.canceled;
    paid_amount += o.paid_amount;
    halted = halted || o.halted;
    if (halt_reason.empty()) halt_reason = o.halt_reason;
    work_left = o.work_left;
    return *this;
}

engine::engine(storage::store& store, gateway::client& gateway, const clock& clock,
               engine_config config)
    : impl_(std::make_unique<impl>(store, gateway, clock, std::move(config))) {
    if (impl_->config.max_in_flight == 0) impl_->config.max_in_flight = 1;
    if (impl_->config.batch_size < 1) impl_->config.batch_size = 1;
}

engine::~engine() = default;

void engine::on_decision(std::function<void(const decision&)> sink) {
    impl_->sink = std::move(sink);
}

bool engine::halted() const {
    return impl_->halted;
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

void engine::impl::record_call(const gateway::exchange& x, bool was_probe) {
    const bool failed =
        x.result == gateway::outcome::transient ||
        (x.result == gateway::outcome::unknown && (x.http_status == 0 || x.http_status >= 500));
    recent_calls.push_back(failed);
    while (recent_calls.size() > std::max<std::size_t>(1, config.breaker_window))
        recent_calls.pop_front();
    if (was_probe) probe_in_flight = false;
    storage::charge_record none;
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

std::int64_t engine::impl::sends_in_last_hour(std::int64_t t) {
    while (!recent_sends.empty() && recent_sends.front() <= t - 3600) recent_sends.pop_front();
    return static_cast<std::int64_t>(recent_sends.size());
}

bool engine::impl::hourly_limit_reached(std::int64_t t) {
    return config.max_charges_per_hour > 0 && sends_in_last_hour(t) >= config.max_charges_per_hour;
}

std::int64_t engine::impl::hourly_limit_reopens_at() const {
    return recent_sends.empty() ? now() : recent_sends.front() + 3600;
}

void engine::impl::guardrail_event(const std::string& which, const std::string& detail) {
    if (guardrail_reported) return;  // once per pass
    guardrail_reported = true;
    record_event(store, now(), std::nullopt, std::nullopt, "guardrail." + which, std::nullopt,
                 std::nullopt, detail, "billingd");
    storage::charge_record none;
    decide(none, "guardrail", which + ": " + detail);
}

void engine::stop() {
    impl_->stopping = true;
}

int engine::recover() {
    auto& m = *impl_;
    int recovered = 0;
    for (auto state : {charge_state::sending, charge_state::reconciling}) {
        for (;;) {
            auto tx = m.store.begin();
            auto rows = m.store.charges_in_state(state, m.config.batch_size);
            if (rows.empty()) break;
            for (auto& c : rows) {
                if (!c.unknown_since) c.unknown_since = m.now();
                // PORTONE_V1: give the PG a moment before trusting "no record" (--once asks
                // at once: its operator wants the answer now).
                const auto wait =
                    m.config.settle_unknown_immediately || m.config.unknown.first_delays.empty()
                        ? std::int64_t{0}
                        : m.config.unknown.first_delays.front().count();
                c.next_action_at = m.now() + wait;
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
    // Halted by a configuration error: nothing is sent until a restart, so due rows must not
    // make the loop spin (a change by another process still wakes the daemon).
    if (m.halted) return std::nullopt;
    if (!m.store.unscheduled_subscriptions(0, 1).empty()) return m.clk.now();
    if (auto t = m.store.earliest_wakeup()) {
        // While the breaker or the hourly guardrail holds sends back, rows due now wait.
        std::int64_t held_until = 0;
        if (m.breaker_open) held_until = m.breaker_probe_at;
        if (m.hourly_limit_reached(m.now()))
            held_until = std::max(held_until, m.hourly_limit_reopens_at());
        if (*t <= m.now() && held_until > *t) return from_unix(held_until);
        return from_unix(*t);
    }
    return std::nullopt;
}

asio::awaitable<pass_summary> engine::run_pass() {
    auto& m = *impl_;
    m.summary = pass_summary{};
    m.sends_this_pass = 0;
    m.guardrail_reported = false;
    m.queue_exhausted = false;
    m.failed = false;
    m.pending.clear();
    m.queue.clear();
    if (m.stopping) co_return m.summary;
    // Between passes nothing is on the wire, so a row still `sending`/`reconciling` was cut
    // off by a failure (storage, or an exception in a worker): it is in doubt.
    recover();

    m.schedule_new_subscriptions();
    m.materialise_due_subscriptions();

    auto executor = co_await asio::this_coro::executor;
    std::size_t active = m.config.max_in_flight;
    std::exception_ptr failure;
    asio::steady_timer all_done(executor, asio::steady_timer::time_point::max());
    for (std::size_t i = 0; i < m.config.max_in_flight; ++i) {
        asio::co_spawn(executor, m.worker(), [&](std::exception_ptr e) {
            if (e && !failure) failure = e;
            if (--active == 0) all_done.cancel();
        });
    }
    boost::system::error_code ec;
    co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    m.flush_pending();
    m.queue.clear();
    if (failure) std::rethrow_exception(failure);
    co_return m.summary;
}

asio::awaitable<pass_summary> engine::run_until_idle() {
    auto& m = *impl_;
    pass_summary total;
    for (int pass = 0; pass < 10'000; ++pass) {
        auto s = co_await run_pass();
        const bool progressed = s.scheduled + s.materialised + s.sent + s.reconciled + s.skipped +
                                    s.canceled + s.parked >
                                0;
        total += s;
        if (m.halted || m.stopping || s.work_left || !progressed) break;
        const auto t = m.now();
        if (m.store.due_charges(t, 1).empty() && m.store.due_subscriptions(t, 1).empty() &&
            m.store.unscheduled_subscriptions(0, 1).empty())
            break;
    }
    co_return total;
}

// Takes the next batch of due charges, decides what to do with each, and commits the
// write-ahead state (`sending` + a request journal row, or `reconciling`) for the whole batch
// in one transaction before any of its requests leaves. Jobs reach the shared queue, and the
// in-memory counters change, only after that commit: if anything throws, nothing is sent.
// False when nothing is due.
bool engine::impl::refill_queue() {
    if (queue_exhausted || stopping || halted || failed) return false;
    const auto t = now();
    const bool sends_paused = breaker_open && (probe_in_flight || t < breaker_probe_at);
    // Read inside the write transaction: a row an operator changed a moment ago (billingctl)
    // is seen as it is now, never overwritten with a stale copy.
    auto tx = store.begin();
    auto rows = sends_paused ? store.due_in_doubt_charges(t, config.batch_size)
                             : store.due_charges(t, config.batch_size);
    if (sends_paused) summary.work_left = true;
    if (rows.empty()) {
        queue_exhausted = true;
        return false;
    }
    std::vector<job> batch;
    bool sends_blocked = false;
    bool probe_taken = false;
    std::int64_t sends_in_batch = 0;
    for (auto& c : rows) {
        // A retry_wait row that was in doubt before it was parked and retried by an operator
        // is looked up first: the earlier attempt may still have moved money.
        const bool in_doubt = domain::is_in_doubt(c.state) ||
                              (c.state == charge_state::retry_wait && c.unknown_since);
        const bool sendable = c.state == charge_state::scheduled ||
                              c.state == charge_state::retry_wait ||
                              c.state == charge_state::declined;
        if (!in_doubt && !sendable) {
            // Final or parked rows need no action (a hand edit set next_action_at).
            c.next_action_at.reset();
            c.updated_at = t;
            store.update_charge(c);
            continue;
        }
        job j;
        if (in_doubt) {
            // Something may have moved money: only a lookup, never a send.
            if (c.state == charge_state::sending) transition(c, charge_state::unknown, "in doubt");
            if (!c.unknown_since) c.unknown_since = t;
            ++c.lookup_count;
            c.next_action_at.reset();
            transition(c, charge_state::reconciling, "lookup " + std::to_string(c.lookup_count));
            j.what = job::kind::lookup;
        } else {
            if (sends_blocked) continue;  // a count limit or the breaker holds sends back
            auto s = store.find_subscription(c.subscription_id);
            if (!s || !domain::is_billable(s->status)) {
                c.next_action_at.reset();
                transition(
                    c, charge_state::canceled,
                    "subscription is " + std::string{s ? domain::to_string(s->status) : "gone"});
                ++summary.canceled;
                decide(c, "canceled", "subscription not billable");
                continue;
            }
            if (config.max_amount_per_charge > 0 && c.amount > config.max_amount_per_charge) {
                park(c, "guardrail: amount " + std::to_string(c.amount) +
                            " exceeds max_amount_per_charge " +
                            std::to_string(config.max_amount_per_charge));
                continue;
            }
            if (c.attempt_count >= config.max_attempts_per_charge) {
                park(c, "sent " + std::to_string(c.attempt_count) +
                            " times without settling (max_attempts_per_charge)");
                continue;
            }
            if (config.max_charges_per_pass > 0 &&
                sends_this_pass + sends_in_batch >= config.max_charges_per_pass) {
                sends_blocked = true;
                guardrail_event("max_charges_per_pass",
                                std::to_string(config.max_charges_per_pass) +
                                    " charges sent in this pass; the rest wait for the next");
                continue;
            }
            if (config.max_charges_per_hour > 0 &&
                sends_in_batch + sends_in_last_hour(t) >= config.max_charges_per_hour) {
                sends_blocked = true;
                guardrail_event("max_charges_per_hour",
                                std::to_string(config.max_charges_per_hour) +
                                    " charges sent in the last hour; the rest wait");
                continue;
            }
            if (config.quiet_zone && !config.quiet.empty()) {
                const auto allowed =
                    to_unix(calendar::next_allowed(from_unix(t), config.quiet, config.quiet_zone));
                if (allowed > t) {
                    c.next_action_at = allowed;
                    c.updated_at = t;
                    store.update_charge(c);
                    continue;
                }
            }
            if (breaker_open) {
                // Half-open: one probe at a time; everything else stays due.
                if (probe_taken || probe_in_flight || t < breaker_probe_at) {
                    sends_blocked = true;
                    continue;
                }
                probe_taken = true;
                j.breaker_probe = true;
            }
            ++c.attempt_count;
            c.next_action_at.reset();
            transition(c, charge_state::sending, "attempt " + std::to_string(c.attempt_count));
            ++sends_in_batch;
            j.what = job::kind::charge;
            j.request.customer_uid = c.customer_uid;
            j.request.merchant_uid = c.merchant_uid;
            j.request.amount = c.amount;
            j.request.currency = c.currency;
            j.request.name = c.order_name;
            j.request.buyer_name = s->buyer_name.value_or("");
            j.request.buyer_email = s->buyer_email.value_or("");
            j.request.buyer_tel = s->buyer_tel.value_or("");
            j.request.custom_data = "{\"subscription_id\":" + std::to_string(c.subscription_id) +
                                    ",\"period\":" + std::to_string(c.period_index) + "}";
        }
        storage::attempt_record a;
        a.at = t;
        a.charge_id = c.id;
        a.kind = j.what == job::kind::charge ? "charge" : "lookup";
        a.phase = "request";
        a.merchant_uid = c.merchant_uid;
        a.attempt_number = j.what == job::kind::charge ? c.attempt_count : c.lookup_count;
        a.amount = c.amount;
        a.request_summary = j.what == job::kind::charge
                                ? "POST /subscribe/payments/again merchant_uid=" + c.merchant_uid +
                                      " customer_uid=" + c.customer_uid +
                                      " amount=" + std::to_string(c.amount)
                                : "GET /payments/findAll/" + c.merchant_uid;
        j.request_attempt_id = store.append_attempt(a);
        j.charge = c;
        batch.push_back(std::move(j));
    }
    if (config.at_step) config.at_step("before_write_ahead_commit");
    tx.commit();  // write-ahead: durable before any of these requests is sent
    if (config.at_step) config.at_step("after_write_ahead_commit");

    // Committed: now the batch may go out.
    if (sends_blocked) {
        summary.work_left = true;
        queue_exhausted = true;  // blocked rows stay due; do not pick them up again this pass
    }
    for (auto& j : batch) {
        if (j.what != job::kind::charge) continue;
        ++sends_this_pass;
        if (config.max_charges_per_hour > 0) recent_sends.push_back(t);
        if (j.breaker_probe) probe_in_flight = true;
    }
    for (auto& j : batch) queue.push_back(std::move(j));
    return true;
}

asio::awaitable<void> engine::impl::worker() {
    try {
        co_await work_loop();
    } catch (...) {
        // Storage or a gateway call failed: the other workers send nothing more this pass;
        // rows left `sending`/`reconciling` are recovered at the start of the next one.
        failed = true;
        throw;
    }
}

asio::awaitable<void> engine::impl::work_loop() {
    for (;;) {
        if (failed) break;  // storage failed: send nothing more; the next pass recovers
        if (queue.empty() && !refill_queue()) break;
        if (queue.empty()) continue;
        job j = std::move(queue.front());
        queue.pop_front();
        job_result r;
        const bool hold_charge = stopping || halted || (!j.breaker_probe && breaker_open);
        if (j.what == job::kind::charge && hold_charge) {
            // Committed but not sent (stopping, halted, or the breaker opened meanwhile): it
            // provably never left, so it may be sent again later.
            r.charge.emplace();
            r.charge->journal.kind = "charge";
            r.charge->journal.request_written = false;
            r.charge->journal.result = gateway::outcome::transient;
            r.charge->journal.message = stopping ? "not sent: stopping"
                                        : halted ? "not sent: charging halted"
                                                 : "not sent: circuit breaker open";
            r.not_sent = true;
            if (j.breaker_probe) probe_in_flight = false;
            r.done = std::move(j);
        } else if (j.what == job::kind::lookup && stopping) {
            r.lookup.emplace();
            r.lookup->journal.kind = "lookup";
            r.lookup->journal.result = gateway::outcome::unknown;
            r.lookup->journal.message = "not looked up: stopping";
            r.lookup->verdict = gateway::outcome::unknown;
            r.not_sent = true;
            r.done = std::move(j);
        } else {
            r = co_await execute(std::move(j));
        }
        pending.push_back(std::move(r));
        // Let the other workers' answers that are ready join this commit.
        co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
        flush_pending();
    }
}

asio::awaitable<job_result> engine::impl::execute(job j) {
    job_result r;
    if (j.what == job::kind::charge) {
        ++summary.sent;
        gateway::charge_request request = j.request;
        r.charge = co_await gateway.charge(std::move(request));
        record_call(r.charge->journal, j.breaker_probe);
        if (r.charge->journal.result == gateway::outcome::invalid_billing_key) {
            std::string customer_uid = j.charge.customer_uid;
            r.customer = co_await gateway.get_customer(std::move(customer_uid));
        }
    } else {
        std::string merchant_uid = j.charge.merchant_uid;
        r.lookup = co_await gateway.find_all(std::move(merchant_uid));
        record_call(r.lookup->journal, false);
    }
    r.done = std::move(j);
    co_return r;
}

void engine::impl::flush_pending() {
    if (pending.empty() || failed) return;
    auto batch = std::move(pending);
    pending.clear();
    try {
        auto tx = store.begin();
        for (auto& r : batch) apply(r);
        if (config.at_step) config.at_step("before_outcome_commit");
        tx.commit();
    } catch (...) {
        // Nothing of this batch is durable: its rows are still `sending`/`reconciling` and
        // will be reconciled (looked up, never blindly resent).
        failed = true;
        throw;
    }
}

}  // namespace billingd::scheduler
