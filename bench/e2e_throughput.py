#!/usr/bin/env python3
"""End-to-end charging throughput: billingd --once against portone-sim on 127.0.0.1.

Creates N due subscriptions (among --total subscriptions, the rest due later in the month),
runs one `billingd --once` with the given in-flight limit against a simulator with fixed
latency, and prints charges per second against the ideal (in_flight / latency), billingd's
CPU time and its peak memory. The journal is durable as in production (WAL,
synchronous=FULL, group commits).

  bench/e2e_throughput.py --billingd build-release/daemon/billingd \
      --sim build-release/tools/portone-sim/portone-sim --subscriptions 5000 --in-flight 64 \
      --latency-ms 50
  # the month-start peak: 100k due of 1M at 1,024 in flight and 2 s
  bench/e2e_throughput.py ... --subscriptions 100000 --total 1000000 --in-flight 1024 \
      --latency-ms 2000

Targets (issue "cost per charge"): >= 0.9 of the ideal at 64 in flight and 50 ms on an idle
machine; the month-start peak >= 0.9 of the ideal with at most 64 MB of memory.
"""
import argparse
import os
import resource
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
import harness  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--billingd", required=True)
parser.add_argument("--sim", required=True)
parser.add_argument("--subscriptions", type=int, default=5000)
parser.add_argument("--in-flight", type=int, default=64)
parser.add_argument("--latency-ms", type=int, default=50)
parser.add_argument("--total", type=int, default=0,
                    help="subscriptions in the database (default: only the due ones)")
args = parser.parse_args()
total = max(args.total, args.subscriptions)


def roomy_limits():
    # 1,024 connections on each side: the simulator needs the descriptors too.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


roomy_limits()
harness.BILLINGD = args.billingd
harness.PORTONE_SIM = args.sim

with harness.Sim("--prefix", "bench-=pay", "--fault", f"charge:latency_ms={args.latency_ms}:1.0") as sim:
    ws = harness.Workspace(sim, max_in_flight=args.in_flight, charge_timeout_ms=30000,
                           extra_billing="batch_size = 512")
    ws.write_config(max_in_flight=args.in_flight, charge_timeout_ms=30000,
                    extra_billing="batch_size = 512")
    with open(ws.config_path) as f:
        config = f.read().replace('level = "warn"', 'level = "error"')
    with open(ws.config_path, "w") as f:
        f.write(config)
    ws.init_db()
    with ws.db() as c:
        # Scheduled, as a month start finds them (billingd schedules a new row once, when it
        # first sees it; that is not what this measures): the due ones are anchored on the
        # 5th at 10:00 KST, the others later in the month.
        c.executemany(
            "INSERT INTO subscriptions (customer_uid, amount, order_name, interval_unit, "
            "anchor_date, next_due_at) VALUES (?, 9900, 'bench', 'month', ?, ?)",
            ((f"bench-{i}", "2026-01-05" if i < args.subscriptions else "2026-01-20",
              1767574800 if i < args.subscriptions else 1768870800) for i in range(total)))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    r = ws.once(as_of="2026-01-05T01:00:00Z")
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    paid = ws.scalar("SELECT count(*) FROM charges WHERE state = 'paid'")
    ideal = args.in_flight / (args.latency_ms / 1000) if args.latency_ms else float("inf")
    rate = paid / wall
    # ru_maxrss of the children: the largest of billingd's runs (the simulator is still alive).
    rss_mb = after.ru_maxrss / 1024
    print(f"due={args.subscriptions} of {total} in_flight={args.in_flight} "
          f"latency_ms={args.latency_ms} load_avg_1m={os.getloadavg()[0]:.2f} cores={os.cpu_count()}")
    print(f"paid={paid} exit={r.returncode} wall_s={wall:.2f} charges_per_s={rate:.0f} "
          f"ideal_per_s={ideal:.0f} ratio={rate / ideal:.2f} (target >= 0.90) "
          f"billingd_cpu_s={cpu:.2f} cpu_us_per_charge={cpu * 1e6 / max(paid, 1):.0f} "
          f"billingd_max_rss_mb={rss_mb:.1f}")
