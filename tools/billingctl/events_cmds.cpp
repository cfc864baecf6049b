// Event delivery for operators: what is pending or dead, and sending events again.
// The delivery state is billingd's (lib/outbox); redeliver only marks rows pending, and the
// running daemon (or the next `billingd --once`) sends them.
#include <fmt/format.h>

#include "commands.hpp"
#include "operations/deliveries.hpp"
#include "outbox/outbox_store.hpp"
#include "output.hpp"

namespace billingd::ctl {
namespace {

struct delivery_options {
    std::int64_t id = 0;
    bool all_dead = false;
    std::int64_t limit = 1000;
};

nlohmann::json to_json(const outbox::delivery_row& d) {
    return {{"channel", d.channel},
            {"event_id", d.event_id},
            {"kind", d.kind},
            {"subscription_id", d.subscription_id ? nlohmann::json(*d.subscription_id) : nullptr},
            {"state", d.state},
            {"status", d.state == "dead"    ? "dead"
                       : !d.next_attempt_at ? "waiting"
                       : d.attempts == 0    ? "pending"
                                            : "failing"},
            {"attempts", d.attempts},
            {"next_attempt_at", d.next_attempt_at ? nlohmann::json(*d.next_attempt_at) : nullptr},
            {"last_attempt_at", d.last_attempt_at ? nlohmann::json(*d.last_attempt_at) : nullptr},
            {"last_error", d.last_error ? nlohmann::json(*d.last_error) : nullptr},
            {"event_at", d.event_at}};
}

void print_rows(context& ctx, const std::vector<outbox::delivery_row>& rows,
                const std::vector<outbox::channel_row>& channels) {
    if (ctx.json()) {
        auto list = nlohmann::json::array();
        for (const auto& r : rows) list.push_back(to_json(r));
        auto chans = nlohmann::json::array();
        for (const auto& c : channels)
            chans.push_back({{"channel", c.channel},
                             {"cursor", c.cursor},
                             {"events_after_cursor", c.backlog},
                             {"pending", c.pending},
                             {"dead", c.dead}});
        print_json({{"channels", chans}, {"deliveries", list}});
        return;
    }
    if (channels.empty())
        fmt::print("no delivery channel has been configured ([events] in the configuration)\n");
    for (const auto& c : channels)
        fmt::print(
            "channel {}: delivered up to event {}, {} newer event(s) not looked at yet, "
            "{} pending, {} dead\n",
            c.channel, c.cursor, c.backlog, c.pending, c.dead);
    table t{{"EVENT", "CHANNEL", "KIND", "SUB", "STATUS", "TRIES", "NEXT (UTC)", "LAST ERROR"}};
    for (const auto& r : rows) {
        const auto j = to_json(r);
        t.add({std::to_string(r.event_id), r.channel, r.kind, or_dash(r.subscription_id),
               j["status"].get<std::string>(), std::to_string(r.attempts),
               format_local(r.next_attempt_at, "UTC"), or_dash(r.last_error)});
    }
    t.print();
}

void run_pending(context& ctx, const delivery_options& o) {
    outbox::outbox_store store(ctx.store().db());
    print_rows(ctx, store.list(std::string("pending"), static_cast<int>(o.limit)),
               store.channels());
}

void run_dead(context& ctx, const delivery_options& o) {
    outbox::outbox_store store(ctx.store().db());
    print_rows(ctx, store.list(std::string("dead"), static_cast<int>(o.limit)), store.channels());
}

void run_redeliver(context& ctx, const delivery_options& o) {
    const int rows = o.all_dead ? operations::redeliver_dead(ctx.store(), ctx.caller())
                                : operations::redeliver_event(ctx.store(), ctx.caller(), o.id);
    if (ctx.json()) return print_json({{"redelivered", rows}});
    fmt::print("{} deliver{} pending again; billingd sends {} within seconds\n", rows,
               rows == 1 ? "y is" : "ies are", rows == 1 ? "it" : "them");
}

}  // namespace

void add_delivery_commands(CLI::App* events, action& selected) {
    auto o = std::make_shared<delivery_options>();
    auto* pending = events->add_subcommand(
        "pending",
        "Show deliveries that are not done: failing (retried with backoff until the horizon), "
        "waiting behind an earlier event of their subscription, or made pending again; and per "
        "channel how far delivery got.");
    add_integer(pending, "--limit", o->limit, 1, 1'000'000, "at most this many rows");
    on_parsed<delivery_options>(pending, selected, db_access::read, o, run_pending);

    auto* dead = events->add_subcommand(
        "dead",
        "Show dead deliveries: retried past the horizon ([events] retry_horizon_seconds) and "
        "given up. `events redeliver ID` or `--all-dead` sends them again.");
    add_integer(dead, "--limit", o->limit, 1, 1'000'000, "at most this many rows");
    on_parsed<delivery_options>(dead, selected, db_access::read, o, run_dead);

    auto* redeliver = events->add_subcommand(
        "redeliver",
        "Send an event again on every channel that already handled it (dead, failing, or "
        "delivered: receivers see the same id again), or every dead delivery with --all-dead. "
        "Its retry horizon starts again.");
    auto* id = add_integer(redeliver, "EVENT_ID", o->id, 1, max_id, "event id (1 to 2^53)");
    auto* all = redeliver->add_flag("--all-dead", o->all_dead, "every dead delivery");
    id->excludes(all);
    on_parsed<delivery_options>(redeliver, selected, db_access::write, o, run_redeliver,
                                [id](delivery_options& opts) {
                                    if (!opts.all_dead && id->count() == 0)
                                        throw CLI::RequiredError("EVENT_ID or --all-dead");
                                });
}

}  // namespace billingd::ctl
