"""The guarantees of the second engine design, proved end to end against portone-sim. Every
scenario reads PortOne's side (the simulator's ledger and its per-merchant_uid request counter,
GET /__sim/requests) as well as billingd's rows, so a broken guarantee shows up as money:

1. Two databases with no configured merchant_uid_prefix, on one PortOne account, whose
   subscription ids coincide: each mints its own merchant_uids (a random install id each), so
   every subscription is paid exactly once and nothing is refused as "already used". A
   database restored from a backup keeps the install id but new subscriptions get new keys
   (ids are reused, merchant_uids are not); a period the original charged after the backup
   is not charged again by the copy; a config naming another prefix than the database's
   install id is refused (exit 78) and changes nothing.
2. Cancel and pause while charges wait for a free slot (max_in_flight = 2): only what goes on
   the wire is written ahead, and a cancel committed meanwhile is seen by the write-ahead
   transaction, so no request for a canceled subscription reaches PortOne.
3. SIGKILL with the request still at the PG (--record-at answer: the lookup sees 404 while the
   PG works): the restart looks the charge up and does not resend before the trust floor;
   exactly one charge request and one payment. Same with --record-at arrival (`ready`).
4. A failed merchant_uid that PortOne refuses to charge again (--failed-uid-reuse refuse):
   bounded refusals with back-off, then parked with PortOne's message; with `allow` the
   dunning retry pays under the same merchant_uid.
5. The hourly cap counts from the journal: a restart does not grant a fresh hour.
6. --as-of refuses a database that ran on the real clock (exit 64) unless confirmed.

Time is injected with `--once --as-of`; the real clock only matters where the simulator's
latency is real (scenarios 2 and 3), and there every wait is a bounded poll with a generous
limit. Nothing asserts how fast the machine is.
"""
import datetime
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

from harness import BILLINGD, Sim, Workspace, check, check_ledger_agrees, finish

ANCHOR = "2025-05-10"          # 10:00 Asia/Seoul on this day is 01:00 UTC
T0 = datetime.datetime(2025, 5, 10, 1, 0, 0, tzinfo=datetime.timezone.utc)
REFUSED_MESSAGE = "이미 주문이 이루어진 건입니다"
# The least trust floor with the harness's timeouts: connect 2 s + charge 2 s + 1 s + the
# default in_progress_margin_seconds 30. billingd may hold longer (pacing, a token fetch,
# PortOne's own 60 s for payment calls): that is only safer, so tests assert "at least".
FLOOR = 2 + 2 + 1 + 30


def at(delta=datetime.timedelta()):
    return (T0 + delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def unix(delta=datetime.timedelta()):
    return int((T0 + delta).timestamp())


def iso(unix_seconds):
    return datetime.datetime.fromtimestamp(unix_seconds, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def poll(condition, limit, every=0.05):
    """Calls condition() until it is truthy or `limit` seconds have passed; returns its value."""
    deadline = time.monotonic() + limit
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(every)


def payments(sim, uid):
    return [p for p in sim.ledger() if p["merchant_uid"] == uid]


def tail(r, n=600):
    return f"exit {r.returncode}; stderr: {r.stderr[-n:]}"


def outcomes(ws, kind=None):
    sql = "SELECT outcome FROM attempts WHERE phase = 'answer'"
    with ws.db() as c:
        if kind:
            return [r[0] for r in c.execute(sql + " AND kind = ?", (kind,))]
        return [r[0] for r in c.execute(sql)]


def charge_of(ws, subscription_id, period=0):
    with ws.db() as c:
        row = c.execute("SELECT * FROM charges WHERE subscription_id = ? AND period_index = ?",
                        (subscription_id, period)).fetchone()
    return dict(row) if row else None


def sent_uid(ws, subscription_id, period=0):
    """The merchant_uid billingd charged the period under (its charge row), or a placeholder."""
    row = charge_of(ws, subscription_id, period)
    return row["merchant_uid"] if row else f"<no charge row for {subscription_id}/{period}>"


# ---------------------------------------------------------------------------------------------
def two_databases_one_account():
    name = "two databases"
    with Sim("--seed", "11", "--prefix", "pay-=pay") as sim:
        a = Workspace(sim, prefix=None)
        b = Workspace(sim, prefix=None)
        a.init_db()
        b.init_db()
        ids = (a.install_id(), b.install_id())
        for install in ids:
            check(install and re.fullmatch(r"[0-9a-f]{8}", install),
                  f"{name}: a database without a configured prefix has install id {install!r}")
        check(ids[0] != ids[1], f"{name}: two new databases got the same install id {ids[0]}")

        # Staging and production: same customers, same amounts, same subscription ids.
        subs = {}
        for ws in (a, b):
            subs[ws] = [ws.add_subscription(f"pay-shared-{i}", ANCHOR) for i in range(3)]
            check(subs[ws] == [1, 2, 3], f"{name}: subscription ids {subs[ws]} (want 1, 2, 3)")
        for ws in (a, b):
            r = ws.once(as_of=at())
            check(r.returncode == 0, f"{name}: --once on {ws.install_id()}: {tail(r)}")

        # What billingd sent, from its rows; it must be <install id>-<uid_key>-p<period>.
        uids = {ws: [sent_uid(ws, s) for s in subs[ws]] for ws in (a, b)}
        for ws in (a, b):
            check(uids[ws] == [ws.uid(s, 0) for s in subs[ws]],
                  f"{name}: merchant_uids {uids[ws]} are not <install id>-<uid_key>-p<period>")
        check(not set(uids[a]) & set(uids[b]),
              f"{name}: both databases minted {set(uids[a]) & set(uids[b])}")
        check(len(set(uids[a]) | set(uids[b])) == 6, f"{name}: merchant_uids not distinct")
        ledger = sim.ledger()
        for ws in (a, b):
            for sub, uid in zip(subs[ws], uids[ws]):
                records = [p for p in ledger if p["merchant_uid"] == uid]
                check([p["status"] for p in records] == ["paid"],
                      f"{name}: {uid} has records {[p['status'] for p in records]} at PortOne")
                check(sim.requests(uid)["charges"] == 1,
                      f"{name}: {uid} got {sim.requests(uid)['charges']} charge requests")
                row = charge_of(ws, sub)
                check(row and row["state"] == "paid", f"{name}: {uid} is {row and row['state']}")
            refused = [o for o in outcomes(ws) if o != "paid"]
            check(not refused, f"{name}: answers other than paid in {ws.install_id()}: {refused}")
            check_ledger_agrees(ws, sim)

        # Restore A's backup into a new place (B'); both go on adding subscriptions.
        restored = Workspace(sim, prefix=None)
        src = sqlite3.connect(a.db_path)
        dst = sqlite3.connect(restored.db_path)
        with dst:
            src.backup(dst)
        src.close()
        dst.close()
        check(restored.install_id() == a.install_id(), f"{name}: the backup lost the install id")
        new = {}
        for ws in (a, restored):
            new[ws] = [ws.add_subscription(f"pay-new-{i}", ANCHOR) for i in range(2)]
            check(new[ws] == [4, 5], f"{name}: new subscription ids {new[ws]} (want 4, 5)")
        for ws in (a, restored):
            r = ws.once(as_of=at(datetime.timedelta(hours=1)))
            check(r.returncode == 0, f"{name}: --once after the restore: {tail(r)}")
        new_a = {sent_uid(a, s) for s in new[a]}
        new_r = {sent_uid(restored, s) for s in new[restored]}
        check(not new_a & new_r, f"{name}: the restored database re-minted A's {new_a & new_r}")
        for uid in new_a | new_r:
            check([p["status"] for p in payments(sim, uid)] == ["paid"],
                  f"{name}: new {uid}: {[p['status'] for p in payments(sim, uid)]} at PortOne")
            check(sim.requests(uid)["charges"] == 1, f"{name}: new {uid} charged more than once")
        for uid in uids[a]:  # the copied periods were paid in A: not charged again from B'
            check(sim.requests(uid)["charges"] == 1, f"{name}: {uid} charged again after restore")
        for ws in (a, restored):
            check(not [o for o in outcomes(ws) if o != "paid"],
                  f"{name}: answers other than paid after the restore: {outcomes(ws)}")
            check(all(row["state"] == "paid" for row in ws.charges()),
                  f"{name}: not all paid after the restore: {[r['state'] for r in ws.charges()]}")
            check_ledger_agrees(ws, sim, own_subscriptions_only=True)

        # A config that names another prefix than the database's install id is refused.
        install = a.install_id()
        attempts_before = a.scalar("SELECT count(*) FROM attempts")
        charges_before = a.scalar("SELECT count(*) FROM charges")
        a.add_subscription("pay-late", ANCHOR)
        a.write_config(merchant_uid_prefix="other1")
        r = a.once(as_of=at(datetime.timedelta(hours=2)))
        check(r.returncode == 78, f"{name}: another merchant_uid_prefix: {tail(r)}")
        check(install in r.stderr, f"{name}: the refusal does not name install id {install}: "
                                   f"{r.stderr[-400:]}")
        check(a.scalar("SELECT count(*) FROM attempts") == attempts_before,
              f"{name}: the refused run journaled requests")
        check(a.scalar("SELECT count(*) FROM charges") == charges_before,
              f"{name}: the refused run created charges")
        check(not [p for p in sim.ledger() if p["merchant_uid"].startswith("other1-")],
              f"{name}: something was charged under the refused prefix")
        a.write_config(merchant_uid_prefix=install)  # naming the install id itself is fine
        r = a.once(as_of=at(datetime.timedelta(hours=2)))
        check(r.returncode == 0, f"{name}: config naming the install id itself: {tail(r)}")
        check_ledger_agrees(a, sim, own_subscriptions_only=True)

        # Next month the original and then the restored copy bill the copied subscriptions.
        # A restore must not charge again what the original charged after the backup: the
        # copy's request is refused as "already paid", its lookup finds the payment, and the
        # customer pays once.
        next_month = "2025-06-10T01:00:00Z"
        for ws in (a, restored):
            r = ws.once(as_of=next_month)
            check(r.returncode == 0, f"{name}: next month on {ws.dir}: {tail(r)}")
        for sub in subs[a]:
            period_uids = {sent_uid(a, sub, 1), sent_uid(restored, sub, 1)}
            paid_records = [p for p in sim.ledger()
                            if p["merchant_uid"] in period_uids and p["status"] == "paid"]
            check(len(paid_records) == 1, f"{name}: period 1 of copied subscription {sub} paid "
                                          f"{len(paid_records)} times at PortOne")
            rows = [charge_of(ws, sub, 1) for ws in (a, restored)]
            check(all(row and row["state"] == "paid" for row in rows) and
                  rows[0]["imp_uid"] == rows[1]["imp_uid"],
                  f"{name}: period 1 of {sub}: {[(r['state'], r['imp_uid']) for r in rows if r]}")
        for ws in (a, restored):
            check_ledger_agrees(ws, sim, own_subscriptions_only=True)


# ---------------------------------------------------------------------------------------------
def cancel_while_queued():
    name = "cancel while queued"
    latency = 400
    with Sim("--seed", "12", "--prefix", "pay-=pay",
             "--fault", f"charge:latency_ms={latency}:1.0") as sim:
        ws = Workspace(sim, max_in_flight=2)
        ws.init_db()
        subs = [ws.add_subscription(f"pay-queue-{i}", ANCHOR) for i in range(30)]
        with open(os.path.join(ws.dir, "once.out"), "w") as out, \
                open(os.path.join(ws.dir, "once.err"), "w") as err:
            proc = subprocess.Popen([BILLINGD, "--config", ws.config_path, "--once",
                                     "--as-of", at()], env=ws.env, stdout=out, stderr=err)
        try:
            max_sending = 0

            def started():
                nonlocal max_sending
                with ws.db() as c:
                    sending = c.execute(
                        "SELECT count(*) FROM charges WHERE state = 'sending'").fetchone()[0]
                    moved = c.execute("SELECT count(*) FROM charges").fetchone()[0]
                max_sending = max(max_sending, sending)
                return moved > 0 or proc.poll() is not None

            check(poll(started, 120), f"{name}: billingd never started charging")
            # Six subscriptions whose charge has not reached PortOne yet, last in line first
            # (only what goes on the wire is written ahead: they have no charge row yet).
            with ws.db() as c:
                line = [r[0] for r in c.execute(
                    "SELECT id FROM subscriptions s WHERE NOT EXISTS (SELECT 1 FROM charges c "
                    "WHERE c.subscription_id = s.id) ORDER BY next_due_at DESC, id DESC")]
            queued = [sub for sub in line if sim.requests(ws.uid(sub, 0))["charges"] == 0][:6]
            check(len(queued) == 6, f"{name}: only {len(queued)} charges not yet sent")
            actions = [("cancel", s) for s in queued[:4]] + [("pause", s) for s in queued[4:5]]
            sql_paused = queued[5:6]
            returned = {}   # subscription id -> wall-clock ms when billingctl returned
            state_after = {}
            for verb, sub in actions:
                r = ws.billingctl("subscription", verb, str(sub))
                returned[sub] = int(time.time() * 1000)
                check(r.returncode == 0, f"{name}: billingctl subscription {verb} {sub}: "
                                         f"{r.returncode} {r.stdout} {r.stderr}")
                state_after[sub] = (charge_of(ws, sub) or {"state": None})["state"]
            # The merchant's application may also pause by SQL: seen in the write-ahead too.
            for sub in sql_paused:
                with ws.db() as c:
                    c.execute("UPDATE subscriptions SET status = 'paused' WHERE id = ?", (sub,))
                returned[sub] = int(time.time() * 1000)
                state_after[sub] = (charge_of(ws, sub) or {"state": None})["state"]
            while proc.poll() is None:
                started()
                time.sleep(0.05)
            code = proc.wait(timeout=180)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        with open(os.path.join(ws.dir, "once.err")) as f:
            stderr = f.read()
        check(code == 0, f"{name}: --once exited {code}: {stderr[-600:]}")
        check(max_sending <= 2, f"{name}: {max_sending} rows 'sending' at once (max_in_flight 2)")

        stopped = [sub for _, sub in actions] + sql_paused
        caught = 0
        for sub in stopped:
            uid = ws.uid(sub, 0)
            seen = sim.requests(uid)
            late = [t for t in seen["charge_arrivals_ms"] if t > returned[sub]]
            check(not late, f"{name}: charge for stopped subscription {sub} reached PortOne "
                            f"{[t - returned[sub] for t in late]} ms after the command returned")
            row = charge_of(ws, sub)
            if state_after[sub] is None:
                # Not yet on the wire when the change committed: never sent, no charge row.
                caught += 1
                check(seen["charges"] == 0,
                      f"{name}: stopped subscription {sub} was charged {seen['charges']} times")
                check(row is None, f"{name}: stopped {sub} has a charge row: {row}")
                check(not payments(sim, uid), f"{name}: PortOne has a payment for stopped {sub}")
            else:
                print(f"note: {name}: subscription {sub}'s charge was already "
                      f"{state_after[sub]} when it was stopped", flush=True)
        check(caught >= 4, f"{name}: only {caught} of {len(stopped)} stops landed while queued")
        statuses = {sub: ws.scalar("SELECT status FROM subscriptions WHERE id = ?", sub)
                    for sub in stopped}
        for verb, sub in actions:
            want = "canceled" if verb == "cancel" else "paused"
            check(statuses[sub] == want, f"{name}: subscription {sub} is {statuses[sub]}")

        paid = check_ledger_agrees(ws, sim)
        others = [s for s in subs if s not in stopped]
        for sub in others:
            uid = ws.uid(sub, 0)
            seen = sim.requests(uid)
            check(uid in paid and seen["charges"] == 1,
                  f"{name}: subscription {sub}: paid={uid in paid}, charges={seen['charges']}")
            check(seen["max_concurrent_charges"] <= 1, f"{name}: {uid} had concurrent charges")
        # The simulator's side of max_in_flight = 2: each charge holds a slot for the whole
        # latency, so no three arrivals fit in one latency window.
        arrivals = sorted(t for s in subs for t in sim.requests(ws.uid(s, 0))["charge_arrivals_ms"])
        crowded = [(arrivals[i], arrivals[i + 2]) for i in range(len(arrivals) - 2)
                   if arrivals[i + 2] - arrivals[i] < latency - 10]
        check(not crowded, f"{name}: three charges on the wire at once: {crowded[:3]}")


# ---------------------------------------------------------------------------------------------
def crash_with_request_at_pg(record_at):
    name = f"crash at the PG (record_at={record_at})"
    latency_ms = 3000
    with Sim("--seed", "13", "--prefix", "pay-=pay", "--record-at", record_at,
             "--fault", f"charge:latency_ms={latency_ms}:1.0") as sim:
        ws = Workspace(sim, prefix=None)
        ws.init_db()
        sub = ws.add_subscription("pay-crash", ANCHOR)
        r = ws.once(as_of=at(), env={"BILLINGD_CRASH_AT": "after_request_written:1"})
        crashed = time.monotonic()
        check(r.returncode == -signal.SIGKILL, f"{name}: expected a SIGKILL: {tail(r)}")
        uid = ws.uid(sub, 0)
        check(charge_of(ws, sub)["state"] == "sending", f"{name}: crash left no 'sending' row")

        # Restart at once, at the same simulated time: the PG is still working on it.
        r = ws.once(as_of=at())
        restart_took = time.monotonic() - crashed
        check(r.returncode in (0, 1), f"{name}: restart: {tail(r)}")
        seen = sim.requests(uid)
        check(seen["charges"] == 1, f"{name}: the restart sent {seen['charges'] - 1} more charges")
        check(seen["max_concurrent_charges"] == 1, f"{name}: two charges in flight for {uid}")
        check(seen["lookups"] >= 1, f"{name}: the restart did not look {uid} up")
        row = charge_of(ws, sub)
        if restart_took < latency_ms / 1000:
            check(row["state"] == "unknown",
                  f"{name}: after a lookup during the PG's latency the row is {row['state']}")
            check(row["attempt_count"] == 1, f"{name}: attempt_count {row['attempt_count']}")
            if record_at == "answer":
                # 404 from a lookup inside the trust floor: held, not trusted, not resent. The
                # floor is at least connect 2 s + charge 2 s + 1 s + margin 30 s after the
                # write-ahead (a longer one is only safer).
                wait = (row["next_action_at"] or 0) - unix()
                check(wait >= FLOOR, f"{name}: next lookup {wait} s after the write-ahead "
                                     f"(want at least the trust floor, {FLOOR} s)")
        else:
            print(f"note: {name}: the restart took {restart_took:.1f} s, longer than the PG's "
                  f"latency; the in-progress check was not exercised", flush=True)
        with ws.db() as c:
            check(c.execute("SELECT count(*) FROM attempts WHERE kind = 'charge' AND "
                            "phase = 'request'").fetchone()[0] == 1,
                  f"{name}: more than one charge request in the journal")

        # Once the PG has answered (real time), a run past the trust floor settles it.
        check(poll(lambda: [p for p in payments(sim, uid) if p["status"] == "paid"], 60),
              f"{name}: the PG never recorded the payment")
        settle_at = max(unix(datetime.timedelta(minutes=2)),
                        charge_of(ws, sub)["next_action_at"] or 0)
        r = ws.once(as_of=iso(settle_at))
        check(r.returncode == 0, f"{name}: run past the floor: {tail(r)}")
        row = charge_of(ws, sub)
        check(row["state"] == "paid", f"{name}: after the PG answered the row is {row['state']}")
        seen = sim.requests(uid)
        check(seen["charges"] == 1 and seen["max_concurrent_charges"] == 1,
              f"{name}: {seen['charges']} charge requests, "
              f"{seen['max_concurrent_charges']} at once")
        check(len(payments(sim, uid)) == 1, f"{name}: {len(payments(sim, uid))} payments for {uid}")
        paid = check_ledger_agrees(ws, sim)
        check(uid in paid, f"{name}: {uid} not paid at PortOne")


# ---------------------------------------------------------------------------------------------
def refused_failed_uid():
    name = "refused failed merchant_uid"
    retry = "max_refusals = 3\nrefusal_base_seconds = 60"
    with Sim("--seed", "14", "--prefix", "dfirst-=decline_first:1",
             "--failed-uid-reuse", "refuse") as sim:
        ws = Workspace(sim, extra_retry=retry)
        ws.init_db()
        sub = ws.add_subscription("dfirst-refuse", ANCHOR)
        uid = ws.uid(sub, 0)
        r = ws.once(as_of=at())
        check(r.returncode in (0, 1), f"{name}: first run: {tail(r)}")
        row = charge_of(ws, sub)
        check(row["state"] == "declined", f"{name}: first attempt is {row['state']}")
        check(sim.requests(uid)["charges"] == 1, f"{name}: first run charges")
        dunning_at = row["next_action_at"]
        check(dunning_at == unix(datetime.timedelta(days=1)),
              f"{name}: dunning retry at {dunning_at}, want one day later")

        # The dunning day and then about hourly (never before the retry is due): each run
        # sends at most the one refused retry, and the third refusal parks the charge.
        expected_charges = [2, 3, 4, 4, 4, 4]
        last = None
        now = dunning_at
        for step, want in enumerate(expected_charges):
            last = ws.once(as_of=iso(now))
            got = sim.requests(uid)["charges"]
            check(got == want, f"{name}: after the run at dunning+{now - dunning_at} s PortOne "
                               f"got {got} charge requests (want {want})")
            row = charge_of(ws, sub)
            refusals = step + 1
            if refusals < 3:
                # Refusal n waits about refusal_base * 2^(n-1) (half of it jittered), never
                # less (and never before the trust floor of the refused request).
                full = 60 * 2 ** (refusals - 1)
                delay = (row["next_action_at"] or 0) - now
                check(row["state"] == "retry_wait" and delay >= full // 2,
                      f"{name}: after refusal {refusals}: {row['state']}, next in {delay} s "
                      f"(want at least {full // 2})")
                check(row["refusal_count"] == refusals, f"{name}: refusal_count "
                                                       f"{row['refusal_count']} (want {refusals})")
            now = max(now + 3600, row["next_action_at"] or 0)
        row = charge_of(ws, sub)
        check(row["state"] == "parked", f"{name}: after 3 refusals the charge is {row['state']}")
        check(REFUSED_MESSAGE in (row["park_reason"] or ""),
              f"{name}: park_reason lacks PortOne's message: {row['park_reason']!r}")
        check(last.returncode == 1, f"{name}: a parked charge must need attention: {tail(last)}")
        check(sim.requests(uid)["max_concurrent_charges"] == 1, f"{name}: concurrent charges")
        check([p["status"] for p in payments(sim, uid)] == ["failed"],
              f"{name}: PortOne records {[p['status'] for p in payments(sim, uid)]}")
        check(outcomes(ws, "charge").count("refused") == 3,
              f"{name}: refused answers journaled: {outcomes(ws, 'charge')}")
        check_ledger_agrees(ws, sim)

    name = "failed merchant_uid re-charged"
    with Sim("--seed", "15", "--prefix", "dfirst-=decline_first:1") as sim:
        ws = Workspace(sim, extra_retry=retry)
        ws.init_db()
        sub = ws.add_subscription("dfirst-allow", ANCHOR)
        uid = ws.uid(sub, 0)
        r = ws.once(as_of=at())
        check(r.returncode in (0, 1) and charge_of(ws, sub)["state"] == "declined",
              f"{name}: first run: {charge_of(ws, sub)['state']} {tail(r)}")
        r = ws.once(as_of=at(datetime.timedelta(days=1)))
        check(r.returncode == 0, f"{name}: dunning retry: {tail(r)}")
        row = charge_of(ws, sub)
        check(row["state"] == "paid" and row["merchant_uid"] == uid,
              f"{name}: dunning retry left {row['state']} {row['merchant_uid']}")
        check(sorted(p["status"] for p in payments(sim, uid)) == ["failed", "paid"],
              f"{name}: PortOne records {[p['status'] for p in payments(sim, uid)]}")
        check(sim.requests(uid)["charges"] == 2, f"{name}: {sim.requests(uid)['charges']} charges")
        check("refused" not in outcomes(ws), f"{name}: refused answers: {outcomes(ws)}")
        check_ledger_agrees(ws, sim)


# ---------------------------------------------------------------------------------------------
def hourly_cap_across_restarts():
    name = "hourly cap"
    with Sim("--seed", "16", "--prefix", "pay-=pay") as sim:
        ws = Workspace(sim, extra_guardrails="max_charges_per_hour = 5")
        ws.init_db()
        subs = [ws.add_subscription(f"pay-cap-{i}", ANCHOR) for i in range(12)]

        def charged():
            return sum(sim.requests(ws.uid(s, 0))["charges"] for s in subs)

        for delta, want, code in ((datetime.timedelta(), 5, 1),
                                  (datetime.timedelta(minutes=10), 5, 1),
                                  (datetime.timedelta(minutes=61), 10, 1),
                                  (datetime.timedelta(minutes=122), 12, 0)):
            r = ws.once(as_of=at(delta))
            got = charged()
            check(got == want, f"{name}: after the run at +{delta} PortOne got {got} charge "
                               f"requests (want {want})")
            check(r.returncode == code, f"{name}: run at +{delta}: {tail(r)} (want {code})")
            check(ws.scalar("SELECT count(*) FROM charges WHERE state = 'paid'") == want,
                  f"{name}: paid rows after the run at +{delta}")
        paid = check_ledger_agrees(ws, sim)
        check(len(paid) == 12, f"{name}: {len(paid)} of 12 paid")


# ---------------------------------------------------------------------------------------------
def as_of_refuses_a_live_database():
    name = "as-of on a live database"
    with Sim("--seed", "17", "--prefix", "pay-=pay") as sim:
        ws = Workspace(sim)
        r = ws.once()  # the real clock: the database is live from now on
        check(r.returncode == 0, f"{name}: live run: {tail(r)}")
        check(ws.scalar("SELECT live_since FROM install") is not None, f"{name}: live_since")
        ws.add_subscription("pay-live", ANCHOR)
        r = ws.once(as_of=at())
        check(r.returncode == 64, f"{name}: --as-of on a live database: {tail(r)}")
        check(ws.scalar("SELECT count(*) FROM charges") == 0, f"{name}: the refused run charged")
        check(not sim.ledger(), f"{name}: the refused run reached PortOne")
        r = ws.billingd("--once", "--i-know-this-is-a-test-db", as_of=at())
        check(r.returncode == 0, f"{name}: confirmed test database: {tail(r)}")
        check_ledger_agrees(ws, sim)


SCENARIOS = {
    "two_databases": two_databases_one_account,
    "cancel_while_queued": cancel_while_queued,
    "crash_record_at_answer": lambda: crash_with_request_at_pg("answer"),
    "crash_record_at_arrival": lambda: crash_with_request_at_pg("arrival"),
    "refused_failed_uid": refused_failed_uid,
    "hourly_cap": hourly_cap_across_restarts,
    "as_of_live": as_of_refuses_a_live_database,
}
# Scenario names on the command line run only those (for debugging); meson runs them all.
for scenario in sys.argv[1:] or SCENARIOS:
    print(f"--- {scenario}", flush=True)
    SCENARIOS[scenario]()

finish("engine guarantees")
