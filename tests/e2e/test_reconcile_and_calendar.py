"""A hang after PortOne committed the payment is reconciled to paid with no second charge;
a duplicate merchant_uid answer is reconciled; a Jan 31 anchor bills Feb 29 and Mar 31."""
from harness import Sim, Workspace, check, check_ledger_agrees, finish

with Sim("--seed", "11", "--prefix", "pay-=pay", "--hang-seconds", "20") as sim:
    ws = Workspace(sim, charge_timeout_ms=1000)
    ws.init_db()
    sub = ws.add_subscription("pay-hang", "2024-01-31")
    sim.set_faults(["charge:hang_after:1.0:1"])
    r = ws.once(as_of="2024-01-31T01:00:00Z")
    check(r.returncode == 0, f"hang: --once exited {r.returncode}: {r.stderr[-500:]}")
    paid = check_ledger_agrees(ws, sim)
    check(ws.uid(sub, 0) in paid, "the hung charge is paid at PortOne")
    check(len(sim.ledger()) == 1, "exactly one payment was created")
    row = ws.charges()[0]
    check(row["state"] == "paid" and row["attempt_count"] == 1,
          f"reconciled to paid without a resend: {row['state']} attempts={row['attempt_count']}")
    check(ws.scalar("SELECT count(*) FROM attempts WHERE kind = 'lookup' AND phase = 'answer'") >= 1,
          "a lookup was journaled")

    # Month-end anchor: Feb 29 (leap year) and Mar 31, never Mar 29.
    sim.set_faults([])
    r = ws.once(as_of="2024-02-28T01:00:00Z")
    check(len(sim.ledger()) == 1, "nothing charged on Feb 28")
    r = ws.once(as_of="2024-02-29T01:00:00Z")
    check(r.returncode == 0, f"Feb 29 run exited {r.returncode}")
    r = ws.once(as_of="2024-03-29T01:00:00Z")
    check(len(sim.ledger()) == 2, "nothing charged on Mar 29 (no drift)")
    r = ws.once(as_of="2024-03-31T01:00:00Z")
    rows = {c["period_index"]: c for c in ws.charges()}
    check(rows.get(1, {}).get("period_start") == 1709168400, "period 1 starts 2024-02-29 10:00 KST")
    check(rows.get(2, {}).get("period_start") == 1711846800, "period 2 starts 2024-03-31 10:00 KST")
    check(all(c["state"] == "paid" for c in rows.values()), "all three periods paid")
    check_ledger_agrees(ws, sim)

    # PortOne answers "already paid" for a period that was paid (its answer lost, the row
    # reset by hand to scheduled): billingd reconciles instead of treating it as failure.
    ws2 = Workspace(sim)
    ws2.init_db()
    sub2 = ws2.add_subscription("pay-dup", "2024-01-31")
    r = ws2.once(as_of="2024-01-31T01:00:00Z")
    with ws2.db() as c:
        c.execute("DROP TRIGGER charges_paid_is_final")
        c.execute("UPDATE charges SET state = 'retry_wait', next_action_at = 0, imp_uid = NULL")
    r = ws2.once(as_of="2024-01-31T02:00:00Z")
    row = ws2.charges()[0]
    check(row["state"] == "paid", f"duplicate answer reconciled to paid, got {row['state']}")
    check(len([p for p in sim.ledger() if p["merchant_uid"] == ws2.uid(sub2, 0) and p["status"] == "paid"]) == 1,
          "still one payment for the period")

finish("reconcile and calendar")
