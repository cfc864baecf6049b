#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <string>
#include <vector>

#include "metrics/database_gauges.hpp"
#include "metrics/exposition.hpp"
#include "metrics/histogram.hpp"
#include "metrics/observed_client.hpp"
#include "metrics/process_metrics.hpp"
#include "storage/sqlite.hpp"
#include "support.hpp"

using namespace billingd;
using billingd::test::add_charge;
using billingd::test::add_subscription;

namespace {

bool has_line(const std::string& text, const std::string& line) {
    return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

}  // namespace

TEST_CASE("label values are escaped and values are written as Prometheus reads them") {
    metrics::exposition out;
    out.family("billingd_x", "gauge", "Help with a \\ backslash\nand a newline.");
    out.sample("billingd_x", {{"reason", "a \"quoted\" \\ line\nbreak"}}, 0.25);
    out.sample("billingd_x", {{"reason", "한도초과"}}, 3);
    const std::string& t = out.text();
    CHECK(has_line(t, "# HELP billingd_x Help with a \\\\ backslash\\nand a newline."));
    CHECK(has_line(t, "# TYPE billingd_x gauge"));
    CHECK(has_line(t, "billingd_x{reason=\"a \\\"quoted\\\" \\\\ line\\nbreak\"} 0.25"));
    CHECK(has_line(t, "billingd_x{reason=\"한도초과\"} 3"));
    CHECK(metrics::format_value(1e300 * 1e300) == "+Inf");
    CHECK(metrics::format_value(1796020906) == "1796020906");
}

TEST_CASE("a histogram renders cumulative buckets, a sum and a count") {
    metrics::histogram h({0.1, 1});
    h.observe(0.05);
    h.observe(0.1);  // on the bound: le="0.1"
    h.observe(0.5);
    h.observe(7);
    metrics::exposition out;
    h.render(out, "billingd_t_seconds", {{"endpoint", "charge"}});
    const std::string& t = out.text();
    CHECK(has_line(t, "billingd_t_seconds_bucket{endpoint=\"charge\",le=\"0.1\"} 2"));
    CHECK(has_line(t, "billingd_t_seconds_bucket{endpoint=\"charge\",le=\"1\"} 3"));
    CHECK(has_line(t, "billingd_t_seconds_bucket{endpoint=\"charge\",le=\"+Inf\"} 4"));
    CHECK(has_line(t, "billingd_t_seconds_sum{endpoint=\"charge\"} 7.65"));
    CHECK(has_line(t, "billingd_t_seconds_count{endpoint=\"charge\"} 4"));
}

TEST_CASE("engine decisions count as charge outcomes or engine events") {
    metrics::process_metrics m("1.2.3");
    m.count_decision("paid", true);
    m.count_decision("paid", true);
    m.count_decision("declined", true);
    m.count_decision("skipped", false);  // missed periods come without a charge row
    m.count_decision("breaker_open", false);
    m.pass_completed(1'796'000'000);
    m.started(1'795'999'000);
    metrics::exposition out;
    metrics::engine_state state;
    state.breaker_open = true;
    state.halted = true;
    m.render(out, state);
    const std::string& t = out.text();
    CHECK(has_line(t, "billingd_charge_outcomes_total{outcome=\"paid\"} 2"));
    CHECK(has_line(t, "billingd_charge_outcomes_total{outcome=\"declined\"} 1"));
    CHECK(has_line(t, "billingd_charge_outcomes_total{outcome=\"skipped\"} 1"));
    CHECK(has_line(t, "billingd_charge_outcomes_total{outcome=\"unknown\"} 0"));
    CHECK(has_line(t, "billingd_engine_events_total{event=\"breaker_open\"} 1"));
    CHECK(has_line(t, "billingd_circuit_breaker_open 1"));
    CHECK(has_line(t, "billingd_halted 1"));
    CHECK(has_line(t, "billingd_build_info{version=\"1.2.3\"} 1"));
    CHECK(has_line(t, "billingd_last_pass_completed_timestamp_seconds 1796000000"));
    CHECK(has_line(t, "billingd_passes_total 1"));
    CHECK(has_line(t, "billingd_start_time_seconds 1795999000"));
}

TEST_CASE("every commit of a write transaction is timed once an observer is set") {
    test::temp_db tmp;
    storage::connection db(tmp.options());
    metrics::process_metrics m("x");
    {
        storage::write_transaction tx(db);  // no observer: not counted
        tx.commit();
    }
    CHECK(m.commit_count() == 0);
    db.set_commit_observer(metrics::commit_observer_of(m));
    for (int i = 0; i < 3; ++i) {
        storage::write_transaction tx(db);
        tx.commit();
    }
    {
        storage::write_transaction rolled_back(db);  // never committed: not a commit
    }
    CHECK(m.commit_count() == 3);
    db.set_commit_observer({});
    {
        storage::write_transaction tx(db);
        tx.commit();
    }
    CHECK(m.commit_count() == 3);
}

namespace {

// Answers every call at once with a scripted class and latency.
class scripted_client final : public gateway::client {
  public:
    boost::asio::awaitable<gateway::charge_result> charge(gateway::charge_request) override {
        gateway::charge_result r;
        r.journal.kind = "charge";
        r.journal.result = gateway::outcome::paid;
        r.journal.latency = std::chrono::milliseconds{120};
        co_return r;
    }
    boost::asio::awaitable<gateway::lookup_result> find_all(std::string) override {
        gateway::lookup_result r;
        r.journal.kind = "lookup";
        r.journal.result = gateway::outcome::found;
        r.verdict = gateway::outcome::not_found;
        r.journal.latency = std::chrono::milliseconds{40};
        co_return r;
    }
    boost::asio::awaitable<gateway::customer_result> get_customer(std::string uid) override {
        gateway::customer_result r;
        r.journal.result = gateway::outcome::found;
        r.journal.latency = std::chrono::milliseconds{3000};
        r.card_name = uid;
        co_return r;
    }
};

}  // namespace

TEST_CASE("the observed client counts each request by endpoint and class and passes results on") {
    metrics::process_metrics m("x");
    metrics::observed_client client(std::make_unique<scripted_client>(), m);
    boost::asio::io_context io;
    std::string card;
    gateway::outcome charged{};
    boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<void> {
            gateway::charge_request request;
            request.merchant_uid = "m-1";
            auto paid = co_await client.charge(request);
            charged = paid.journal.result;
            std::string uid = "m-1";
            co_await client.find_all(uid);
            co_await client.find_all(uid);
            std::string customer = "cust_9";
            auto c = co_await client.get_customer(customer);
            card = c.card_name;
        },
        boost::asio::detached);
    io.run();
    CHECK(charged == gateway::outcome::paid);
    CHECK(card == "cust_9");
    CHECK(m.request_count("charge", "paid") == 1);
    CHECK(m.request_count("lookup", "not_found") == 2);  // a lookup's class is its verdict
    CHECK(m.request_count("customer", "found") == 1);
    metrics::exposition out;
    m.render(out, {});
    const std::string& t = out.text();
    CHECK(
        has_line(t, "billingd_portone_requests_total{endpoint=\"lookup\",class=\"not_found\"} 2"));
    CHECK(has_line(
        t, "billingd_portone_request_duration_seconds_bucket{endpoint=\"charge\",le=\"0.1\"} 0"));
    CHECK(has_line(
        t, "billingd_portone_request_duration_seconds_bucket{endpoint=\"charge\",le=\"0.25\"} 1"));
    CHECK(has_line(
        t, "billingd_portone_request_duration_seconds_bucket{endpoint=\"customer\",le=\"2.5\"} 0"));
    CHECK(has_line(t, "billingd_portone_request_duration_seconds_sum{endpoint=\"customer\"} 3"));
}

TEST_CASE("the observed client forwards refunds, payment lookups and cancelled lists") {
    metrics::process_metrics m("x");
    // scripted_client does not speak them: the base class answers config_error, passed on.
    metrics::observed_client client(std::make_unique<scripted_client>(), m);
    boost::asio::io_context io;
    std::vector<std::string> kinds;
    boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<void> {
            gateway::cancel_request request;
            request.imp_uid = "imp_1";
            auto cancelled = co_await client.cancel(request);
            kinds.push_back(cancelled.journal.kind);
            std::string imp_uid = "imp_1";
            auto payment = co_await client.get_payment(imp_uid);
            kinds.push_back(payment.journal.kind);
            auto page = co_await client.cancelled_payments(1, 2, 1);
            kinds.push_back(page.journal.kind);
        },
        boost::asio::detached);
    io.run();
    CHECK(kinds == std::vector<std::string>{"cancel", "payment", "cancelled_list"});
    CHECK(m.request_count("cancel", "config_error") == 1);
    CHECK(m.request_count("payment", "config_error") == 1);
    CHECK(m.request_count("cancelled_list", "config_error") == 1);
}

TEST_CASE("database gauges count due, in-doubt, parked and flagged rows as of the given time") {
    test::temp_db tmp;
    storage::connection db(tmp.options());
    const std::int64_t now = 1'796'000'000;
    for (int id = 1; id <= 6; ++id) add_subscription(db, id);
    add_subscription(db, 7, "paused");
    add_subscription(db, 8, "canceled", "year", 120000);
    // Due: subscription 1 (100 s ago) and 2 (now); 3 is due later; 7 is paused.
    db.exec("UPDATE subscriptions SET next_due_at = " + std::to_string(now - 100) +
            " WHERE id = 1");
    db.exec("UPDATE subscriptions SET next_due_at = " + std::to_string(now) + " WHERE id = 2");
    db.exec("UPDATE subscriptions SET next_due_at = " + std::to_string(now + 60) + " WHERE id = 3");
    db.exec("UPDATE subscriptions SET next_due_at = " + std::to_string(now - 999) +
            " WHERE id = 7");
    db.exec("UPDATE subscriptions SET needs_attention = 'bad zone' WHERE id = 6");
    // A dunning retry due 500 s ago; two charges in doubt; one parked; paid ones.
    add_charge(db, 1, 4, 0, "declined", 5000, ", next_action_at", ", " + std::to_string(now - 500));
    add_charge(db, 2, 4, 1, "sending", 9900);
    add_charge(db, 3, 5, 0, "unknown", 7000, ", unknown_since, next_action_at",
               ", " + std::to_string(now - 3600) + ", " + std::to_string(now + 10));
    add_charge(db, 4, 5, 1, "parked", 4000);
    add_charge(db, 5, 1, 0, "paid", 9900, ", paid_at", ", " + std::to_string(now - 86400));

    const auto s = metrics::read_database(db, now);
    CHECK(s.due_subscriptions == 2);
    CHECK(s.due_charges == 1);
    CHECK(s.oldest_due_age_seconds == 500);
    CHECK(s.in_doubt == 2);
    CHECK(s.in_doubt_amount == 16900);
    CHECK(s.oldest_in_doubt_age_seconds == now - 100);  // the sending row's updated_at (100)
    CHECK(s.parked == 1);
    CHECK(s.parked_amount == 4000);
    CHECK(s.needs_attention == 1);

    metrics::exposition out;
    int provider_calls = 0;
    std::vector<metrics::gauge_provider> providers{[&](storage::connection&, std::int64_t at,
                                                       metrics::exposition& o) {
        ++provider_calls;
        o.gauge("billingd_outbox_deliveries_pending", "Pending deliveries.", at == now ? 4 : -1);
    }};
    metrics::render_database(db, now, out, providers);
    const std::string& t = out.text();
    CHECK(provider_calls == 1);
    CHECK(has_line(t, "billingd_outbox_deliveries_pending 4"));
    CHECK(has_line(t, "billingd_due_backlog{kind=\"subscription\"} 2"));
    CHECK(has_line(t, "billingd_subscriptions{status=\"active\"} 6"));
    CHECK(has_line(t, "billingd_subscriptions{status=\"canceled\"} 1"));
    // MRR: six active monthly 9,900 KRW; the canceled yearly plan does not count.
    CHECK(has_line(t, "billingd_monthly_recurring_revenue{currency=\"KRW\"} 59400"));
}
