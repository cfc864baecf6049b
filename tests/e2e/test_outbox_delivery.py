"""Events for the merchant's application (the outbox), end to end:

- a bad or missing webhook signing secret is refused at start (exit 78), without echoing it;
- every merchant event reaches the webhook signed as Standard Webhooks do (checked with Python's
  own hmac, both secrets during a rotation) and the exec hook gets the same bytes, without
  billingd's credentials in its environment;
- a receiver that fails for a while, a SIGKILL with deliveries pending and on the wire, and
  events written while billingd is down: once the receiver is back every event arrives, each
  id answered 2xx exactly once, in order per subscription;
- a receiver that hangs does not delay charges (measured), and SIGTERM drains the deliveries
  on the wire within their timeout and exits 0;
- notices (charge.upcoming) are written once per period, days ahead, on the test clock;
- charge.paid, charge.declined (through dunning), dunning_exhausted and the status changes
  carry the engine's data and reach both channels in order per subscription.
"""
import datetime
import json
import os
import time
import zoneinfo

from harness import Sim, Workspace, check, finish
from outbox_support import (PREVIOUS, SECRET, Daemon, Receiver, add_events_section,
                            events_config, merchant_events, poll, verify, write_exec_hook)


def seoul_today():
    return datetime.datetime.now(zoneinfo.ZoneInfo("Asia/Seoul")).date()


def add(ws, customer, anchor, *extra):
    r = ws.billingctl("subscription", "add", "--customer-uid", customer, "--amount", "9900",
                      "--name", "Plan", "--every", "month", "--anchor", anchor, *extra)
    check(r.returncode == 0, f"billingctl subscription add {customer}: {r.stderr}")


def ctl(ws, *args):
    r = ws.billingctl(*args)
    check(r.returncode == 0, f"billingctl {' '.join(args)}: {r.returncode} {r.stderr}")
    return r


def test_bad_secret_refused(sim):
    rx = Receiver("ok")
    ws = Workspace(sim)
    add_events_section(ws, events_config(rx.url))
    for bad in ["whsec_not base64!", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwxyz", "whsec_c2hvcnQ=", ""]:
        for args in (["--check-config"], ["--once"]):
            r = ws.billingd(*args, env={"BILLINGD_WEBHOOK_SECRET": bad})
            check(r.returncode == 78, f"secret {bad!r} {args}: exit {r.returncode} {r.stderr}")
            if len(bad) > 6:
                check(bad not in r.stderr + r.stdout, f"the secret is not echoed: {r.stderr}")
    r = ws.billingd("--check-config", env={"BILLINGD_WEBHOOK_SECRET": SECRET,
                                            "BILLINGD_WEBHOOK_SECRET_PREVIOUS": "whsec_bad"})
    check(r.returncode == 78, f"bad previous secret: exit {r.returncode}")
    r = ws.billingd("--check-config")
    check(r.returncode == 78 and "webhook_secret" in r.stderr,
          f"missing secret names the credential: {r.returncode} {r.stderr}")
    r = ws.billingd("--check-config", env={"BILLINGD_WEBHOOK_SECRET": SECRET})
    check(r.returncode == 0, f"a good secret is accepted: {r.stderr}")
    ws2 = Workspace(sim)
    add_events_section(ws2, events_config("http://example.com/hook"))
    r = ws2.billingd("--check-config", env={"BILLINGD_WEBHOOK_SECRET": SECRET})
    check(r.returncode == 78 and "https" in r.stderr, f"http:// off loopback: {r.stderr}")
    rx.stop()


def test_signed_webhook_and_exec_hook(sim):
    rx = Receiver("ok")
    ws = Workspace(sim)
    hook, out = write_exec_hook(ws.dir)
    add_events_section(ws, events_config(rx.url, hook))
    ws.env["BILLINGD_WEBHOOK_SECRET"] = SECRET
    ws.env["BILLINGD_WEBHOOK_SECRET_PREVIOUS"] = PREVIOUS
    r = ws.once()  # creates the database and opens both channels
    check(r.returncode == 0, f"first --once: {r.stderr}")
    today = seoul_today().isoformat()
    add(ws, "cust_a", today, "--backdate", "--charge-time", "00:00")
    add(ws, "cust_b", (seoul_today() + datetime.timedelta(days=20)).isoformat())
    r = ws.once()
    check(r.returncode == 0, f"--once charges and delivers: {r.stderr}")
    ctl(ws, "subscription", "pause", "2")
    ctl(ws, "subscription", "resume", "2")
    ctl(ws, "subscription", "cancel", "2", "--at-period-end")
    r = ws.once()
    check(r.returncode == 0, f"--once delivers the operator's events: {r.stderr}")

    install = ws.install_id()
    expected = [f"evt_{install}_{i}" for i, _ in merchant_events(ws)]
    got = rx.delivered()
    # Concurrent attempts (max_in_flight) may overtake each other across subscriptions only.
    check(sorted(g[0] for g in got) == sorted(expected),
          f"webhook got {[g[0] for g in got]}, want {expected}")
    delivered_once_in_order(ws, rx)
    types = [g[1]["type"] for g in got]
    for t in ("subscription.created", "subscription.paused", "subscription.resumed",
              "subscription.cancel_at_period_end"):
        check(t in types, f"{t} delivered ({types})")
    for msg_id, envelope, headers, body in got:
        check(envelope["id"] == msg_id and envelope["version"] == 1, f"envelope {envelope}")
        check(verify(SECRET, headers, body), f"signature verifies with the current secret")
        check(verify(PREVIOUS, headers, body), f"signature verifies with the previous secret")
        check(len(headers["webhook-signature"].split(" ")) == 2, "two signatures during rotation")
        check(not verify("whsec_" + "QUFB" * 8, headers, body), "a wrong secret does not verify")
    # Deliveries of different subscriptions may overtake each other: find cust_a's.
    created = [g[1] for g in got if g[1]["type"] == "subscription.created"]
    check(any(c["data"].get("customer_uid") == "cust_a" and c["data"]["amount"] == 9900
              for c in created), f"subscription.created carries the subscription: {created}")

    with open(out, "rb") as f:
        lines = [line for line in f.read().split(b"\n") if line]
    check(sorted(lines) == sorted(g[3] for g in got),
          f"the exec hook got the same payloads ({len(lines)} vs {len(got)})")
    with open(os.path.join(ws.dir, "hook.env")) as f:
        env = f.read()
    check("BILLINGD_PORTONE_IMP_SECRET" not in env and "sim_secret" not in env and
          "WEBHOOK_SECRET" not in env, "the hook sees none of billingd's credentials")
    check("BILLINGD_EVENT_ID=evt_" in env, "the hook gets the event id in its environment")
    check(ws.scalar("SELECT count(*) FROM outbox_deliveries") == 0, "nothing left pending")
    r = ctl(ws, "--json", "events", "pending")
    check(json.loads(r.stdout)["deliveries"] == [], "billingctl events pending: none")

    # An operator sends one event again: the same id and bytes, on both channels.
    first_id, first_sub = merchant_events(ws)[0]
    r = ctl(ws, "events", "redeliver", str(first_id))
    check("2 deliveries are pending again" in r.stdout, f"redeliver on both channels: {r.stdout}")
    before = len(rx.delivered())
    r = ws.once()
    again = rx.delivered()[before:]
    original = next(g[3] for g in got if g[0] == f"evt_{install}_{first_id}")
    check([g[0] for g in again] == [f"evt_{install}_{first_id}"] and again[0][3] == original,
          f"redelivered with the same id and body: {[g[0] for g in again]}")
    for args, code in ((["events", "redeliver", "999999"], 65),
                       (["events", "redeliver"], 64),
                       (["events", "redeliver", "1", "--all-dead"], 64)):
        r = ws.billingctl(*args)
        check(r.returncode == code, f"billingctl {' '.join(args)}: exit {r.returncode}, want {code}")
    merchant = {i for i, _ in merchant_events(ws)}
    with ws.db() as c:
        internal = [i for (i,) in c.execute("SELECT id FROM events") if i not in merchant]
    check(bool(internal), "the run wrote internal events too (scheduling)")
    if internal:
        r = ws.billingctl("events", "redeliver", str(internal[0]))
        check(r.returncode == 65 and "not delivered" in r.stderr, f"internal event: {r.stderr}")
    r = ctl(ws, "events", "redeliver", "--all-dead")
    check(r.stdout.startswith("0 "), f"no dead deliveries: {r.stdout}")
    r = ctl(ws, "events", "1")
    check("subscription.created" in r.stdout, "billingctl events SUBSCRIPTION_ID still works")
    rx.stop()


def delivered_once_in_order(ws, rx):
    install = ws.install_id()
    expected = {f"evt_{install}_{i}": (i, s) for i, s in merchant_events(ws)}
    got = rx.delivered()
    ids = [g[0] for g in got]
    check(set(ids) == set(expected), f"every event delivered: missing "
          f"{sorted(set(expected) - set(ids))}, unexpected {sorted(set(ids) - set(expected))}")
    dupes = {i for i in ids if ids.count(i) > 1}
    check(not dupes, f"each event id answered 2xx exactly once: {dupes}")
    last = {}
    for msg_id in ids:
        if msg_id not in expected:
            continue
        event_id, sub = expected[msg_id]
        check(event_id > last.get(sub, 0), f"in order for subscription {sub}: {msg_id}")
        last[sub] = event_id
    return len(expected)


def test_receiver_down_then_back_and_sigkill(sim):
    rx = Receiver("fail")
    ws = Workspace(sim)
    add_events_section(ws, events_config(rx.url, retry_base_seconds=1, retry_max_seconds=2,
                                         webhook_timeout_ms=3000, max_in_flight=2))
    ws.env["BILLINGD_WEBHOOK_SECRET"] = SECRET
    ws.init_db()
    later = (seoul_today() + datetime.timedelta(days=40)).isoformat()
    d = Daemon(ws)
    check(not poll(lambda: not d.running(), 1), f"daemon up: {d.log()[-500:]}")
    for n in range(3):
        add(ws, f"cust_{n}", later)
    ctl(ws, "subscription", "pause", "1")
    ctl(ws, "subscription", "resume", "1")
    ctl(ws, "subscription", "pause", "2")
    check(poll(lambda: len(rx.requests) >= 6, 30), "attempts while the receiver fails")
    with ws.db() as c:
        rows = c.execute("SELECT status, last_error FROM event_deliveries").fetchall()
    check(any(r["status"] == "failing" and r["last_error"].startswith("HTTP 503") for r in rows),
          f"event_deliveries shows failing rows with their error: {[tuple(r) for r in rows]}")
    check(any(r["status"] == "waiting" for r in rows), "later events of a subscription wait")
    r = ctl(ws, "events", "pending")
    check("HTTP 503" in r.stdout, f"billingctl events pending shows the error: {r.stdout}")
    r = ctl(ws, "metrics")
    pending = [line for line in r.stdout.splitlines()
               if line.startswith('billingd_event_deliveries{channel="webhook",status="pending"}')]
    check(pending and float(pending[0].split()[-1]) > 0,
          f"billingctl metrics counts the pending deliveries: {pending}")

    # An attempt on the wire when billingd is killed.
    rx.mode = "hang"
    ctl(ws, "subscription", "cancel", "3")
    check(poll(lambda: rx.open_requests > 0, 20), "an attempt is on the wire")
    d.kill()
    ctl(ws, "subscription", "resume", "2")  # written while billingd is down
    rx.mode = "ok"
    d = Daemon(ws)
    want = len(merchant_events(ws))
    check(poll(lambda: len({g[0] for g in rx.delivered()}) >= want, 60),
          f"all {want} events delivered after the restart: {len(rx.delivered())}")
    time.sleep(1.5)  # a duplicate would arrive now
    delivered_once_in_order(ws, rx)
    check(ws.scalar("SELECT count(*) FROM outbox_deliveries") == 0, "no delivery rows left")
    check(d.terminate() == 0, "SIGTERM exits 0")
    rx.stop()


def test_hung_receiver_does_not_delay_charges(sim):
    rx = Receiver("hang", hang_seconds=60)
    ws = Workspace(sim)
    add_events_section(ws, events_config(rx.url, webhook_timeout_ms=4000, max_in_flight=2))
    ws.env["BILLINGD_WEBHOOK_SECRET"] = SECRET
    ws.init_db()
    d = Daemon(ws)
    check(not poll(lambda: not d.running(), 1), f"daemon up: {d.log()[-500:]}")
    later = (seoul_today() + datetime.timedelta(days=40)).isoformat()
    for n in range(3):
        add(ws, f"cust_h{n}", later)
    check(poll(lambda: rx.open_requests >= 2, 20), "deliveries hang at the receiver")
    today = seoul_today().isoformat()
    start = time.monotonic()
    with ws.db() as c:
        c.executemany(
            "INSERT INTO subscriptions (customer_uid, amount, order_name, interval_unit, "
            "anchor_date, charge_time, time_zone) VALUES (?, 9900, 'Plan', 'month', ?, '00:00', "
            "'Asia/Seoul')", [(f"cust_c{n:03d}", today) for n in range(30)])
    paid = lambda: ws.scalar("SELECT count(*) FROM charges WHERE state = 'paid'")
    check(poll(lambda: paid() == 30, 30), f"30 charges paid: {paid()}")
    elapsed = time.monotonic() - start
    hanging = rx.open_requests
    print(f"30 charges paid in {elapsed:.2f} s while {hanging} deliveries hung", flush=True)
    check(elapsed < 10, f"charging was not held up by the receiver ({elapsed:.2f} s)")
    check(hanging > 0, "the receiver was still hanging when the charges were paid")
    check("circuit breaker" not in d.log().lower(), "the PortOne circuit breaker did not open")
    start = time.monotonic()
    code = d.terminate()
    stop_took = time.monotonic() - start
    check(code == 0, f"SIGTERM with deliveries on the wire exits 0 ({code})")
    check(stop_took < 15, f"SIGTERM drained within the delivery timeout ({stop_took:.1f} s)")
    with ws.db() as c:
        errors = [r[0] for r in c.execute(
            "SELECT last_error FROM event_deliveries WHERE status = 'failing'")]
    check(any("timed out" in (e or "") for e in errors),
          f"the cut-off attempts are recorded as failed: {errors}")
    rx.stop()


def test_notices_once_per_period(sim):
    ws = Workspace(sim)
    hook, out = write_exec_hook(ws.dir)
    add_events_section(ws, events_config(None, hook))
    ws.init_db()  # as of 2000-01-01
    ws.add_subscription("cust_n1", "2030-03-10")  # monthly, 10:00 KST = 01:00 UTC
    ws.add_subscription("cust_n2", "2030-03-10", unit="year")
    for as_of in ["2030-03-01T00:00:00Z", "2030-03-03T02:00:00Z", "2030-03-03T03:00:00Z",
                  "2030-03-07T02:00:00Z", "2030-03-08T02:00:00Z"]:
        r = ws.once(as_of=as_of)
        check(r.returncode == 0, f"--once --as-of {as_of}: {r.stderr}")
    with open(out) as f:
        got = [json.loads(line) for line in f if line.strip()]
    upcoming = [(e["subscription_id"], e["data"]["period_index"]) for e in got
                if e["type"] == "charge.upcoming"]
    check(sorted(upcoming) == [(1, 0), (2, 0)], f"one notice per subscription and period: {got}")
    when = {e["subscription_id"]: e["created_at"] for e in got if e["type"] == "charge.upcoming"}
    check(when.get(2, 0) < when.get(1, 0), f"the yearly plan is told first (7 vs 3 days): {when}")


def test_charge_events(sim):
    """charge.paid, charge.declined through dunning, dunning_exhausted and the status changes
    reach both channels with the engine's data, in order per subscription (test clock)."""
    sim.add_customers(prefixes={"dec_": "decline:잔액부족"})
    rx = Receiver("ok")
    ws = Workspace(sim)
    hook, out = write_exec_hook(ws.dir)
    add_events_section(ws, events_config(rx.url, hook))
    ws.env["BILLINGD_WEBHOOK_SECRET"] = SECRET
    ws.init_db()
    paying = ws.add_subscription("cust_e1", "2030-03-10")
    declining = ws.add_subscription("dec_e2", "2030-03-10")
    trial = ws.add_subscription("cust_e3", "2030-03-01", status="trialing")
    with ws.db() as c:  # the trial ends 2030-03-11 10:00 KST: period 0 is charged then
        c.execute("UPDATE subscriptions SET trial_end_at = 1899421200 WHERE id = ?", (trial,))
    for as_of in ["2030-03-10T01:00:00Z", "2030-03-11T02:00:00Z", "2030-03-13T02:00:00Z",
                  "2030-03-15T02:00:00Z", "2030-03-17T02:00:00Z"]:
        r = ws.once(as_of=as_of)
        check(r.returncode in (0, 1), f"--once --as-of {as_of}: {r.returncode} {r.stderr[-300:]}")
    with open(out) as f:
        got = [json.loads(line) for line in f if line.strip()]
    by_sub = {}
    for e in got:
        by_sub.setdefault(e["subscription_id"], []).append(e)
    for sub, events in by_sub.items():
        ids = [int(e["id"].rsplit("_", 1)[1]) for e in events]
        check(ids == sorted(ids), f"exec hook: subscription {sub} in order: {ids}")

    paid = [e for e in by_sub.get(paying, []) if e["type"] == "charge.paid"]
    check(len(paid) == 1, f"one charge.paid: {by_sub.get(paying)}")
    if paid:
        d = paid[0]["data"]
        check(d.get("amount") == 9900 and d.get("currency") == "KRW" and d.get("imp_uid") and
              d.get("period_index") == 0 and d.get("period_end", 0) > d.get("period_start", 0)
              and d.get("paid_at") and paid[0]["charge_id"], f"charge.paid data: {paid[0]}")

    types = [e["type"] for e in by_sub.get(declining, [])]
    declined = [e for e in by_sub.get(declining, []) if e["type"] == "charge.declined"]
    check(len(declined) == 5, f"five declines (first + dunning days 1, 3, 5, 7): {types}")
    if declined:
        check(all(e["data"].get("reason") == "잔액부족" for e in declined),
              f"the PG's reason: {[e['data'] for e in declined]}")
        check(all(e["data"].get("next_retry_at") for e in declined[:-1]) and
              declined[-1]["data"].get("next_retry_at") is None,
              f"next_retry_at until dunning is exhausted: {[e['data'] for e in declined]}")
        check([e["data"].get("attempt") for e in declined] == [1, 2, 3, 4, 5],
              f"attempt numbers: {[e['data'].get('attempt') for e in declined]}")
    for t in ("subscription.past_due", "charge.dunning_exhausted", "subscription.unpaid"):
        check(t in types, f"{t} delivered for the declining subscription: {types}")
    if "subscription.unpaid" in types and "charge.dunning_exhausted" in types:
        check(types.index("subscription.past_due") < types.index("subscription.unpaid"),
              f"past_due before unpaid: {types}")

    trial_types = [e["type"] for e in by_sub.get(trial, [])]
    check("subscription.trial_will_end" in trial_types and "charge.paid" in trial_types and
          "subscription.activated" in trial_types,
          f"a trial is told, charged and activated: {trial_types}")

    hooks = sorted(e["id"] for e in got)
    hooked = sorted(g[0] for g in rx.delivered())
    check(hooks == hooked, f"webhook and exec hook got the same events ({len(hooked)}, {len(hooks)})")
    rx.stop()


def main():
    with Sim("--prefix", "cust_=pay") as sim:
        for test in (test_bad_secret_refused, test_signed_webhook_and_exec_hook,
                     test_receiver_down_then_back_and_sigkill,
                     test_hung_receiver_does_not_delay_charges, test_notices_once_per_period,
                     test_charge_events):
            print(f"-- {test.__name__}", flush=True)
            started = time.monotonic()
            test(sim)
            print(f"   {time.monotonic() - started:.1f} s", flush=True)
    finish("e2e_outbox_delivery")


if __name__ == "__main__":
    main()
