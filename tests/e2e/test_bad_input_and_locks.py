"""Bad configuration, bad arguments and bad rows give clear errors and change nothing; an
operator holding a write lock in sqlite3 delays work and loses nothing; a second billingd
on the same database is refused."""
import os
import signal
import sqlite3
import subprocess
import threading
import time

from harness import Sim, Workspace, check, check_ledger_agrees, finish

with Sim("--seed", "5", "--prefix", "pay-=pay") as sim:
    ws = Workspace(sim)
    ws.init_db()
    sub = ws.add_subscription("pay-1", "2025-01-15")

    # Bad command lines: exit 64.
    for args in (["--once", "--bogus"], ["--as-of", "2025-01-01T00:00:00Z"],
                 ["--once", "--as-of", "yesterday"]):
        r = ws.billingd(*args)
        check(r.returncode == 64, f"{args}: exit {r.returncode}, want 64")
    r = subprocess.run([os.environ["BILLINGD"]], capture_output=True, text=True)
    check(r.returncode == 64, f"no --config: exit {r.returncode}")

    # Bad configurations: exit 78 with the key named; nothing charged, database untouched.
    before = ws.scalar("SELECT count(*) FROM events")
    good = open(ws.config_path).read()
    bad_configs = {
        "unknown key": good.replace("[log]", "[log]\nlevle = 1"),
        "wrong type": good.replace("max_in_flight = 16", 'max_in_flight = "many"'),
        "remote http": good.replace(sim.base_url, "http://api.iamport.kr"),
        "secret in file": good.replace("[portone]", '[portone]\nimp_secret = "x"'),
        "bad zone": good.replace('time_zone = "Asia/Seoul"', 'time_zone = "Asia/Atlantis"'),
        "not toml": "database = \n[[[",
    }
    for what, text in bad_configs.items():
        with open(ws.config_path, "w") as f:
            f.write(text)
        r = ws.once(as_of="2025-01-15T01:00:00Z")
        check(r.returncode == 78, f"{what}: exit {r.returncode}, want 78 ({r.stderr[-200:]})")
        check(len(r.stderr.strip()) > 0, f"{what}: no error message")
    with open(ws.config_path, "w") as f:
        f.write(good)
    env = {"BILLINGD_PORTONE_IMP_SECRET": ""}
    r = ws.once(as_of="2025-01-15T01:00:00Z", env=env)
    check(r.returncode == 78, f"missing secret: exit {r.returncode}")
    check("sim_key" not in r.stderr, "the key is not printed")
    check(len(sim.ledger()) == 0, "bad configs charged nothing")
    check(ws.scalar("SELECT count(*) FROM events") == before, "bad configs changed nothing")

    # Bad rows by hand: CHECK constraints refuse them; an unknown zone is flagged, not fatal.
    for values in ("('x', 0, 'n', 'month', '2025-01-15')", "('x', 100, 'n', 'fortnight', '2025-01-15')",
                   "('x', 100, '" + "n" * 41 + "', 'month', '2025-01-15')"):
        try:
            with ws.db() as c:
                c.execute("INSERT INTO subscriptions (customer_uid, amount, order_name, "
                          "interval_unit, anchor_date) VALUES " + values)
            check(False, f"invalid row accepted: {values}")
        except sqlite3.IntegrityError as e:
            check("CHECK constraint failed" in str(e), f"{values}: {e}")
    bad_zone = ws.add_subscription("pay-2", "2025-01-15", time_zone="Mars/Olympus")

    # An operator holds the write lock for 10 s while billingd runs.
    operator = sqlite3.connect(ws.db_path, timeout=1, isolation_level=None, check_same_thread=False)
    operator.execute("BEGIN IMMEDIATE")
    released = threading.Event()

    def release():
        time.sleep(10)
        operator.execute("COMMIT")
        released.set()

    threading.Thread(target=release).start()
    started = time.monotonic()
    r = ws.once(as_of="2025-01-15T01:00:00Z")
    waited = time.monotonic() - started
    released.wait()
    check(waited >= 9, f"billingd did not wait for the lock ({waited:.1f}s)")
    # Exit 1: the row with an unknown time zone needs an operator.
    check(r.returncode == 1, f"after the lock: exit {r.returncode}: {r.stderr[-300:]}")
    paid = check_ledger_agrees(ws, sim)
    check(ws.uid(sub, 0) in paid, "the due subscription was charged after the lock")
    check(ws.scalar("SELECT needs_attention IS NOT NULL FROM subscriptions WHERE id = ?", bad_zone) == 1,
          "the row with an unknown zone is flagged for an operator")
    check(ws.scalar("SELECT count(*) FROM attempts WHERE phase = 'answer'") == 1,
          "the answer was journaled")

    # A second daemon on the same database is refused while the first runs.
    first = subprocess.Popen([os.environ["BILLINGD"], "--config", ws.config_path],
                             env=ws.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    r = ws.once(as_of="2025-01-16T01:00:00Z")
    check(r.returncode != 0 and "already" in r.stderr.lower(),
          f"second instance: exit {r.returncode}: {r.stderr[-300:]}")
    # SIGHUP (a closed terminal, a stray `systemctl kill -s HUP`) is logged and ignored: the
    # daemon neither dies without draining nor stops charging.
    first.send_signal(signal.SIGHUP)
    time.sleep(1.5)
    check(first.poll() is None, f"the daemon survives SIGHUP (exit {first.poll()})")
    first.terminate()
    check(first.wait(timeout=30) == 0, "the daemon exits 0 on SIGTERM")
    check("SIGHUP ignored" in first.stderr.read(), "SIGHUP is logged as ignored")

    # A database billingd cannot create (missing directory) or a lock it cannot take: exit 73
    # naming the path, not "internal error".
    nowhere = Workspace(sim)
    with open(nowhere.config_path) as f:
        text = f.read()
    with open(nowhere.config_path, "w") as f:
        f.write(text.replace(nowhere.db_path, "/nonexistent/billingd/billing.db"))
    r = nowhere.once(as_of="2025-01-15T01:00:00Z")
    check(r.returncode == 73 and "/nonexistent/billingd" in r.stderr,
          f"missing state directory: exit {r.returncode}: {r.stderr[-300:]}")

    # A database file that is not a database: the message names the file.
    garbage = Workspace(sim)
    with open(garbage.db_path, "wb") as f:
        f.write(b"this is not an SQLite database" * 200)
    r = garbage.once(as_of="2025-01-15T01:00:00Z")
    check(r.returncode in (70, 73) and garbage.db_path in r.stderr,
          f"corrupt database: exit {r.returncode}, names the file: {r.stderr[-300:]}")

# Rows written with the CHECK constraints bypassed: each is flagged needs_attention with its
# reason and the good subscription beside them is charged; no crash, no failed pass.
with Sim("--seed", "6", "--prefix", "pay-=pay") as sim:
    ws = Workspace(sim)
    ws.init_db()
    good = ws.add_subscription("pay-good", "2025-01-15")
    bad_values = {
        "interval_count = 4294967296": "interval_count",
        "interval_count = 0": "interval_count",
        "amount = 0": "amount",
        "amount = 9223372036854775807": "amount",
        "customer_uid = ''": "customer_uid",
        "customer_uid = 'a' || char(13) || char(10) || 'b'": "customer_uid",
        "customer_uid = CAST(x'c328' AS TEXT)": "customer_uid",
        "next_period = -5": "next_period",
        "next_period = 100000000000000000": "next_period",
        "order_name = ''": "order_name",
        "currency = 'USD'": "currency",
        "anchor_date = '0000-01-01', interval_unit = 'day'": "",
    }
    bad = {}
    for i, (assignment, _) in enumerate(bad_values.items()):
        sid = ws.add_subscription(f"pay-bad-{i}", "2025-01-15")
        with ws.db() as c:
            c.execute("PRAGMA ignore_check_constraints = 1")
            c.execute(f"UPDATE subscriptions SET {assignment} WHERE id = ?", (sid,))
        bad[sid] = assignment
    started = time.monotonic()
    r = ws.once(as_of="2025-01-15T01:00:00Z")
    check(time.monotonic() - started < 60, "bad rows do not slow the pass down")
    check(r.returncode in (0, 1), f"bad rows: exit {r.returncode}: {r.stderr[-400:]}")
    # (check_ledger_agrees would run integrity_check, which reports the bypassed CHECKs.)
    paid = [p["merchant_uid"] for p in sim.ledger() if p["status"] == "paid"]
    check(paid == [ws.uid(good, 0)] or (ws.uid(good, 0) in paid and len(paid) == 2),
          f"the good subscription beside the bad rows was charged, once: {paid}")
    check(len(paid) == len(set(paid)), "no period paid twice")
    for sid, assignment in bad.items():
        flagged = ws.scalar("SELECT needs_attention FROM subscriptions WHERE id = ?", sid)
        charged = ws.scalar("SELECT count(*) FROM charges WHERE subscription_id = ? AND state = 'paid'", sid)
        if assignment.startswith("anchor_date"):
            # A valid row, only far in the past: one charge and one skipped-range event.
            check(ws.scalar("SELECT count(*) FROM charges WHERE subscription_id = ?", sid) <= 1,
                  "an anchor in year 0 does not write a row per missed day")
            check(ws.scalar("SELECT count(*) FROM events WHERE subscription_id = ?", sid) < 10,
                  "nor an event per missed day")
            continue
        check(flagged is not None and charged == 0,
              f"{assignment}: flagged ({flagged}) and not charged ({charged})")
    check(ws.scalar("SELECT count(*) FROM events") < 200, "no flood of events")

finish("bad input and locks")
