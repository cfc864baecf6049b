#!/usr/bin/env python3
"""What one paid charge costs billingd: rows written, database growth and CPU instructions.

Charges N monthly subscriptions twice with `billingd --once` against portone-sim on 127.0.0.1
(no simulated latency): period 0 as a warm-up (it also schedules the new rows), then period 1,
which is what is measured — the steady state of a database that bills every month.

- rows: rows inserted per paid charge (charges, attempts, events: from the tables after the
  run) and rows updated per paid charge (counted by triggers this script adds to its own copy
  of the database; they are not part of billingd's schema).
- growth: bytes per paid charge, from VACUUMed copies of the database before and after the
  pass (every table and index, as a packed database stores them).
- instructions (--callgrind, needs valgrind): the measured pass runs under callgrind on a
  fresh database without the counting triggers; prints instructions per paid charge (the
  whole process, start-up included), the same for a pass with nothing due (start-up alone),
  and the top inclusive functions.

  bench/charge_cost.py --billingd build/daemon/billingd \\
      --sim build/tools/portone-sim/portone-sim --subscriptions 2000 --callgrind

Targets (issue "cost per charge"): <= 6 rows written per paid charge (<= 4 inserted, <= 2
updated), <= 1,200 bytes of database per paid charge, <= 450,000 instructions per charge.
"""
import argparse
import os
import re
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "e2e"))
import harness  # noqa: E402

PERIOD0 = "2026-01-05T01:00:00Z"  # 10:00 KST on the anchor
PERIOD1 = "2026-02-05T01:00:00Z"
NOTHING_DUE = "2026-01-20T01:00:00Z"
TARGET_ROWS, TARGET_INSERTED, TARGET_UPDATED = 6, 4, 2
TARGET_BYTES = 1200
TARGET_INSTRUCTIONS = 450_000

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--billingd", required=True)
parser.add_argument("--sim", required=True)
parser.add_argument("--subscriptions", type=int, default=2000)
parser.add_argument("--in-flight", type=int, default=64)
parser.add_argument("--callgrind", action="store_true", help="also count instructions")
parser.add_argument("--top", type=int, default=25, help="inclusive functions to list")
args = parser.parse_args()
harness.BILLINGD = args.billingd
harness.PORTONE_SIM = args.sim


def workspace(sim):
    # The console refund check is a cost per interval (one list and a bounded number of
    # payment reads an hour), not per charge: off here, so that it is not counted as one.
    ws = harness.Workspace(sim, max_in_flight=args.in_flight, charge_timeout_ms=60000,
                           lookup_timeout_ms=60000, extra_billing="batch_size = 512",
                           extra_refunds="console_check_minutes = 0")
    with open(ws.config_path) as f:
        config = f.read().replace('level = "warn"', 'level = "error"')
    with open(ws.config_path, "w") as f:
        f.write(config)
    ws.init_db()
    with ws.db() as c:
        c.executemany(
            "INSERT INTO subscriptions (customer_uid, amount, order_name, interval_unit, "
            "anchor_date) VALUES (?, 9900, '월간 구독', 'month', '2026-01-05')",
            [(f"bench-{i}",) for i in range(args.subscriptions)])
    r = ws.once(as_of=PERIOD0)
    paid = ws.scalar("SELECT count(*) FROM charges WHERE state = 'paid'")
    if paid != args.subscriptions:
        sys.exit(f"warm-up pass paid {paid} of {args.subscriptions}: {r.stderr[-2000:]}")
    return ws


def packed_size(ws):
    with tempfile.TemporaryDirectory() as d:
        copy = os.path.join(d, "packed.db")
        with ws.db() as c:
            c.execute("VACUUM INTO ?", (copy,))
        return os.path.getsize(copy)


def table_rows(ws):
    with ws.db() as c:
        return {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("charges", "attempts", "events")}


def paid_in_period(ws, period):
    return ws.scalar("SELECT count(*) FROM charges WHERE state = 'paid' AND period_index = ?",
                     period)


def verdict(value, target):
    return f"target <= {target:,}: {'met' if value <= target else 'NOT MET'}"


with harness.Sim("--prefix", "bench-=pay") as sim:
    ws = workspace(sim)
    with ws.db() as c:
        c.executescript("""
            CREATE TABLE bench_updates (tbl TEXT PRIMARY KEY, n INTEGER NOT NULL);
            INSERT INTO bench_updates VALUES ('charges', 0), ('subscriptions', 0);
            CREATE TRIGGER bench_count_charges AFTER UPDATE ON charges
            BEGIN UPDATE bench_updates SET n = n + 1 WHERE tbl = 'charges'; END;
            CREATE TRIGGER bench_count_subscriptions AFTER UPDATE ON subscriptions
            BEGIN UPDATE bench_updates SET n = n + 1 WHERE tbl = 'subscriptions'; END;
        """)
    size_before = packed_size(ws)
    rows_before = table_rows(ws)
    r = ws.once(as_of=PERIOD1)
    paid = paid_in_period(ws, 1)
    if paid != args.subscriptions:
        sys.exit(f"measured pass paid {paid} of {args.subscriptions}: {r.stderr[-2000:]}")
    with ws.db() as c:
        c.executescript("DROP TRIGGER bench_count_charges; DROP TRIGGER bench_count_subscriptions;")
        updated = dict(c.execute("SELECT tbl, n FROM bench_updates").fetchall())
        c.execute("DROP TABLE bench_updates")
    size_after = packed_size(ws)
    rows_after = table_rows(ws)
    inserted = {t: rows_after[t] - rows_before[t] for t in rows_after}
    ins = sum(inserted.values()) / paid
    upd = sum(updated.values()) / paid
    growth = (size_after - size_before) / paid
    print(f"subscriptions={args.subscriptions} in_flight={args.in_flight} latency_ms=0 "
          f"measured=period 1 (steady state)")
    print(f"rows inserted per paid charge: {ins:.2f} "
          f"({', '.join(f'{t} {n / paid:.2f}' for t, n in inserted.items())}) "
          f"{verdict(ins, TARGET_INSERTED)}")
    print(f"rows updated per paid charge:  {upd:.2f} "
          f"({', '.join(f'{t} {n / paid:.2f}' for t, n in updated.items())}) "
          f"{verdict(upd, TARGET_UPDATED)}")
    print(f"rows written per paid charge:  {ins + upd:.2f} {verdict(ins + upd, TARGET_ROWS)}")
    print(f"database growth per paid charge: {growth:.0f} bytes {verdict(growth, TARGET_BYTES)}")

    if args.callgrind:
        ws = workspace(sim)
        cmd = [args.billingd, "--config", ws.config_path, "--once"]
        with tempfile.TemporaryDirectory() as d:
            figures = {}
            for label, as_of in (("idle", NOTHING_DUE), ("pass", PERIOD1)):
                out = os.path.join(d, f"callgrind.{label}")
                run = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                                      *cmd, "--as-of", as_of], capture_output=True, text=True,
                                     env=ws.env, timeout=3600)
                with open(out) as f:
                    total = next(int(m.group(1)) for m in
                                 (re.match(r"(?:summary|totals): (\d+)", line) for line in f) if m)
                figures[label] = (total, out, run)
            paid = paid_in_period(ws, 1)
            total, out, run = figures["pass"]
            if paid != args.subscriptions:
                sys.exit(f"callgrind pass paid {paid}: {run.stderr[-2000:]}")
            idle = figures["idle"][0]
            per_charge = total / paid
            print(f"instructions per paid charge: {per_charge:,.0f} (whole process, "
                  f"{total:,} for {paid} charges) {verdict(per_charge, TARGET_INSTRUCTIONS)}")
            print(f"  start-up and shutdown alone (nothing due): {idle:,}; "
                  f"per charge without them: {(total - idle) / paid:,.0f}")
            annotate = subprocess.run(["callgrind_annotate", "--inclusive=yes", out],
                                      capture_output=True, text=True)
            lines = [l for l in annotate.stdout.splitlines() if re.match(r"\s*[\d,]+ \(", l)]
            print(f"top {args.top} inclusive functions (instructions per charge, share):")
            for line in lines[:args.top]:
                m = re.match(r"\s*([\d,]+) \(\s*([\d.]+)%\)\s+(.*)", line)
                if m:
                    ir = int(m.group(1).replace(",", ""))
                    name = re.sub(r"\s*\[.*\]$", "", m.group(3))[:110]
                    print(f"  {ir / paid:>10,.0f} {float(m.group(2)):5.1f}%  {name}")
