"""A few hundred subscriptions with mixed customers under a fault mix, stepped with --as-of
through the dunning days: every period paid at most once, every paying subscription paid,
declines retried on the dunning days, and the database agrees with PortOne's ledger."""
from harness import Sim, Workspace, check, check_ledger_agrees, finish

PREFIXES = ["--prefix", "pay-=pay", "--prefix", "decline-=decline:잔액부족",
            "--prefix", "unknown-=unregistered", "--prefix", "flaky-=decline_first:2"]
FAULTS = ["charge:http503_after:0.04", "charge:http503_before:0.04", "charge:http429:0.03",
          "charge:reset_after:0.03", "charge:hang_after:0.02", "charge:non_json:0.02",
          "charge:pg_failure:0.02", "charge:latency_ms=0-20:1.0", "findAll:latency_ms=0-5:1.0"]

with Sim("--seed", "7", "--hang-seconds", "30", *PREFIXES, *[a for f in FAULTS for a in ("--fault", f)]) as sim:
    ws = Workspace(sim, charge_timeout_ms=1500, max_in_flight=24)
    ws.init_db()
    kinds = {"pay": 200, "decline": 40, "unknown": 20, "flaky": 40}
    subs = {}
    for kind, n in kinds.items():
        for i in range(n):
            subs[ws.add_subscription(f"{kind}-{i:04d}", "2025-03-01")] = kind

    # Day 0 (10:00 KST = 01:00Z) and the dunning days; repeat a pass on each day so that
    # transient retries and lookups the fault mix left open settle.
    days = ["2025-03-01", "2025-03-02", "2025-03-04", "2025-03-06", "2025-03-08"]
    ledger_sizes = []
    for day in days:
        for hour in ("01:00:00", "03:00:00", "06:00:00"):
            r = ws.once(as_of=f"{day}T{hour}Z")
            check(r.returncode in (0, 1), f"--once on {day} exited {r.returncode}: {r.stderr[-500:]}")
        ledger_sizes.append(len(sim.ledger()))
        check_ledger_agrees(ws, sim)

    # Charges a fault left open after the last dunning day's passes (an unanswered request, a
    # refusal not yet retried) are settled by the final pass below, the day after.
    with ws.db() as c:
        open_after_dunning = {r[0] for r in c.execute(
            "SELECT subscription_id FROM charges WHERE period_index = 0 "
            "AND state NOT IN ('paid', 'canceled', 'parked', 'skipped')")}
    sim.set_faults([])
    r = ws.once(as_of="2025-03-09T01:00:00Z")
    paid = check_ledger_agrees(ws, sim)
    rows = {(c["subscription_id"], c["period_index"]): c for c in ws.charges()}
    for sub, kind in subs.items():
        row = rows.get((sub, 0))
        if not check(row is not None, f"subscription {sub} ({kind}) has no charge"):
            continue
        if kind in ("pay", "flaky"):
            check(row["state"] == "paid", f"{kind} subscription {sub} is {row['state']}, not paid")
            check(row["merchant_uid"] in paid, f"{row['merchant_uid']} not paid at PortOne")
        elif kind == "decline":
            check(row["state"] == "canceled", f"declining subscription {sub} is {row['state']}")
            check(row["decline_count"] == 5, f"subscription {sub} declined {row['decline_count']} times")
        else:
            check(row["state"] == "parked", f"unregistered subscription {sub} is {row['state']}")

    # Declines were retried on the dunning days, never in between.
    with ws.db() as c:
        for sub, kind in subs.items():
            if kind != "decline":
                continue
            days_sent = [r[0] for r in c.execute(
                "SELECT DISTINCT date(at, 'unixepoch') FROM attempts WHERE kind = 'charge' "
                "AND phase = 'request' AND charge_id = (SELECT id FROM charges WHERE "
                "subscription_id = ? AND period_index = 0)", (sub,))]
            expected = days + (["2025-03-09"] if sub in open_after_dunning else [])
            check(days_sent == expected, f"declining subscription {sub} was tried on {days_sent}")
        statuses = dict(c.execute("SELECT status, count(*) FROM subscriptions GROUP BY status").fetchall())
    check(statuses.get("unpaid") == kinds["decline"], f"statuses {statuses}")
    check(statuses.get("past_due") == kinds["unknown"], f"statuses {statuses}")
    check(r.returncode == 1, "--once reports attention needed while charges are parked")
    with ws.db() as c:
        outcomes = dict(c.execute("SELECT outcome, count(*) FROM attempts WHERE phase = 'answer' "
                                  "GROUP BY outcome").fetchall())
    print("answers by outcome:", outcomes)
    # The fault mix really was exercised: lost answers were reconciled, refusals retried.
    check(outcomes.get("unknown", 0) >= 10, "unknown outcomes occurred")
    check(outcomes.get("transient", 0) >= 5, "transient outcomes occurred")
    check(outcomes.get("paid", 0) >= 240, "paid answers")

    # Next month: every active subscription is charged for period 1 exactly once.
    r = ws.once(as_of="2025-04-01T01:00:00Z")
    r = ws.once(as_of="2025-04-01T02:00:00Z")
    paid = check_ledger_agrees(ws, sim)
    for sub, kind in subs.items():
        if kind in ("pay", "flaky"):
            check(ws.uid(sub, 1) in paid, f"subscription {sub} not charged for April")

finish("mixed fleet")
