#!/usr/bin/env python3
"""How fast the operator views answer on a large database (not a test: it prints figures).

Builds (once, then reuses) a database of 1 M subscriptions and 3 M charges with the schema
in schema/*.sql, lets billingd write the reporting zone and the revenue roll-up as it does at
start (`billingd --once` with nothing due, when --billingd is given; otherwise the roll-up is
computed with billingd's own SQL), then runs every view of the README the way an operator
does (`SELECT * FROM view`, all rows fetched) and prints the median of several runs beside
the 50 ms target. With --index-cost it also measures what the charges_paid index costs a
charge (the paid UPDATE with and without it).

    bench/views.py --billingd build/daemon/billingd [--db /tmp/billingd-views.db]

The data: subscriptions created over the last year (70 % active, 3 % past_due, 15 %
canceled, 5 % unpaid, 4 % paused, 2 % trialing, 1 % ended; 90 % monthly, 8 % yearly, 2 %
weekly), three periods each (94 % paid, 4 % declined or canceled, a few hundred in doubt or
parked), declined events for the decline view, and 400 k recent journal rows. Everything is
relative to the real clock, because the views use unixepoch().
"""
import argparse
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_MS = 50.0


def apply_schema(db):
    files = sorted(f for f in os.listdir(os.path.join(ROOT, "schema")) if f.endswith(".sql"))
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA foreign_keys = OFF")
    for i, name in enumerate(files, start=1):
        with open(os.path.join(ROOT, "schema", name), encoding="utf-8") as f:
            db.executescript("BEGIN;" + f.read() + f";PRAGMA user_version = {i}; COMMIT;")


def build(path, subscriptions, now):
    t0 = time.monotonic()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")
    apply_schema(db)
    db.execute("PRAGMA cache_size = -400000")
    db.execute("INSERT INTO install (singleton, install_id) VALUES (1, 'bench') "
               "ON CONFLICT (singleton) DO UPDATE SET install_id = 'bench'")
    year = 365 * 86400
    db.execute("BEGIN")
    # Subscriptions, one statement (the totals triggers run per row, as for real inserts).
    db.execute(f"""
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {subscriptions})
        INSERT INTO subscriptions (id, customer_uid, amount, order_name, interval_unit,
                                   anchor_date, status, next_period, next_due_at,
                                   needs_attention, created_at, updated_at)
        SELECT i, 'cust_' || i,
               CASE i % 4 WHEN 0 THEN 4900 WHEN 1 THEN 9900 WHEN 2 THEN 14900 ELSE 29000 END,
               'Plan ' || (i % 4),
               CASE WHEN i % 50 < 45 THEN 'month' WHEN i % 50 < 49 THEN 'year' ELSE 'week' END,
               date({now} - {year} + (i * 7919) % {year}, 'unixepoch'),
               CASE WHEN i % 100 < 70 THEN 'active' WHEN i % 100 < 73 THEN 'past_due'
                    WHEN i % 100 < 88 THEN 'canceled' WHEN i % 100 < 93 THEN 'unpaid'
                    WHEN i % 100 < 97 THEN 'paused' WHEN i % 100 < 99 THEN 'trialing'
                    ELSE 'ended' END,
               3,
               CASE WHEN i % 100 < 73 OR i % 100 BETWEEN 97 AND 98
                    THEN {now} + 60 + (i * 104729) % (30 * 86400) END,
               CASE WHEN i % 20000 = 7 THEN 'unknown time zone Mars/Olympus' END,
               {now} - {year} + (i * 7919) % {year},
               {now} - (i * 131) % (300 * 86400)
          FROM n""")
    # Three periods per subscription.
    db.execute(f"""
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {subscriptions}),
             p(k) AS (VALUES (0), (1), (2))
        INSERT INTO charges (subscription_id, period_index, period_start, merchant_uid,
                             customer_uid, amount, currency, order_name, state, attempt_count,
                             decline_count, next_action_at, paid_at, imp_uid, fail_reason,
                             park_reason, unknown_since, created_at, updated_at)
        SELECT s.id, p.k, s.created_at + p.k * 30 * 86400 - 90 * 86400,
               'bench-' || s.uid_key || '-p' || p.k, s.customer_uid, s.amount, 'KRW', s.order_name,
               CASE WHEN (s.id * 3 + p.k) % 100000 < 3 THEN 'unknown'
                    WHEN (s.id * 3 + p.k) % 100000 < 20 THEN 'parked'
                    WHEN (s.id * 3 + p.k) % 100 < 94 THEN 'paid'
                    WHEN (s.id * 3 + p.k) % 100 < 97 THEN 'declined' ELSE 'canceled' END,
               1, 0,
               CASE WHEN (s.id * 3 + p.k) % 100000 < 3 THEN {now} + 300
                    WHEN (s.id * 3 + p.k) % 100 BETWEEN 94 AND 96 AND p.k = 2
                    THEN {now} + (s.id * 7) % (3 * 86400) END,
               CASE WHEN (s.id * 3 + p.k) % 100 < 94 AND (s.id * 3 + p.k) % 100000 >= 20
                    THEN min({now} - 60, s.created_at + p.k * 30 * 86400 - 90 * 86400 + (s.id % 600)) END,
               NULL,
               CASE WHEN (s.id * 3 + p.k) % 100 BETWEEN 94 AND 96
                    THEN CASE s.id % 5 WHEN 0 THEN '한도초과' WHEN 1 THEN '잔액부족'
                         WHEN 2 THEN '카드 정지' WHEN 3 THEN '유효기간 만료' ELSE '기타' END END,
               CASE WHEN (s.id * 3 + p.k) % 100000 BETWEEN 3 AND 19 THEN 'ANOMALY: amount differs' END,
               CASE WHEN (s.id * 3 + p.k) % 100000 < 3 THEN {now} - 7200 END,
               {now} - 90 * 86400, {now} - (s.id % 86400)
          FROM subscriptions s, p""")
    # The declines' events (what decline_reasons_30d reads) and recent journal rows.
    db.execute(f"""
        INSERT INTO events (at, subscription_id, charge_id, kind, from_state, to_state, detail)
        SELECT {now} - (id * 37) % (60 * 86400), subscription_id, id, 'charge.state', 'sending',
               'declined', fail_reason
          FROM charges WHERE state = 'declined'""")
    db.execute(f"""
        INSERT INTO attempts (at, charge_id, kind, phase, merchant_uid, attempt_number, amount,
                              request_summary)
        SELECT {now} - (id % 86400), id, 'charge', 'request', merchant_uid, 1, amount,
               'POST /subscribe/payments/again'
          FROM charges WHERE id > (SELECT max(id) FROM charges) - 200000""")
    db.execute(f"""
        INSERT INTO attempts (at, charge_id, request_id, kind, phase, http_status, portone_code,
                              outcome, latency_ms)
        SELECT at + 1, charge_id, id, 'charge', 'answer', 200, 0, 'paid', 80
          FROM attempts WHERE phase = 'request'""")
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.close()
    print(f"built {path} in {time.monotonic() - t0:.0f} s", flush=True)


def billingd_setup(path, billingd, now):
    """billingd --once on the database: writes the reporting zone and the revenue roll-up
    (nothing is due, so nothing is sent)."""
    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "billingd.toml")
        with open(config, "w") as f:
            f.write(f'database = "{path}"\n[portone]\nbase_url = "http://127.0.0.1:9"\n'
                    '[billing]\nmerchant_uid_prefix = "bench"\n[log]\nlevel = "warn"\n')
        env = dict(os.environ, BILLINGD_PORTONE_IMP_KEY="bench", BILLINGD_PORTONE_IMP_SECRET="bench")
        t0 = time.monotonic()
        as_of = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        r = subprocess.run([billingd, "--config", config, "--once", "--as-of", as_of,
                            "--i-know-this-is-a-test-db"], capture_output=True, text=True, env=env)
        print(f"billingd --once (reporting zone, revenue roll-up): exit {r.returncode}, "
              f"{time.monotonic() - t0:.1f} s", flush=True)
        if r.returncode not in (0, 1):
            sys.exit(r.stderr)


def views(db):
    customer = db.execute("SELECT customer_uid FROM subscriptions WHERE id = (SELECT max(id) / 2 + 1 FROM subscriptions)").fetchone()[0]
    return [
        ("due_now", "SELECT * FROM due_now"),
        ("in_doubt", "SELECT * FROM in_doubt"),
        ("parked", "SELECT * FROM parked"),
        ("recent_attempts", "SELECT * FROM recent_attempts"),
        ("revenue_per_day", "SELECT * FROM revenue_per_day"),
        ("revenue_per_month", "SELECT * FROM revenue_per_month"),
        ("mrr", "SELECT * FROM mrr"),
        ("subscriptions_by_status", "SELECT * FROM subscriptions_by_status"),
        ("decline_reasons_30d", "SELECT * FROM decline_reasons_30d"),
        ("coming_next_24h", "SELECT * FROM coming_next_24h"),
        ("customer_history", f"SELECT * FROM customer_history WHERE customer_uid = '{customer}'"),
        ("churn_per_month", "SELECT * FROM churn_per_month"),
    ]


def time_views(path, runs):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    print(f"\n{'view':<26}{'rows':>8}{'median ms':>12}{'max ms':>10}{'target':>9}")
    slow = 0
    for name, sql in views(db):
        db.execute(sql).fetchall()  # warm the page cache, as on a running system
        times, rows = [], 0
        for _ in range(runs):
            t0 = time.perf_counter()
            rows = len(db.execute(sql).fetchall())
            times.append((time.perf_counter() - t0) * 1000)
        median = statistics.median(times)
        ok = median <= TARGET_MS
        slow += not ok
        print(f"{name:<26}{rows:>8}{median:>12.1f}{max(times):>10.1f}{'ok' if ok else 'SLOW':>9}")
    return slow


def index_cost(path, n=200_000, rounds=3):
    """µs per paid charge with and without charges_paid: the paid UPDATE billingd runs, the
    best of `rounds` alternating runs (the machine is shared)."""
    best = {False: float("inf"), True: float("inf")}
    for _ in range(rounds):
        for with_index in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                p = os.path.join(tmp, "cost.db")
                db = sqlite3.connect(p, isolation_level=None)
                apply_schema(db)
                if not with_index:
                    db.execute("DROP INDEX charges_paid")
                db.execute("INSERT INTO subscriptions (id, customer_uid, amount, order_name, "
                           "interval_unit, anchor_date) VALUES (1, 'c', 9900, 'P', 'day', '2020-01-01')")
                db.execute("BEGIN")
                db.executemany("INSERT INTO charges (subscription_id, period_index, period_start, "
                               "merchant_uid, customer_uid, amount, currency, order_name, state, "
                               "created_at, updated_at) VALUES (1, ?, 0, ?, 'c', 9900, 'KRW', 'P', "
                               "'sending', 0, 0)", ((i, f"m-{i}") for i in range(n)))
                db.execute("COMMIT")
                ids = [r[0] for r in db.execute("SELECT id FROM charges")]
                random.Random(1).shuffle(ids)
                # Charges are paid in time order: paid_at grows, the id order is random.
                rows = [(1_800_000_000 + k, 1_800_000_000, i) for k, i in enumerate(ids)]
                db.execute("BEGIN")
                t0 = time.perf_counter()
                db.executemany("UPDATE charges SET state = 'paid', paid_at = ?, imp_uid = 'imp', "
                               "updated_at = ? WHERE id = ?", rows)
                elapsed = time.perf_counter() - t0
                db.execute("COMMIT")
                db.close()
                best[with_index] = min(best[with_index], elapsed / n * 1e6)
    print(f"\npaid UPDATE per charge (best of {rounds}): {best[False]:.2f} µs without "
          f"charges_paid, {best[True]:.2f} µs with it ({best[True] - best[False]:+.2f} µs)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default="/tmp/billingd-views.db", help="database to build or reuse")
    ap.add_argument("--subscriptions", type=int, default=1_000_000)
    ap.add_argument("--billingd", help="billingd binary: let it write the zone and roll-up")
    ap.add_argument("--rebuild", action="store_true", help="build the database again")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--index-cost", action="store_true", help="also measure charges_paid's cost")
    args = ap.parse_args()
    now = int(time.time())
    if args.rebuild or not os.path.exists(args.db):
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(args.db + suffix):
                os.remove(args.db + suffix)
        build(args.db, args.subscriptions, now)
    if args.billingd:
        billingd_setup(args.db, args.billingd, now)
    db = sqlite3.connect(args.db)
    counts = db.execute("SELECT (SELECT count(*) FROM subscriptions), (SELECT count(*) FROM charges), "
                        "(SELECT count(*) FROM attempts), (SELECT count(*) FROM events)").fetchone()
    rolled = db.execute("SELECT rolled_until FROM reporting_state").fetchone()[0]
    zone = db.execute("SELECT name FROM reporting_zone").fetchone()[0]
    db.close()
    print(f"{counts[0]:,} subscriptions, {counts[1]:,} charges, {counts[2]:,} attempts, "
          f"{counts[3]:,} events; reporting zone {zone}; revenue rolled up: "
          f"{'until ' + time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(rolled)) if rolled else 'no'}")
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} "
          f"on {os.cpu_count()} cores; SQLite {sqlite3.sqlite_version}")
    slow = time_views(args.db, args.runs)
    if args.index_cost:
        index_cost(args.db)
    print(f"\n{len(views(sqlite3.connect(args.db))) - slow} of {len(views(sqlite3.connect(args.db)))} "
          f"views within {TARGET_MS:.0f} ms")


if __name__ == "__main__":
    main()
