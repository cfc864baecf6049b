#!/usr/bin/env python3
"""Create-subscription throughput of the HTTP API on loopback, with durable commits.

A running billingd (WAL, synchronous=FULL: every group commit is fsynced before its answers
go out) takes POST /v1/subscriptions on --connections keep-alive connections until --total
were answered. Prints creates per second, latency percentiles, billingd's CPU per create, the
group commits it needed (from its log) and the 1-minute load average.

  bench/api_create.py --billingd build-release/daemon/billingd \
      --sim build-release/tools/portone-sim/portone-sim --total 20000 --connections 64

Target (issue "HTTP API"): >= 2,000 creates/s on the 2-core machine.
"""
import argparse
import os
import re
import resource

import api_load
import harness

parser = argparse.ArgumentParser()
parser.add_argument("--billingd", required=True)
parser.add_argument("--sim", required=True)
parser.add_argument("--total", type=int, default=20000)
parser.add_argument("--connections", type=int, default=64)
args = parser.parse_args()
harness.BILLINGD = args.billingd
harness.PORTONE_SIM = args.sim

with harness.Sim() as sim:
    port = api_load.free_port()
    ws = api_load.api_workspace(sim, port)
    ws.init_db()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    daemon = api_load.start(ws)
    try:
        api_load.wait_for_port(port)
        # Warm-up (connections, statements, the first pages of the tables).
        api_load.load(port, 8, total=400, prefix="warm")
        answered, wall, latencies, statuses = api_load.load(port, args.connections,
                                                               total=args.total)
        load_avg = os.getloadavg()[0]
    finally:
        log = api_load.stop(daemon)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rows = ws.scalar("SELECT count(*) FROM subscriptions WHERE customer_uid LIKE 'bench-api-%'")
    groups = re.search(r"api writes groups=(\d+) changes=(\d+) longest_group_ms=(\d+)", log)
    print(f"total={args.total} connections={args.connections} load_avg_1m={load_avg:.2f} "
          f"cores={os.cpu_count()} durable=WAL+synchronous=FULL")
    print(f"answered={answered} created={rows} statuses={statuses} wall_s={wall:.2f} "
          f"creates_per_s={answered / wall:.0f} (target >= 2000) "
          f"p50_ms={api_load.percentile(latencies, 50) * 1000:.1f} "
          f"p99_ms={api_load.percentile(latencies, 99) * 1000:.1f} "
          f"billingd_cpu_us_per_create={cpu * 1e6 / max(answered, 1):.0f}")
    if groups:
        g, c, longest = (int(x) for x in groups.groups())
        print(f"group_commits={g} changes_per_group={c / max(g, 1):.1f} "
              f"longest_group_ms={longest}")
