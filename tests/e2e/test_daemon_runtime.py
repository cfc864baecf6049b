"""The long-running daemon (not --once) on the real clock, against portone-sim on 127.0.0.1:

- sd_notify: READY=1, STATUS=, WATCHDOG=1 (WATCHDOG_USEC given) and STOPPING=1 arrive on a
  test NOTIFY_SOCKET, from the daemon's own pid, in that order;
- a subscription inserted with the sqlite3 CLI while the daemon sleeps is charged;
- a guardrail (max_amount_per_charge) parks an oversized charge, with an event and a log line;
- a second billingd on the same database is refused (exit 75) while the first keeps running;
- SIGTERM with requests on the wire (2 s simulator latency) exits 0 with every outcome
  journaled; a --once restart settles the rest without charging anything twice;
- the circuit breaker opens under a 100 % 503 simulator, holds new charges back, and closes
  by itself when the simulator recovers.

Time is the real clock, so nothing here asserts a duration: every wait is a bounded poll with
a generous limit, and a limit running out is a failure.
"""
import datetime
import os
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import zoneinfo

from harness import BILLINGD, Sim, Workspace, check, check_ledger_agrees, finish

SETTLED = ("paid", "declined", "retry_wait", "parked", "skipped", "canceled")


def seoul_today():
    return datetime.datetime.now(zoneinfo.ZoneInfo("Asia/Seoul")).date().isoformat()


def poll(condition, limit, every=0.1):
    """Calls condition() until it is truthy or `limit` seconds have passed; returns its value."""
    deadline = time.monotonic() + limit
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(every)


class NotifyListener:
    """An AF_UNIX datagram socket standing in for systemd's $NOTIFY_SOCKET. Records every
    datagram with the sender's pid (SO_PASSCRED), as systemd's NotifyAccess=main would see it."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages = []  # (sender pid or None, {key: value} in datagram order)
        self.lock = threading.Lock()
        self.done = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        creds_size = socket.CMSG_SPACE(struct.calcsize("3i"))
        while not self.done:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(4096, creds_size)
            except socket.timeout:
                continue
            except OSError:
                return
            pid = None
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", payload[:struct.calcsize("3i")])[0]
            fields = []
            for line in data.decode(errors="replace").split("\n"):
                if "=" in line:
                    fields.append(tuple(line.split("=", 1)))
            with self.lock:
                self.messages.append((pid, fields))

    def fields(self):
        """Every KEY=VALUE received so far, flattened, in order: [(pid, key, value)]."""
        with self.lock:
            return [(pid, k, v) for pid, fs in self.messages for k, v in fs]

    def statuses(self):
        return [v for _, k, v in self.fields() if k == "STATUS"]

    def count(self, key):
        return sum(1 for _, k, _ in self.fields() if k == key)

    def close(self):
        self.done = True
        self.thread.join(timeout=5)
        self.sock.close()


class Daemon:
    """billingd without --once; stderr (the log) is collected line by line."""

    def __init__(self, ws, env=None):
        e = dict(ws.env)
        e.update(env or {})
        self.proc = subprocess.Popen([BILLINGD, "--config", ws.config_path], env=e,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        self.lines = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def log(self):
        return "\n".join(self.lines)

    def running(self):
        return self.proc.poll() is None

    def terminate(self, timeout=90):
        """SIGTERM and wait; returns the exit code (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = None
        self.thread.join(timeout=5)
        return code

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def charge_state(ws, subscription_id):
    with ws.db() as c:
        row = c.execute("SELECT state FROM charges WHERE subscription_id = ? ORDER BY period_index "
                        "DESC LIMIT 1", (subscription_id,)).fetchone()
    return row[0] if row else None


def sqlite3_cli_insert(ws, customer_uid, anchor, amount, charge_time="00:00"):
    """INSERT through the sqlite3 command-line shell: a different process and connection."""
    sql = ("INSERT INTO subscriptions (customer_uid, amount, order_name, interval_unit, "
           f"anchor_date, charge_time, time_zone) VALUES ('{customer_uid}', {amount}, "
           f"'Plan {customer_uid}', 'month', '{anchor}', '{charge_time}', 'Asia/Seoul'); "
           "SELECT last_insert_rowid();")
    r = subprocess.run(["sqlite3", "-cmd", ".timeout 30000", ws.db_path, sql],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"sqlite3 failed: {r.stderr}")
    return int(r.stdout.strip().splitlines()[-1])


def journal_complete(ws):
    """Every request in the journal has its answer, except for charges still `sending`
    (cut off by the shutdown bound: reconciled at the next start)."""
    with ws.db() as c:
        missing = c.execute(
            "SELECT r.id, r.charge_id, ch.state FROM attempts r JOIN charges ch ON ch.id = r.charge_id "
            "WHERE r.phase = 'request' AND NOT EXISTS "
            "(SELECT 1 FROM attempts a WHERE a.phase = 'answer' AND a.request_id = r.id)").fetchall()
    return [(m[0], m[1], m[2]) for m in missing if m[2] != "sending"]


# ---------------------------------------------------------------------------------------------
# 1, 2, 4, 6: one daemon under a test NOTIFY_SOCKET: a row inserted with sqlite3 is charged, a
# guardrail parks an oversized one, a second instance is refused, SIGTERM stops it cleanly.
with Sim("--seed", "7", "--prefix", "pay-=pay") as sim:
    ws = Workspace(sim, extra_guardrails="max_amount_per_charge = 100000")
    ws.init_db()
    notify = NotifyListener(ws.dir)
    d = Daemon(ws, env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "2000000"})
    try:
        check(poll(lambda: notify.count("READY") > 0 or not d.running(), 30) and d.running(),
              f"READY=1 received from the running daemon; log: {d.log()[-500:]}")
        check(poll(lambda: any("idle" in s for s in notify.statuses()), 30),
              f"an idle STATUS with the next wake-up: {notify.statuses()}")

        # The daemon is asleep with nothing due; a row written by another process wakes it.
        today = seoul_today()
        sub = sqlite3_cli_insert(ws, "pay-cli-1", today, 9900)
        state = poll(lambda: charge_state(ws, sub) == "paid", 15, every=0.2)
        check(state, f"the row inserted with sqlite3 was charged while the daemon runs "
                     f"(state {charge_state(ws, sub)}); log: {d.log()[-500:]}")
        ledger = {p["merchant_uid"]: p for p in sim.ledger()}
        check(ledger.get(ws.uid(sub, 0), {}).get("status") == "paid",
              "PortOne has the payment of the inserted row")

        # Guardrail: an oversized charge is parked, never sent; a normal one next to it is paid.
        big = sqlite3_cli_insert(ws, "pay-big-1", today, 500000)
        small = sqlite3_cli_insert(ws, "pay-small-1", today, 9900)
        poll(lambda: charge_state(ws, big) == "parked" and charge_state(ws, small) == "paid", 15,
             every=0.2)
        check(charge_state(ws, big) == "parked",
              f"the oversized charge is parked (state {charge_state(ws, big)})")
        check(charge_state(ws, small) == "paid",
              f"the normal charge beside it is paid (state {charge_state(ws, small)})")
        with ws.db() as c:
            row = c.execute("SELECT id, attempt_count, park_reason FROM charges WHERE subscription_id = ?",
                            (big,)).fetchone()
            events = c.execute("SELECT detail FROM events WHERE charge_id = ? AND kind = 'charge.parked' "
                               "AND to_state = 'parked'", (row["id"] if row else -1,)).fetchall()
        check(row is not None and row["attempt_count"] == 0, "the parked charge was never attempted")
        check(row is not None and "max_amount_per_charge" in (row["park_reason"] or ""),
              f"park_reason names the guardrail: {row and row['park_reason']}")
        check(len(events) == 1 and "guardrail" in (events[0][0] or ""),
              f"one charge.parked event naming the guardrail: {[e[0] for e in events]}")
        check(ws.uid(big, 0) not in {p["merchant_uid"] for p in sim.ledger()},
              "PortOne never saw the oversized charge")
        check(poll(lambda: any("outcome=parked" in l and f"subscription_id={big}" in l
                               for l in d.lines), 5),
              f"the park is logged; log: {d.log()[-500:]}")

        # A second billingd on the same database is refused while the first runs.
        try:
            r = ws.billingd(timeout=60)
            check(r.returncode == 75, f"second instance: exit {r.returncode}, want 75")
            check("already running" in r.stderr and f"pid {d.pid}" in r.stderr,
                  f"the refusal names the running instance: {r.stderr[-300:]}")
        except subprocess.TimeoutExpired:
            check(False, "a second daemon on the same database was not refused (still running)")
        r = ws.once()
        check(r.returncode == 75, f"--once beside a running daemon: exit {r.returncode}, want 75")
        check(d.running(), "the first daemon keeps running after the refused second instance")

        # WATCHDOG=1 keeps coming at WATCHDOG_USEC/2 while it runs.
        check(poll(lambda: notify.count("WATCHDOG") >= 3, 30),
              f"WATCHDOG=1 sent repeatedly ({notify.count('WATCHDOG')} received)")
        watchdogs_before = notify.count("WATCHDOG")
        check(poll(lambda: notify.count("WATCHDOG") > watchdogs_before, 30),
              "WATCHDOG=1 keeps coming")
    finally:
        code = d.terminate()
    check(code == 0, f"SIGTERM: exit {code}, want 0; log: {d.log()[-500:]}")
    poll(lambda: notify.count("STOPPING") > 0, 5)
    notify.close()

    fields = notify.fields()
    keys = [k for _, k, _ in fields]
    check(all(pid == d.pid for pid, _, _ in fields),
          f"every notification comes from the daemon's pid {d.pid}: "
          f"{sorted({pid for pid, _, _ in fields}, key=str)}")
    check(keys.count("READY") == 1, f"READY=1 sent once ({keys.count('READY')})")
    check("STOPPING" in keys, "STOPPING=1 sent on SIGTERM")
    if "READY" in keys and "STOPPING" in keys and "WATCHDOG" in keys:
        ready_at, stopping_at = keys.index("READY"), keys.index("STOPPING")
        check(ready_at < keys.index("WATCHDOG") < stopping_at,
              f"READY, then WATCHDOG, then STOPPING: {keys[:6]} ... {keys[-6:]}")
        check(keys[0] == "READY", f"READY=1 is the first notification: {keys[:3]}")
        check("READY" not in keys[stopping_at:], "no READY after STOPPING")
        statuses = [v for _, k, v in fields if k == "STATUS"]
        check(len(statuses) >= 2 and "stopped" in statuses[-1],
              f"STATUS lines, the last one 'stopped': {statuses[-3:]}")
    else:
        check(False, f"READY, WATCHDOG and STOPPING all received: {sorted(set(keys))}")
    check_ledger_agrees(ws, sim)

# Without WATCHDOG_USEC the daemon sends no WATCHDOG=1; with WATCHDOG_PID naming another
# process it sends none either (sd_watchdog_enabled: the watchdog is someone else's).
with Sim("--seed", "8", "--prefix", "pay-=pay") as sim:
    ws = Workspace(sim)
    ws.init_db()
    for env in ({}, {"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}):
        notify = NotifyListener(tempfile.mkdtemp(dir=ws.dir))
        d = Daemon(ws, env={"NOTIFY_SOCKET": notify.path, **env})
        try:
            check(poll(lambda: notify.count("READY") > 0, 30), f"{env}: READY=1 received")
            # Three watchdog intervals' worth of silence (sent at 1 s when enabled).
            poll(lambda: notify.count("WATCHDOG") > 0, 4)
            check(notify.count("WATCHDOG") == 0, f"{env}: no WATCHDOG=1 when not asked for")
        finally:
            code = d.terminate()
        check(code == 0, f"{env}: SIGTERM exit {code}")
        poll(lambda: notify.count("STOPPING") > 0, 5)
        check(notify.count("STOPPING") > 0, f"{env}: STOPPING=1 received")
        notify.close()

# ---------------------------------------------------------------------------------------------
# 3: SIGTERM while charges are on the wire (every charge answered after 2 s, 8 at a time).
with Sim("--seed", "9", "--prefix", "pay-=pay", "--fault", "charge:latency_ms=2000:1.0") as sim:
    ws = Workspace(sim, max_in_flight=8, charge_timeout_ms=15000, lookup_timeout_ms=15000)
    ws.init_db()
    today = seoul_today()
    subs = [ws.add_subscription(f"pay-term-{i}", today, amount=1000 + i, charge_time="00:00")
            for i in range(20)]
    d = Daemon(ws)
    try:
        mine = lambda: [p for p in sim.ledger() if p["merchant_uid"].startswith(ws.prefix + "-")]
        on_wire = poll(lambda: len(mine()) > 0 or not d.running(), 30, every=0.05)
        check(on_wire and d.running(), f"charges reached PortOne; log: {d.log()[-500:]}")
        with ws.db() as c:
            answered_before = c.execute("SELECT count(*) FROM attempts WHERE phase = 'answer' "
                                        "AND kind = 'charge'").fetchone()[0]
        at_sigterm = len(mine())
    finally:
        code = d.terminate(timeout=120)
    check(code == 0, f"SIGTERM with requests in flight: exit {code}, want 0; log: {d.log()[-800:]}")
    check(answered_before < at_sigterm, "SIGTERM arrived while charges were unanswered")
    after = mine()
    print(f"sigterm: {at_sigterm} charges at PortOne when SIGTERM was sent, {len(after)} by exit, "
          f"{answered_before} answered before", flush=True)
    # "Stop starting new charges": at most the 8 requests already on the wire reach PortOne.
    check(len(after) <= 8, f"no new charge started after SIGTERM: {at_sigterm} at PortOne when "
                           f"it was sent, {len(after)} by exit (max_in_flight 8)")
    rows = ws.charges()
    # A charge row is created as its request is written ahead: only those that went out.
    check(len(after) <= len(rows) <= 20, f"a charge row for each request sent ({len(rows)}, "
                                         f"{len(after)} at PortOne)")
    states = {}
    for row in rows:
        states[row["state"]] = states.get(row["state"], 0) + 1
    print(f"sigterm: states at exit {states}", flush=True)
    check(all(r["state"] in SETTLED + ("sending", "scheduled") for r in rows),
          f"every charge is settled, or `sending` if cut off: {states}")
    check(states.get("paid", 0) >= at_sigterm,
          f"every charge on the wire at SIGTERM had its answer journaled ({states})")
    check(journal_complete(ws) == [],
          f"every request has its answer journaled: {journal_complete(ws)[:5]}")
    with ws.db() as c:
        no_imp_uid = c.execute("SELECT count(*) FROM charges WHERE state = 'paid' "
                               "AND imp_uid IS NULL").fetchone()[0]
    check(no_imp_uid == 0, "paid rows carry their imp_uid")
    check_ledger_agrees(ws, sim)

    # The restart settles everything; nothing is charged twice. An hour ahead, so that rows
    # put back to retry_wait by the shutdown are due whatever their backoff.
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    r = ws.billingd("--once", "--i-know-this-is-a-test-db",
                    as_of=later.strftime("%Y-%m-%dT%H:%M:%SZ"))
    check(r.returncode == 0, f"--once after the SIGTERM: exit {r.returncode}: {r.stderr[-500:]}")
    paid = check_ledger_agrees(ws, sim)
    check(all(ws.uid(s, 0) in paid for s in subs), f"all 20 paid at PortOne ({len(paid)})")
    check(len(ws.charges()) == 20 and all(r["state"] == "paid" for r in ws.charges()),
          f"all 20 paid in billingd: {[r['state'] for r in ws.charges()]}")
    uids = [p["merchant_uid"] for p in sim.ledger() if p["merchant_uid"].startswith(ws.prefix + "-")]
    check(len(uids) == len(set(uids)) == 20, f"one payment per merchant_uid ({len(uids)})")

# ---------------------------------------------------------------------------------------------
# 5: the circuit breaker opens under a 100 % 503 simulator and closes when it recovers.
with Sim("--seed", "10", "--prefix", "pay-=pay") as sim:
    ws = Workspace(sim, extra_retry="transient_base_seconds = 1\ntransient_cap_seconds = 2")
    with open(ws.config_path, "a") as f:
        # Explicit, as the "nothing sent while open" check below watches 5 s of it.
        f.write("[breaker]\nwindow = 20\nmin_calls = 10\nfailure_percent = 50\nopen_seconds = 30\n")
    ws.init_db()
    today = seoul_today()
    subs = [ws.add_subscription(f"pay-cb-{i}", today, amount=2000 + i, charge_time="00:00")
            for i in range(12)]
    sim.set_faults(["charge:http503_before:1.0"])
    notify = NotifyListener(ws.dir)
    d = Daemon(ws, env={"NOTIFY_SOCKET": notify.path})
    stats = lambda: sim._call("GET", "/__sim/stats")
    try:
        opened = poll(lambda: any("outcome=breaker_open" in l for l in d.lines), 60, every=0.2)
        check(opened, f"the breaker opened under 100 % 503; log: {d.log()[-800:]}")
        status_open = poll(lambda: any("circuit breaker OPEN" in s for s in notify.statuses()), 30)
        check(status_open, f"STATUS shows the open breaker: {notify.statuses()[-3:]}")
        check(not any(r["state"] == "paid" for r in ws.charges()), "nothing paid while failing")
        # While open, no new charge is sent (the first probe is due breaker_open_for = 30 s later).
        sent_when_open = stats()["requests"]["charge"]
        time.sleep(5)
        check(stats()["requests"]["charge"] == sent_when_open,
              f"no charge sent while the breaker is open ({sent_when_open} -> "
              f"{stats()['requests']['charge']})")
        # A 503 may come after the payment was made: those rows are in doubt and reconciled
        # (lookups go on while the breaker is open); none is on the wire or paid.
        held = [r["state"] for r in ws.charges()]
        check(len(held) == 12 and all(st in ("unknown", "reconciling", "retry_wait", "scheduled")
                                      for st in held),
              f"held-back charges wait (in doubt or to retry): {held}")

        sim.set_faults([])
        all_paid = poll(lambda: all(charge_state(ws, s) == "paid" for s in subs), 120, every=0.5)
        check(all_paid, f"every charge paid after the simulator recovered: "
                        f"{[charge_state(ws, s) for s in subs]}; log: {d.log()[-800:]}")
        check(any("outcome=breaker_closed" in l for l in d.lines),
              f"the breaker closed (logged); log: {d.log()[-800:]}")
        closed_status = poll(lambda: notify.statuses() and
                             "circuit breaker OPEN" not in notify.statuses()[-1], 30)
        check(closed_status, f"STATUS no longer shows the breaker: {notify.statuses()[-2:]}")
    finally:
        code = d.terminate()
    check(code == 0, f"SIGTERM: exit {code}")
    notify.close()
    paid = check_ledger_agrees(ws, sim)
    check(len(paid) == 12, f"12 payments at PortOne ({len(paid)})")

finish("daemon runtime")
