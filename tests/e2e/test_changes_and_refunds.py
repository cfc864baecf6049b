"""Subscriptions that change and money that comes back, end to end: billingctl and billingd
against portone-sim. A price change scheduled for period 3; a card change (rekey) after a
decline; consent; refunds (a lost answer reconciled and not sent twice, a refund larger than
what is left refused without a request); a refund made in the console found by the check."""
import datetime
import json
import urllib.request

from harness import Sim, Workspace, check, check_ledger_agrees, finish


def ctl(ws, *args):
    r = ws.billingctl(*[str(a) for a in args])
    return r


def ctl_json(ws, *args):
    r = ctl(ws, "--json", *args)
    if not check(r.returncode == 0, f"billingctl {args}: exit {r.returncode}: {r.stderr}"):
        return {}
    return json.loads(r.stdout)


def charge(ws, sub, period):
    with ws.db() as c:
        row = c.execute("SELECT * FROM charges WHERE subscription_id = ? AND period_index = ?",
                        (sub, period)).fetchone()
        return dict(row) if row else None


with Sim("--seed", "13", "--prefix", "pay-=pay", "--prefix", "decline-=decline:한도초과") as sim:
    # --- A price change scheduled for period 3 ---
    ws = Workspace(sim)
    ws.init_db()
    sub = ws.add_subscription("pay-price", "2024-01-01")
    r = ws.once(as_of="2024-01-01T01:00:00Z")
    check(r.returncode == 0, f"period 0: {r.stderr[-300:]}")
    out = ctl_json(ws, "--actor", "alice", "subscription", "update", sub, "--amount", 12900,
                   "--from-period", 3)
    check(out.get("from_period") == 3, f"update answers the period it starts: {out}")
    r = ctl(ws, "subscription", "update", sub, "--amount", 100, "--from-period", 0)
    check(r.returncode == 65 and "already has a charge" in r.stderr,
          f"a period with a charge is refused (65): {r.returncode} {r.stderr}")
    for at in ("2024-02-01T01:00:00Z", "2024-03-01T01:00:00Z", "2024-04-01T01:00:00Z"):
        r = ws.once(as_of=at)
        check(r.returncode == 0, f"{at}: {r.stderr[-300:]}")
    amounts = {p: (charge(ws, sub, p) or {}).get("amount") for p in range(4)}
    check(amounts == {0: 9900, 1: 9900, 2: 9900, 3: 12900},
          f"old price for periods 0-2, new from 3: {amounts}")
    ledger_amounts = sorted(p["amount"] for p in sim.ledger() if p["status"] == "paid")
    check(ledger_amounts == [9900, 9900, 9900, 12900], f"PortOne charged {ledger_amounts}")
    check(ws.scalar("SELECT actor FROM events WHERE kind = 'subscription.price_scheduled'") ==
          "alice", "the change names its actor")
    prices = ctl_json(ws, "subscription", "prices", sub)
    check([e["from_period"] for e in prices.get("price_schedule", [])] == [3],
          f"prices lists the schedule: {prices}")
    check_ledger_agrees(ws, sim)

    # billingctl records operators' changes at the wall clock's time (a consent or a rekey is due
    # "now"), so the runs below that follow them are dated after today.
    # --- A rekey after a decline charges the new card once, the old merchant_uid never again ---
    ws2 = Workspace(sim)
    ws2.init_db()
    sub2 = ws2.add_subscription("decline-old-card", "2030-01-01")
    r = ws2.once(as_of="2030-01-01T01:00:00Z")
    c0 = charge(ws2, sub2, 0)
    check(c0 and c0["state"] == "declined", f"declined with the old card: {c0}")
    old_uid = c0["merchant_uid"]
    r = ctl(ws2, "charge", "rekey", c0["id"], "--customer-uid", "pay-new-card")
    check(r.returncode == 0, f"rekey: exit {r.returncode}: {r.stderr}")
    c0 = charge(ws2, sub2, 0)
    check(c0["merchant_uid"] == old_uid + "k1" and c0["customer_uid"] == "pay-new-card",
          f"the period is charged under a new merchant_uid with the new card: {c0}")
    before_old = sim.requests(old_uid)["charges"]
    r = ws2.once(as_of="2030-01-01T02:00:00Z")
    r = ws2.once(as_of="2030-01-05T02:00:00Z")  # past the old card's dunning days
    paid = [p for p in sim.ledger() if p["status"] == "paid"]
    check([p["merchant_uid"] for p in paid if p["merchant_uid"].startswith(old_uid)] ==
          [old_uid + "k1"], f"one payment, under the new merchant_uid: {paid}")
    check(sim.requests(old_uid)["charges"] == before_old, "the old merchant_uid is never sent again")
    check(charge(ws2, sub2, 0)["state"] == "paid", "the period is paid")
    check(ws2.scalar("SELECT customer_uid FROM subscriptions WHERE id = ?", sub2) == "pay-new-card",
          "later periods use the new card")
    check(ws2.scalar("SELECT count(*) FROM attempts WHERE request_summary LIKE '%charge rekey%'") == 1,
          "billingctl's lookup is journaled")
    r = ctl(ws2, "charge", "rekey", c0["id"], "--customer-uid", "pay-third")
    check(r.returncode == 65, f"a paid charge is not rekeyed: {r.returncode} {r.stderr}")
    check_ledger_agrees(ws2, sim)

    # --- Consent for a price rise ---
    ws3 = Workspace(sim, extra_billing="require_consent = true\nconsent_timeout_days = 7")
    ws3.init_db()
    sub3 = ws3.add_subscription("pay-consent", "2030-01-01")
    ws3.once(as_of="2030-01-01T01:00:00Z")
    ctl(ws3, "subscription", "update", sub3, "--amount", 19900)
    r = ws3.once(as_of="2030-02-01T01:00:00Z")
    check(charge(ws3, sub3, 1) is None, "a rise waits for consent")
    check(ws3.scalar("SELECT count(*) FROM held_for_consent") == 1, "held_for_consent lists it")
    check(ws3.scalar("SELECT count(*) FROM events WHERE kind = 'subscription.consent_required'") == 1,
          "the merchant's application is told")
    r = ctl(ws3, "subscription", "consent", sub3)
    check(r.returncode == 0, f"consent: {r.returncode} {r.stderr}")
    r = ws3.once(as_of="2030-02-02T01:00:00Z")
    check((charge(ws3, sub3, 1) or {}).get("amount") == 19900, "charged at the new price after consent")

    # --- Refunds. The simulator stamps cancels with the wall clock, so these runs are dated now.
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)

    def at(minutes):
        return (now + datetime.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")

    today_kst = (now + datetime.timedelta(hours=9)).date().isoformat()
    ws4 = Workspace(sim, extra_refunds="lookup_delay_seconds = 1\nconsole_check_minutes = 60")
    ws4.init_db()
    crash_steps = ("after_write_ahead_commit", "after_request_written", "before_outcome_commit")
    crash_subs = [ws4.add_subscription(f"pay-refund-crash-{i}", today_kst, charge_time="00:00")
                  for i in range(len(crash_steps))]
    lost = ws4.add_subscription("pay-refund-lost", today_kst, charge_time="00:00")
    partial = ws4.add_subscription("pay-refund-partial", today_kst, charge_time="00:00")
    console = ws4.add_subscription("pay-refund-console", today_kst, charge_time="00:00")
    r = ws4.once(as_of=at(0))
    check(r.returncode == 0, f"charged: {r.stderr[-300:]}")
    c_lost, c_partial, c_console = (charge(ws4, s_, 0) for s_ in (lost, partial, console))
    check(all(c and c["state"] == "paid" for c in (c_lost, c_partial, c_console)), "all paid")

    # A refund whose answer is lost after PortOne applied it: read back, not sent twice.
    sim.set_faults(["cancel:reset_after:1:1"])
    r = ctl(ws4, "--actor", "bob", "charge", "refund", c_lost["id"], "--reason", "customer asked")
    check(r.returncode == 0 and "requested" in r.stdout, f"refund recorded: {r.returncode} {r.stdout} {r.stderr}")
    r = ws4.once(as_of=at(1))
    sim.set_faults([])
    row = ws4.scalar("SELECT state FROM refunds WHERE charge_id = ?", c_lost["id"])
    check(row == "refunded", f"the lost answer is reconciled to refunded: {row}")
    seen = sim._call("GET", "/__sim/requests?imp_uid=" + c_lost["imp_uid"])["imp_uids"][c_lost["imp_uid"]]
    check(seen["cancels"] == 1, f"the cancel was sent once: {seen}")
    check(seen["lookups"] >= 1, f"the payment was read before anything was sent again: {seen}")
    check(ws4.scalar("SELECT refunded_amount FROM charges WHERE id = ?", c_lost["id"]) == 9900,
          "the charge shows what was refunded")
    ledger = {p["merchant_uid"]: p for p in sim.ledger()}
    check(ledger[c_lost["merchant_uid"]]["cancel_amount"] == 9900 and
          len(ledger[c_lost["merchant_uid"]]["cancel_history"]) == 1,
          "PortOne refunded it exactly once")
    check(ws4.scalar("SELECT count(*) FROM events WHERE kind = 'charge.refunded' AND charge_id = ?",
                     c_lost["id"]) == 1, "one charge.refunded event")
    check(ws4.scalar("SELECT status FROM subscriptions WHERE id = ?", lost) == "active",
          "a fully refunded period leaves the subscription active")

    # billingd killed right after the refund's write-ahead commit (nothing sent), right after
    # its request was written, and right before its outcome commit (PortOne refunded, billingd
    # did not record it): after a restart the payment is read first; the first is sent once,
    # the others never again.
    for i, step in enumerate(crash_steps):
        c = charge(ws4, crash_subs[i], 0)
        r = ctl(ws4, "charge", "refund", c["id"], "--reason", "crash test")
        r = ws4.once(as_of=at(1), env={"BILLINGD_CRASH_AT": f"{step}:1"})
        check(r.returncode == -9, f"{step}: billingd was killed ({r.returncode})")
        check(ws4.scalar("SELECT state FROM refunds WHERE charge_id = ?", c["id"]) == "sending",
              f"{step}: the refund was written ahead")
        r = ws4.once(as_of=at(1))
        check(ws4.scalar("SELECT state FROM refunds WHERE charge_id = ?", c["id"]) == "refunded",
              f"{step}: refunded after the restart")
        seen = sim._call("GET", "/__sim/requests?imp_uid=" + c["imp_uid"])["imp_uids"][c["imp_uid"]]
        check(seen["cancels"] == 1, f"{step}: one cancel reached PortOne: {seen}")
        payment = {p["merchant_uid"]: p for p in sim.ledger()}[c["merchant_uid"]]
        check(payment["cancel_amount"] == 9900 and len(payment["cancel_history"]) == 1,
              f"{step}: refunded exactly once at PortOne")

    # Partial refunds; more than what is left is refused without a request. Both inferred modes
    # of PortOne: a refused cancel as HTTP 400, a partly cancelled payment reported `cancelled`.
    sim.set_modes(cancel_refusal_status=400, partial_cancel_status="cancelled")
    r = ctl(ws4, "charge", "refund", c_partial["id"], "--amount", 3000, "--reason", "late")
    ws4.once(as_of=at(2))
    check(ws4.scalar("SELECT refunded_amount FROM charges WHERE id = ?", c_partial["id"]) == 3000,
          "a partial refund of 3,000")
    r = ctl(ws4, "charge", "refund", c_partial["id"], "--amount", 7000, "--reason", "too much")
    check(r.returncode == 65 and "more than is left" in r.stderr,
          f"7,000 of the 6,900 left is refused (65): {r.returncode} {r.stderr}")
    seen = sim._call("GET", "/__sim/requests?imp_uid=" + c_partial["imp_uid"])["imp_uids"][c_partial["imp_uid"]]
    check(seen["cancels"] == 1, f"no request for the refused refund: {seen}")
    # A refund made in the console meanwhile makes billingd's checksum stale: PortOne refuses
    # (HTTP 400 in this mode) and billingd records the refusal, sending nothing more.
    sim._call("POST", "/__sim/console-cancel", {"imp_uid": c_partial["imp_uid"], "amount": 900})
    r = ctl(ws4, "charge", "refund", c_partial["id"], "--amount", 1000, "--reason", "stale")
    ws4.once(as_of=at(3))
    check(ws4.scalar("SELECT state FROM refunds WHERE charge_id = ? ORDER BY id DESC LIMIT 1",
                     c_partial["id"]) == "refused", "a refused cancel is recorded as refused")
    sim.set_modes(cancel_refusal_status=200, partial_cancel_status="paid")

    # A refund made in PortOne's console appears within one check interval (60 minutes here).
    sim._call("POST", "/__sim/console-cancel", {"imp_uid": c_console["imp_uid"]})
    ws4.once(as_of=at(30))
    check(ws4.scalar("SELECT refunded_amount FROM charges WHERE id = ?", c_console["id"]) == 0,
          "not before the next check")
    ws4.once(as_of=at(61))
    check(ws4.scalar("SELECT refunded_amount FROM charges WHERE id = ?", c_console["id"]) == 9900,
          "the console refund is recorded at the next check")
    check(ws4.scalar("SELECT count(*) FROM refunds WHERE charge_id = ? AND source = 'console'",
                     c_console["id"]) == 1, "as one refund of source console")
    check(ws4.scalar("SELECT refunded_amount FROM charges WHERE id = ?", c_partial["id"]) == 3900,
          "the partial console refund is found by reading the payment: 3,000 + 900")
    ws4.once(as_of=at(125))
    check(ws4.scalar("SELECT count(*) FROM refunds WHERE source = 'console'") == 2,
          "checked again: nothing recorded twice")
    check(ws4.scalar("SELECT sum(refunded) FROM revenue_per_day") == len(crash_steps) * 9900 + 9900 + 3900 + 9900,
          "revenue_per_day is net of every refund")

finish("changes and refunds")
