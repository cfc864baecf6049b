// `billingctl metrics`: the database-derived gauges of billingd's /metrics (due backlog, oldest
// due, in doubt, parked, needing attention, subscriptions by status, MRR) in the Prometheus
// text format, for node-exporter's textfile collector. With --output FILE the text is written
// to FILE.tmp and renamed over FILE, so the collector never reads half a file.
#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "commands.hpp"
#include "metrics/database_gauges.hpp"
#include "metrics/exposition.hpp"
#include "outbox/delivery_gauges.hpp"

namespace billingd::ctl {
namespace {

struct metrics_options {
    std::string output;
};

void run_metrics(context& ctx, const metrics_options& o) {
    metrics::exposition out;
    const std::int64_t now = ctx.now();
    metrics::render_database(ctx.store().db(), now, out, ctl_gauge_providers());
    out.gauge("billingd_textfile_generated_timestamp_seconds",
              "When billingctl metrics read the database (UNIX seconds).",
              static_cast<double>(now));
    if (o.output.empty()) {
        fmt::print("{}", out.text());
        return;
    }
    const std::string tmp = o.output + ".tmp";
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        f << out.text();
        f.flush();
        if (!f)
            throw failure(exit_code::cannot_write,
                          fmt::format("--output: cannot write {}: {}", tmp, std::strerror(errno)));
    }
    if (std::rename(tmp.c_str(), o.output.c_str()) != 0) {
        const int e = errno;
        std::remove(tmp.c_str());
        throw failure(exit_code::cannot_write, fmt::format("--output: cannot rename {} to {}: {}",
                                                           tmp, o.output, std::strerror(e)));
    }
}

}  // namespace

std::vector<metrics::gauge_provider> ctl_gauge_providers() {
    // The outbox's deliveries (pending, dead, backlog), as in the daemon's observability.
    return {outbox::delivery_gauges};
}

void add_metrics_command(CLI::App& app, action& selected) {
    auto o = std::make_shared<metrics_options>();
    auto* sub = app.add_subcommand(
        "metrics",
        "Print the gauges billingd's /metrics reads from the database (due backlog and the age "
        "of the oldest due item, charges in doubt and parked with their amounts, subscriptions "
        "needing attention, subscriptions by status, MRR) in the Prometheus text format, for "
        "node-exporter's textfile collector. Counters and histograms of the running daemon "
        "(outcomes, PortOne latency, commit latency, breaker) are only on its endpoint.");
    sub->add_option("--output", o->output,
                    "write to FILE atomically (FILE.tmp, then rename) instead of stdout; e.g. "
                    "/var/lib/prometheus/node-exporter/billingd.prom");
    sub->footer(
        "Examples:\n  billingctl metrics\n"
        "  billingctl metrics --output /var/lib/prometheus/node-exporter/billingd.prom");
    on_parsed<metrics_options>(sub, selected, db_access::read, o, run_metrics);
}

}  // namespace billingd::ctl
