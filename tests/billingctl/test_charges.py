"""billingctl charges/attempts/events/due/parked/in-doubt and charge retry/resolve (offline)."""
import os
import time

from ctl_support import LOGIN_NAME, Ctl, expect_exit
from harness import check, finish


def read_commands(ctl):
    sid = ctl.add("--anchor", "2024-01-31", "--backdate")
    now = int(time.time())
    cid = ctl.add_charge(sid, 0, "unknown", next_action_at=now - 10)
    q = ctl.execute("INSERT INTO attempts (at, charge_id, kind, phase, merchant_uid, "
                    "attempt_number, amount, request_summary, request_written) VALUES "
                    "(?, ?, 'charge', 'request', ?, 1, 9900, 'POST /subscribe/payments/again', 1)",
                    now - 20, cid, f"t-s{sid}-p0")
    ctl.execute("INSERT INTO attempts (at, charge_id, request_id, kind, phase, http_status, "
                "message, outcome, latency_ms) VALUES (?, ?, ?, 'charge', 'answer', 0, "
                "'read timeout', 'unknown', 2000)", now - 18, cid, q)

    charges = ctl.json("charges", sid)
    if charges is not None:
        check(len(charges) == 1 and charges[0]["id"] == cid and charges[0]["state"] == "unknown"
              and charges[0]["merchant_uid"] == f"t-s{sid}-p0", f"charges --json: {charges}")
        check("park_reason" in charges[0] and "next_action_at" in charges[0], "stable keys")
    r = ctl.run("charges", sid)
    expect_exit(r, 0, "charges table")
    check("9,900 KRW" in r.stdout and "unknown" in r.stdout, f"charges table: {r.stdout}")
    expect_exit(ctl.run("charges", 777), 65, "charges of an unknown subscription")

    attempts = ctl.json("attempts", cid)
    if attempts is not None:
        check([a["phase"] for a in attempts] == ["request", "answer"], f"attempts: {attempts}")
        check(attempts[1]["request_id"] == attempts[0]["id"] and
              attempts[1]["outcome"] == "unknown", "answer points at its request")
    r = ctl.run("attempts", cid)
    expect_exit(r, 0, "attempts table")
    check("read timeout" in r.stdout and "1 request(s)" in r.stdout, f"attempts: {r.stdout}")
    expect_exit(ctl.run("attempts", 777), 65, "attempts of an unknown charge")

    events = ctl.json("events", sid)
    if events is not None:
        check(events and events[0]["kind"] == "subscription.created" and
              set(events[0]) == {"id", "at", "subscription_id", "charge_id", "kind",
                                 "from_state", "to_state", "detail", "actor"},
              f"events --json: {events}")
    expect_exit(ctl.run("events", sid), 0, "events table")
    expect_exit(ctl.run("events", 777), 65, "events of an unknown subscription")

    due_sub = ctl.add("--anchor", "2024-03-01", "--backdate", "--time-zone", "UTC",
                      "--charge-time", "00:00")
    due = ctl.json("due")
    if due is not None:
        check(any(s["id"] == due_sub for s in due["subscriptions"]), f"due subscription: {due}")
        check(any(c["id"] == cid for c in due["charges"]), "due charge (lookup time passed)")
    early = ctl.json("due", "--as-of", "2024-02-29T23:59:59Z")
    if early is not None:
        check(not any(s["id"] == due_sub for s in early["subscriptions"]) and
              not early["charges"], f"--as-of before the due time: {early}")
    exact = ctl.json("due", "--as-of", "2024-03-01T00:00:00Z")
    if exact is not None:
        check(any(s["id"] == due_sub for s in exact["subscriptions"]), "due at exactly t")
    r = ctl.run("due", "--as-of", "2024-03-01")
    expect_exit(r, 0, "due table")
    check("2024-03-01 00:00 UTC" in r.stdout, f"due table in local time: {r.stdout}")

    doubt = ctl.json("in-doubt")
    if doubt is not None:
        check([c["id"] for c in doubt] == [cid], f"in-doubt: {doubt}")
    expect_exit(ctl.run("in-doubt"), 0, "in-doubt table")

    parked_sub = ctl.add()
    pid = ctl.add_charge(parked_sub, 0, "parked", park_reason="ANOMALY: amount differs")
    ctl.execute("UPDATE subscriptions SET needs_attention = 'unknown time_zone' WHERE id = ?",
                due_sub)
    parked = ctl.json("parked")
    if parked is not None:
        check([c["id"] for c in parked["charges"]] == [pid], f"parked charges: {parked}")
        check([s["id"] for s in parked["subscriptions"]] == [due_sub], "needs_attention rows")
    r = ctl.run("parked")
    check("ANOMALY: amount differs" in r.stdout and "unknown time_zone" in r.stdout,
          f"parked table shows reasons: {r.stdout}")
    return sid, cid


def retry_only_from_parked(ctl, unknown_cid):
    sid = ctl.add()
    pid = ctl.add_charge(sid, 0, "parked", park_reason="PortOne refused the charge 5 times: x")
    ctl.execute("UPDATE charges SET refusal_count = 5 WHERE id = ?", pid)
    before = int(time.time())
    res = ctl.json("--actor", "bob", "charge", "retry", pid)
    c = ctl.charge(pid)
    check(c["state"] == "retry_wait" and c["next_action_at"] is not None and
          c["next_action_at"] >= before, f"retry: retry_wait due now: {c}")
    check(res is not None and res["charge"]["state"] == "retry_wait", "retry --json")
    check(c["refusal_count"] == 0, f"retry gives PortOne its refusals again: {c}")
    ev = ctl.events(charge_id=pid)[-1]
    check(ev["kind"] == "charge.retry" and ev["from_state"] == "parked" and
          ev["to_state"] == "retry_wait" and ev["actor"] == "bob", f"retry event: {ev}")
    expect_exit(ctl.run("charge", "retry", pid), 65, "retry a retry_wait charge", "parked")
    expect_exit(ctl.run("charge", "retry", unknown_cid), 65, "retry an unknown charge")
    expect_exit(ctl.run("charge", "retry", 9999), 65, "retry an unknown id")
    canceled = ctl.add()
    cpid = ctl.add_charge(canceled, 0, "parked")
    ctl.execute("UPDATE subscriptions SET status = 'canceled' WHERE id = ?", canceled)
    expect_exit(ctl.run("charge", "retry", cpid), 65, "retry for a canceled subscription",
                "give it up")


def resolve(ctl, unknown_cid):
    # --give-up: the period is settled as not paid and the schedule continues.
    sid = ctl.add("--anchor", "2024-01-31", "--backdate", "--time-zone", "Asia/Seoul")
    pid = ctl.add_charge(sid, 2, "parked", park_reason="still in doubt")
    r = ctl.run("charge", "resolve", pid, "--give-up", "--reason", "customer refunded offline")
    expect_exit(r, 0, "give up")
    c, s = ctl.charge(pid), ctl.subscription(sid)
    check(c["state"] == "canceled" and c["fail_reason"] == "customer refunded offline",
          f"given up: {c}")
    check(s["next_period"] == 3 and s["next_due_at"] == 1714438800,  # 2024-04-30 10:00 KST (clamped)
          f"schedule continues with period 3: {s}")
    check(any(e["kind"] == "charge.resolved" and e["actor"] == LOGIN_NAME
              for e in ctl.events(charge_id=pid)), "resolve event")
    expect_exit(ctl.run("charge", "resolve", pid, "--give-up", "--reason", "again"), 65,
                "give up a canceled charge")
    expect_exit(ctl.run("charge", "resolve", unknown_cid, "--give-up", "--reason", "x"), 65,
                "give up an unknown charge (only from parked)")

    # --paid from parked: paid with the imp_uid, trialing becomes active, next period due.
    tsid = ctl.add("--trial-days", "3")
    tpid = ctl.add_charge(tsid, 0, "parked")
    res = ctl.json("charge", "resolve", tpid, "--paid", "--imp-uid", "imp_000000000001")
    c, s = ctl.charge(tpid), ctl.subscription(tsid)
    check(c["state"] == "paid" and c["imp_uid"] == "imp_000000000001" and c["paid_at"],
          f"paid: {c}")
    check(s["status"] == "active" and s["next_period"] == 1 and s["next_due_at"],
          f"advanced after paid: {s}")
    check(res is not None and res["charge"]["state"] == "paid" and res["notes"], "--json")
    expect_exit(ctl.run("charge", "resolve", tpid, "--paid", "--imp-uid", "imp_x"), 65,
                "resolve a paid charge")

    # --paid from unknown goes through parked (the life cycle has no unknown -> paid).
    res = ctl.json("charge", "resolve", unknown_cid, "--paid", "--imp-uid", "imp_000000000002")
    c = ctl.charge(unknown_cid)
    check(c["state"] == "paid" and c["next_action_at"] is None and c["unknown_since"] is None,
          f"unknown resolved as paid: {c}")
    kinds = [(e["from_state"], e["to_state"]) for e in ctl.events(charge_id=unknown_cid)]
    check(kinds[-2:] == [("unknown", "parked"), ("parked", "paid")], f"events: {kinds}")

    ssid = ctl.add()
    scid = ctl.add_charge(ssid, 0, "scheduled", next_action_at=int(time.time()))
    expect_exit(ctl.run("charge", "resolve", scid, "--paid", "--imp-uid", "imp_3"), 65,
                "resolve a scheduled charge", "parked")
    check(ctl.charge(scid)["state"] == "scheduled", "refusal changes nothing")
    expect_exit(ctl.run("charge", "resolve", 9999, "--paid", "--imp-uid", "imp_3"), 65,
                "resolve an unknown id")


def info_shows_the_install_id(ctl):
    info = ctl.json("info")
    check(info is not None and info["install_id"] is None,
          f"--database alone leaves the install id to the configuration: {info}")

    def config(prefix):
        path = os.path.join(ctl.dir, f"{prefix}.toml")
        with open(path, "w") as f:
            f.write(f'database = "{ctl.db_path}"\n[billing]\nmerchant_uid_prefix = "{prefix}"\n')
        return path

    r = ctl.run("--config", config("shop_7"), "info", database=False)
    check(r.returncode == 0 and "shop_7" in r.stdout and "merchant_uid" in r.stdout,
          f"info names the install id from the configuration and the merchant_uid format: {r}")
    info = ctl.json("info")
    check(info is not None and info["install_id"] == "shop_7", f"info --json: {info}")
    # A configuration naming another prefix belongs to another database: refused.
    expect_exit(ctl.run("--config", config("other"), "info", database=False), 78,
                "a configuration naming another prefix", "shop_7")

ctl = Ctl()
first_sub, unknown_charge = read_commands(ctl)
info_shows_the_install_id(ctl)
retry_only_from_parked(ctl, unknown_charge)
resolve(ctl, unknown_charge)
finish("billingctl charges")
