#!/usr/bin/env python3
"""End-to-end charging throughput: billingd --once against portone-sim on 127.0.0.1.

Creates N due subscriptions, runs one `billingd --once` with the given in-flight limit against
a simulator with fixed latency, and prints charges per second and billingd's CPU time. The
journal is durable as in production (WAL, synchronous=FULL, group commits).

  bench/e2e_throughput.py --billingd build/daemon/billingd \
      --sim build/tools/portone-sim/portone-sim --subscriptions 5000 --in-flight 64 --latency-ms 50
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
args = parser.parse_args()
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
        c.executemany(
            "INSERT INTO subscriptions (customer_uid, amount, order_name, interval_unit, anchor_date) "
            "VALUES (?, 9900, 'bench', 'month', '2026-01-05')",
            [(f"bench-{i}",) for i in range(args.subscriptions)])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    r = ws.once(as_of="2026-01-05T01:00:00Z")
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    paid = ws.scalar("SELECT count(*) FROM charges WHERE state = 'paid'")
    print(f"subscriptions={args.subscriptions} in_flight={args.in_flight} latency_ms={args.latency_ms}")
    print(f"paid={paid} exit={r.returncode} wall_s={wall:.2f} charges_per_s={paid / wall:.0f} "
          f"billingd_cpu_s={cpu:.2f} cpu_us_per_charge={cpu * 1e6 / max(paid, 1):.0f}")
