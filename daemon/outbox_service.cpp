#include "daemon/outbox_service.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <stdexcept>

#include "calendar/calendar.hpp"
#include "outbox/notices.hpp"
#include "outbox/outbox_store.hpp"
#include "outbox/transports.hpp"
#include "outbox/worker.hpp"

namespace billingd::daemon {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;

namespace {

constexpr auto notice_rescan = std::chrono::seconds{60};

void log_delivery(const outbox::delivery_note& n) {
    if (n.delivered) {
        spdlog::info("event delivered channel={} event_id={} type={} attempt={}", n.channel,
                     n.event_id, n.type, n.attempts);
    } else if (n.dead) {
        spdlog::error(
            "event dead-lettered channel={} event_id={} type={} attempts={} error={} "
            "(billingctl events dead; billingctl events redeliver {})",
            n.channel, n.event_id, n.type, n.attempts, n.error, n.event_id);
    } else {
        spdlog::warn(
            "event delivery failed channel={} event_id={} type={} attempt={} error={} "
            "next_attempt={}",
            n.channel, n.event_id, n.type, n.attempts, n.error,
            calendar::format_utc(
                std::chrono::sys_seconds{std::chrono::seconds{n.next_attempt_at.value_or(0)}}));
    }
}

}  // namespace

struct outbox_service::impl {
    impl(asio::io_context& io_, storage::store& store_, const scheduler::clock& clock_,
         const config& cfg_)
        : io(io_),
          clock(clock_),
          cfg(cfg_.events),
          outbox(store_.db()),
          notices(store_.db()),
          done(io_) {
        std::vector<std::unique_ptr<outbox::channel>> channels;
        try {
            if (!cfg.webhook_url.empty()) {
                outbox::webhook_options o;
                o.url = cfg.webhook_url;
                o.keys = cfg.webhook_keys;
                o.connect_timeout = cfg.connect_timeout;
                o.timeout = cfg.webhook_timeout;
                o.ca_file = cfg.ca_file;
                channels.push_back(outbox::make_webhook_channel(io, std::move(o)));
            }
            if (!cfg.exec_command.empty()) {
                outbox::exec_options o;
                o.argv = cfg.exec_command;
                o.timeout = cfg.exec_timeout;
                channels.push_back(outbox::make_exec_channel(io, std::move(o)));
            }
        } catch (const std::invalid_argument& e) {
            throw config_error(std::string("[events] ") + e.what());
        }
        if (channels.empty()) return;
        outbox::worker_config w;
        w.retry = cfg.retry;
        w.max_in_flight = cfg.max_in_flight;
        w.install_id = store_.install().install_id.value_or("");
        // New events are announced by poke() after each charging pass (the daemon wakes
        // within a second of another process's commit), so the worker need not poll often:
        // an idle billingd keeps its one wake-up a second.
        w.poll_interval = std::chrono::seconds{30};
        worker = std::make_unique<outbox::worker>(outbox, clock, w, std::move(channels));
        worker->on_result(log_delivery);
        worker->on_error([](const std::exception& e) {
            spdlog::error("event delivery: database error={} (retried)", e.what());
        });
        worker->open();
    }

    void produce_notices() {
        const auto now = clock.now().time_since_epoch().count();
        const auto pass = notices.produce(now, cfg.notice_days);
        if (pass.written > 0) spdlog::info("notices written={}", pass.written);
        next_notice = pass.next_at;
        last_scan = steady::now();
    }

    asio::io_context& io;
    const scheduler::clock& clock;
    events_config cfg;
    outbox::outbox_store outbox;
    outbox::notice_producer notices;
    std::unique_ptr<outbox::worker> worker;
    std::optional<std::int64_t> next_notice;
    std::optional<steady::time_point> last_scan;
    bool running = false;
    asio::steady_timer done;
};

outbox_service::outbox_service(asio::io_context& io, storage::store& store,
                               const scheduler::clock& clock, const config& cfg)
    : impl_(std::make_unique<impl>(io, store, clock, cfg)) {}

outbox_service::~outbox_service() = default;

void outbox_service::start() {
    auto& m = *impl_;
    if (!m.worker) return;
    spdlog::info("event delivery started webhook={} exec={}",
                 m.cfg.webhook_url.empty() ? "no" : m.cfg.webhook_url,
                 m.cfg.exec_command.empty() ? "no" : m.cfg.exec_command.front());
    m.running = true;
    m.done.expires_at(asio::steady_timer::time_point::max());
    asio::co_spawn(m.io, m.worker->run(), [&m](std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                spdlog::critical("event delivery stopped: {}", ex.what());
            }
        }
        m.running = false;
        m.done.cancel();
    });
}

void outbox_service::after_pass() {
    auto& m = *impl_;
    const auto now = m.clock.now().time_since_epoch().count();
    if (!m.last_scan || steady::now() - *m.last_scan >= notice_rescan ||
        (m.next_notice && *m.next_notice <= now))
        m.produce_notices();
    if (m.worker) m.worker->poke();
}

std::optional<std::chrono::sys_seconds> outbox_service::next_wakeup() const {
    if (!impl_->next_notice) return std::nullopt;
    return std::chrono::sys_seconds{std::chrono::seconds{*impl_->next_notice}};
}

void outbox_service::stop() {
    if (impl_->worker) impl_->worker->stop();
}

asio::awaitable<void> outbox_service::stopped() {
    auto& m = *impl_;
    while (m.running) {
        boost::system::error_code ec;
        co_await m.done.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
}

std::chrono::seconds outbox_service::drain_bound() const {
    const auto& c = impl_->cfg;
    const auto webhook = c.webhook_url.empty() ? std::chrono::milliseconds{0}
                                               : c.connect_timeout + c.webhook_timeout;
    const auto exec = c.exec_command.empty() ? std::chrono::milliseconds{0} : c.exec_timeout;
    return std::chrono::duration_cast<std::chrono::seconds>(std::max(webhook, exec)) +
           std::chrono::seconds{1};
}

asio::awaitable<void> outbox_service::run_once() {
    auto& m = *impl_;
    m.produce_notices();
    if (m.worker) co_await m.worker->run_until_idle();
}

}  // namespace billingd::daemon
