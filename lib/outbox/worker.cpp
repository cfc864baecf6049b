#include "outbox/worker.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <exception>
#include <random>
#include <set>

#include "outbox/payload.hpp"

namespace billingd::outbox {

namespace asio = boost::asio;

namespace {

enum class entry_state { queued, in_flight, settled };

struct entry {
    storage::event_record event;
    std::string type;
    entry_state state = entry_state::queued;
};

struct completion {
    std::size_t lane = 0;
    bool retry = false;  // a delivery row's attempt (else a window entry's)
    storage::event_record event;
    std::string type;
    std::int64_t attempts_before = 0;  // failures recorded before this attempt
    std::int64_t row_created_at = 0;
    std::int64_t started_at = 0;
    attempt_result result;
};

}  // namespace

struct worker::impl {
    struct lane {
        std::unique_ptr<channel> ch;
        std::string name;
        std::int64_t cursor = 0;  // as persisted
        std::int64_t loaded = 0;  // last event id read into the window
        std::deque<entry> window;
        std::set<std::int64_t> retrying;  // event ids of rows being attempted
        std::size_t in_flight = 0;
        bool broken = false;  // a storage error left the window unsure: rebuild it
    };

    impl(outbox_store& s, const scheduler::clock& c, worker_config cfg,
         std::vector<std::unique_ptr<channel>> channels, std::function<double()> random)
        : store(s), clock(c), config(std::move(cfg)), unit_random(std::move(random)) {
        for (auto& ch : channels) {
            lane l;
            l.name = std::string(ch->name());
            l.ch = std::move(ch);
            lanes.push_back(std::move(l));
        }
        if (!unit_random) {
            unit_random = [engine = std::mt19937_64{std::random_device{}()}]() mutable {
                return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
            };
        }
    }

    std::int64_t now() const { return clock.now().time_since_epoch().count(); }

    std::size_t total_in_flight() const {
        std::size_t n = 0;
        for (const auto& l : lanes) n += l.in_flight;
        return n;
    }

    outgoing message_for(const storage::event_record& e, const std::string& type) const {
        outgoing m;
        m.event_id = e.id;
        m.id = delivery_id(config.install_id, e.id);
        m.type = type;
        m.timestamp = now();
        m.body = payload(e, type, config.install_id);
        return m;
    }

    void start(std::size_t index, completion c) {
        auto& l = lanes[index];
        ++l.in_flight;
        c.lane = index;
        c.started_at = now();
        outgoing m = message_for(c.event, c.type);
        asio::co_spawn(
            executor, attempt(l.ch.get(), std::move(m), std::move(c)),
            [this](std::exception_ptr e, completion done) {
                if (e) {  // a transport must not throw; count it as a failed attempt
                    try {
                        std::rethrow_exception(e);
                    } catch (const std::exception& ex) {
                        done.result = {false, std::string("internal error: ") + ex.what()};
                    } catch (...) {
                        done.result = {false, "internal error"};
                    }
                }
                completions.push_back(std::move(done));
                wake->cancel();
            });
    }

    static asio::awaitable<completion> attempt(channel* ch, outgoing m, completion c) {
        c.result = co_await ch->deliver(std::move(m));
        co_return c;
    }

    // Reads events after the window into it, up to the window size.
    void refill(lane& l) {
        if (l.window.size() >= config.window) return;
        const auto rows =
            store.events_after(l.loaded, static_cast<int>(config.window - l.window.size()));
        for (const auto& e : rows) {
            entry en;
            en.event = e;
            l.loaded = e.id;
            if (auto type = merchant_type(e)) {
                en.type = std::string(*type);
                // A row exists when a crash came between writing it and moving the cursor.
                if (store.has_delivery(l.name, e.id)) en.state = entry_state::settled;
            } else {
                en.state = entry_state::settled;
            }
            l.window.push_back(std::move(en));
        }
    }

    bool start_due(std::size_t index, bool& started) {
        auto& l = lanes[index];
        if (l.in_flight >= config.max_in_flight) return false;
        const int want = static_cast<int>(config.max_in_flight - l.in_flight + l.retrying.size());
        for (const auto& row : store.due(l.name, now(), want)) {
            if (l.in_flight >= config.max_in_flight) break;
            if (l.retrying.count(row.event_id)) continue;
            auto e = store.event(row.event_id);
            std::optional<std::string_view> type = e ? merchant_type(*e) : std::nullopt;
            if (!type) {  // not deliverable (kind unknown to this version): drop the row
                store.delete_delivery(l.name, row.event_id);
                continue;
            }
            completion c;
            c.retry = true;
            c.event = *e;
            c.type = std::string(*type);
            c.attempts_before = row.attempts;
            c.row_created_at = row.created_at;
            l.retrying.insert(row.event_id);
            start(index, std::move(c));
            started = true;
        }
        return true;
    }

    void start_new(std::size_t index, bool& started) {
        auto& l = lanes[index];
        std::set<std::int64_t> busy;  // subscriptions with an unsettled earlier event
        for (auto& en : l.window) {
            if (en.state == entry_state::settled) continue;
            const auto sub = en.event.subscription_id;
            if (en.state == entry_state::in_flight) {
                if (sub) busy.insert(*sub);
                continue;
            }
            if (sub && busy.count(*sub)) continue;
            if (sub && store.blocked(l.name, *sub, en.event.id)) {
                store.insert_waiting(l.name, en.event, now());
                en.state = entry_state::settled;
                continue;
            }
            if (sub) busy.insert(*sub);
            if (l.in_flight >= config.max_in_flight) continue;
            en.state = entry_state::in_flight;
            completion c;
            c.event = en.event;
            c.type = en.type;
            start(index, std::move(c));
            started = true;
        }
    }

    void advance_cursor(lane& l) {
        std::int64_t cursor = l.cursor;
        while (!l.window.empty() && l.window.front().state == entry_state::settled) {
            cursor = l.window.front().event.id;
            l.window.pop_front();
        }
        // Non-merchant events past the window's end need no attention either, but are read
        // into it first: the cursor only moves over what was looked at.
        if (cursor != l.cursor) {
            store.set_cursor(l.name, cursor, now());
            l.cursor = cursor;
        }
    }

    void record(completion& c) {
        auto& l = lanes[c.lane];
        const std::int64_t t = now();
        delivery_note note;
        note.channel = l.name;
        note.event_id = c.event.id;
        note.type = c.type;
        note.delivered = c.result.delivered;
        note.attempts = c.attempts_before + 1;
        note.error = c.result.error;
        if (c.result.delivered) {
            if (c.retry) {
                storage::write_transaction tx(store.db());
                store.delete_delivery(l.name, c.event.id);
                if (c.event.subscription_id)
                    store.release_next(l.name, *c.event.subscription_id, t);
                tx.commit();
            }
        } else {
            const std::int64_t created = c.retry ? c.row_created_at : c.started_at;
            std::optional<std::int64_t> next;
            if (t - created < config.retry.horizon.count()) {
                next = t + retry_delay(config.retry, static_cast<int>(note.attempts), unit_random())
                               .count();
            }
            storage::write_transaction tx(store.db());
            store.record_failure(l.name, c.event, note.attempts, next, c.result.error, t);
            // A dead event no longer holds its subscription's later events back.
            if (!next && c.event.subscription_id)
                store.release_next(l.name, *c.event.subscription_id, t);
            tx.commit();
            note.dead = !next;
            note.next_attempt_at = next;
        }
        if (c.retry) {
            l.retrying.erase(c.event.id);
        } else {
            for (auto& en : l.window)
                if (en.event.id == c.event.id) en.state = entry_state::settled;
        }
        if (on_result) on_result(note);
    }

    // One step: record what finished, start what may start. Returns whether anything started.
    bool step() {
        bool started = false;
        while (!completions.empty()) {
            auto c = std::move(completions.front());
            completions.pop_front();
            auto& l = lanes[c.lane];
            --l.in_flight;
            try {
                record(c);
            } catch (const std::exception& e) {
                // Not recorded: the event is still after the cursor or in its row, and is
                // attempted again once the window is rebuilt.
                l.broken = true;
                if (c.retry) l.retrying.erase(c.event.id);
                report(e);
            }
        }
        for (std::size_t i = 0; i < lanes.size(); ++i) {
            auto& l = lanes[i];
            try {
                if (l.broken) {
                    if (l.in_flight > 0) continue;
                    l.window.clear();
                    l.retrying.clear();
                    l.loaded = l.cursor;
                    l.broken = false;
                }
                if (!stopping) {
                    start_due(i, started);
                    refill(l);
                    start_new(i, started);
                }
                advance_cursor(l);
            } catch (const std::exception& e) {
                l.broken = true;
                report(e);
            }
        }
        return started;
    }

    void report(const std::exception& e) {
        if (on_error) on_error(e);
    }

    // The earliest retry time of any channel, to sleep no longer than that.
    std::optional<std::int64_t> next_retry() {
        std::optional<std::int64_t> next;
        for (auto& l : lanes) {
            try {
                if (auto t = store.next_due_at(l.name)) next = next ? std::min(*next, *t) : *t;
            } catch (const std::exception& e) {
                report(e);
            }
        }
        return next;
    }

    asio::awaitable<void> loop(bool until_idle) {
        executor = co_await asio::this_coro::executor;
        asio::steady_timer timer(executor);
        wake = &timer;
        for (;;) {
            const bool started = step();
            const std::size_t flying = total_in_flight();
            if (stopping && flying == 0 && completions.empty()) break;
            if (until_idle && flying == 0 && completions.empty() && !started) break;
            if (!completions.empty()) continue;
            std::chrono::steady_clock::duration wait = asio::steady_timer::duration::max();
            if (!until_idle && !stopping) {
                wait = config.poll_interval;
                if (auto next = next_retry()) {
                    // A due row that did not start is being attempted already (or its lane is
                    // full): a completion wakes us; otherwise look again shortly.
                    const auto in = *next > now() ? std::chrono::seconds{*next - now()}
                                    : flying > 0  ? std::chrono::seconds{0}
                                                  : std::chrono::seconds{1};
                    if (in > std::chrono::seconds{0} && in < wait) wait = in;
                }
            }
            if (wait == asio::steady_timer::duration::max()) {
                timer.expires_at(asio::steady_timer::time_point::max());
            } else {
                timer.expires_after(wait);
            }
            boost::system::error_code ec;
            co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
        wake = nullptr;
    }

    outbox_store& store;
    const scheduler::clock& clock;
    worker_config config;
    std::function<double()> unit_random;
    std::vector<lane> lanes;
    std::deque<completion> completions;
    asio::any_io_executor executor;
    asio::steady_timer* wake = nullptr;
    bool stopping = false;
    std::function<void(const delivery_note&)> on_result;
    std::function<void(const std::exception&)> on_error;
};

worker::worker(outbox_store& store, const scheduler::clock& clock, worker_config config,
               std::vector<std::unique_ptr<channel>> channels, std::function<double()> unit_random)
    : impl_(std::make_unique<impl>(store, clock, std::move(config), std::move(channels),
                                   std::move(unit_random))) {}

worker::~worker() = default;

void worker::on_result(std::function<void(const delivery_note&)> sink) {
    impl_->on_result = std::move(sink);
}

void worker::on_error(std::function<void(const std::exception&)> sink) {
    impl_->on_error = std::move(sink);
}

void worker::open() {
    for (auto& l : impl_->lanes) {
        l.cursor = impl_->store.open_channel(l.name, impl_->now());
        l.loaded = l.cursor;
    }
}

asio::awaitable<void> worker::run() {
    co_await impl_->loop(false);
}

asio::awaitable<void> worker::run_until_idle() {
    co_await impl_->loop(true);
}

void worker::poke() {
    if (impl_->wake) impl_->wake->cancel();
}

void worker::stop() {
    impl_->stopping = true;
    poke();
}

std::size_t worker::in_flight() const {
    return impl_->total_in_flight();
}

}  // namespace billingd::outbox
