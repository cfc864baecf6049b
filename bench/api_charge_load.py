#!/usr/bin/env python3
"""Charge throughput of a pass while the HTTP API is loaded, against the same pass unloaded.

Two runs of a running billingd (not --once) against portone-sim with a fixed charge latency:
N subscriptions are due when it starts; the pass's charges per second are measured from the
first charge row to the last paid one. In the loaded run, --connections clients create
subscriptions (due in 2030) through the API as fast as billingd answers during the whole
pass. Prints both rates, their ratio, the API's creates per second meanwhile, the longest API
group commit (how long a charge commit may have waited for the API) and the load average.

  bench/api_charge_load.py --billingd build-release/daemon/billingd \
      --sim build-release/tools/portone-sim/portone-sim --subscriptions 10000 \
      --in-flight 64 --latency-ms 50 --connections 32

Target (issue "HTTP API"): loaded >= 0.9 of unloaded.
"""
import argparse
import datetime
import multiprocessing
import os
import re
import time

import api_load
import harness

parser = argparse.ArgumentParser()
parser.add_argument("--billingd", required=True)
parser.add_argument("--sim", required=True)
parser.add_argument("--subscriptions", type=int, default=10000)
parser.add_argument("--in-flight", type=int, default=64)
parser.add_argument("--latency-ms", type=int, default=50)
parser.add_argument("--connections", type=int, default=32)
parser.add_argument("--write-share", type=int, default=25)
args = parser.parse_args()
harness.BILLINGD = args.billingd
harness.PORTONE_SIM = args.sim


def create_load(port, connections, seconds, queue):
    answered, wall, latencies, statuses = api_load.load(port, connections, seconds=seconds,
                                                           prefix="load")
    queue.put((answered, wall, api_load.percentile(latencies, 99), statuses))


def run(sim, loaded, seconds_of_load):
    port = api_load.free_port()
    ws = api_load.api_workspace(
        sim, port, extra_api=f"write_share_percent = {args.write_share}\n",
        max_in_flight=args.in_flight, charge_timeout_ms=30000, extra_billing="batch_size = 512")
    ws.init_db()
    seoul = datetime.timezone(datetime.timedelta(hours=9))
    today = datetime.datetime.now(seoul).date()
    midnight = int(datetime.datetime(today.year, today.month, today.day, tzinfo=seoul).timestamp())
    with ws.db() as c:
        c.executemany(
            "INSERT INTO subscriptions (customer_uid, amount, order_name, interval_unit, "
            "anchor_date, charge_time, next_due_at) VALUES (?, 9900, 'bench', 'month', ?, "
            "'00:00', ?)",
            ((f"bench-{i}", today.isoformat(), midnight) for i in range(args.subscriptions)))
    daemon = api_load.start(ws)
    loader = None
    queue = multiprocessing.Queue()
    try:
        api_load.wait_for_port(port)
        if loaded:
            loader = multiprocessing.Process(target=create_load,
                                             args=(port, args.connections, seconds_of_load, queue))
            loader.start()
        db = ws.db()
        first = None
        while True:
            if first is None and db.execute("SELECT 1 FROM charges LIMIT 1").fetchone():
                first = time.monotonic()
            paid = db.execute("SELECT count(*) FROM charges WHERE state = 'paid'").fetchone()[0]
            if paid >= args.subscriptions:
                done = time.monotonic()
                break
            time.sleep(0.02)
        load_avg = os.getloadavg()[0]
        created = None
        if loader:
            created = queue.get(timeout=seconds_of_load + 120)
            loader.join()
    finally:
        log = api_load.stop(daemon)
    rate = args.subscriptions / (done - first)
    groups = re.search(r"api writes groups=(\d+) changes=(\d+) longest_group_ms=(\d+)", log)
    return rate, done - first, load_avg, created, groups.groups() if groups else None


if __name__ == "__main__":
    with harness.Sim("--prefix", "bench-=pay", "--prefix", "load-=pay", "--fault",
                     f"charge:latency_ms={args.latency_ms}:1.0") as sim:
        quiet, quiet_s, quiet_load, _, _ = run(sim, False, 0)
        busy, busy_s, busy_load, created, groups = run(sim, True, quiet_s * 2 + 5)
    ideal = args.in_flight / (args.latency_ms / 1000)
    print(f"due={args.subscriptions} in_flight={args.in_flight} latency_ms={args.latency_ms} "
          f"api_connections={args.connections} write_share_percent={args.write_share} "
          f"cores={os.cpu_count()}")
    print(f"unloaded: charges_per_s={quiet:.0f} ({quiet / ideal:.2f} of the {ideal:.0f}/s ideal) "
          f"pass_s={quiet_s:.2f} load_avg_1m={quiet_load:.2f}")
    answered, wall, p99, statuses = created
    print(f"loaded:   charges_per_s={busy:.0f} pass_s={busy_s:.2f} load_avg_1m={busy_load:.2f}; "
          f"API meanwhile: {answered / wall:.0f} creates/s p99_ms={p99 * 1000:.1f} "
          f"statuses={statuses}")
    if groups:
        g, c, longest = (int(x) for x in groups)
        print(f"api group_commits={g} changes_per_group={c / max(g, 1):.1f} "
              f"longest_group_ms={longest} (the most a charge commit waited for the API)")
    print(f"ratio loaded/unloaded={busy / quiet:.2f} (target >= 0.90)")
