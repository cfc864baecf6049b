"""billingctl subscription add/list/show/pause/resume/cancel against a scratch database."""
import datetime
import sqlite3
import threading
import time
import zoneinfo

from ctl_support import LOGIN_NAME, Ctl, expect_exit
from harness import check, finish


def invalid_values_exit_65_and_change_nothing(ctl):
    base = ["subscription", "add", "--customer-uid", "cust_1", "--name", "Plan"]
    cases = {
        "unknown zone": ["--amount", "100", "--time-zone", "Mars/Olympus"],
        "bad date": ["--amount", "100", "--anchor", "2024-02-30"],
        "not a date": ["--amount", "100", "--anchor", "31/01/2024"],
        "amount 0": ["--amount", "0"],
        "negative amount": ["--amount=-5"],
        "bad charge time": ["--amount", "100", "--charge-time", "25:00"],
        "bad unit": ["--amount", "100", "--every", "fortnight"],
        "count 0": ["--amount", "100", "--count", "0"],
        "lowercase currency": ["--amount", "100", "--currency", "krw"],
        "a currency other than KRW (amounts are not converted)": ["--amount", "100", "--currency", "USD"],
        "trial 0 days": ["--amount", "100", "--trial-days", "0"],
        "max periods 0": ["--amount", "100", "--max-periods", "0"],
    }
    for what, extra in cases.items():
        expect_exit(ctl.run(*base, *extra), 65, what)
    r = ctl.run("subscription", "add", "--customer-uid", "c", "--amount", "1", "--name", "x" * 41)
    expect_exit(r, 65, "name of 41 characters", "--name")
    r = ctl.run("subscription", "add", "--customer-uid", "c" * 81, "--amount", "1", "--name", "x")
    expect_exit(r, 65, "customer_uid of 81 characters", "--customer-uid")
    expect_exit(ctl.run("subscription", "add", "--customer-uid", "c", "--amount", "1", "--name",
                        "x", "--time-zone", "Nowhere/Land"), 65, "zone message", "Nowhere/Land")


def add_schedules_period_zero(ctl):
    sid = ctl.add("--anchor", "2024-01-31", "--backdate", "--charge-time", "10:00",
                  "--time-zone", "Asia/Seoul", "--buyer-name", "Kim", "--buyer-email",
                  "kim@example.com")
    s = ctl.subscription(sid)
    check(s["status"] == "active", f"new subscription is active: {s['status']}")
    check(s["next_period"] == 0, "scheduled for period 0")
    check(s["next_due_at"] == 1706662800,  # 2024-01-31 10:00 KST
          f"next_due_at is 10:00 Seoul on the anchor: {s['next_due_at']}")
    check(s["buyer_email"] == "kim@example.com", "buyer e-mail stored")
    ev = ctl.events(sid)
    check(len(ev) == 1 and ev[0]["kind"] == "subscription.created" and
          ev[0]["actor"] == LOGIN_NAME, f"creation event by the login name: {ev}")
    # A Korean order name of exactly 40 characters is valid (characters, not bytes).
    sid2 = ctl.add("--every", "week", "--count", "2", "--currency", "KRW", "--max-periods", "3",
                   name="가" * 40, amount=1250)
    s2 = ctl.json("subscription", "show", sid2)
    if s2:
        sub = s2["subscription"]
        check(sub["order_name"] == "가" * 40 and sub["interval_unit"] == "week" and
              sub["interval_count"] == 2 and sub["max_periods"] == 3 and sub["currency"] == "KRW",
              f"show --json returns the row: {sub}")
        zone = zoneinfo.ZoneInfo("Asia/Seoul")
        today = datetime.datetime.now(zone).date().isoformat()
        check(sub["anchor_date"] == today, f"default anchor is today in the zone: {sub}")
    # --json add returns the whole row; --actor is recorded.
    r = ctl.run("--json", "--actor", "alice", "subscription", "add", "--customer-uid", "c9",
                "--amount", "5000", "--name", "Trial", "--trial-days", "14", "--time-zone",
                "America/New_York", "--charge-time", "09:30")
    if expect_exit(r, 0, "add --json --trial-days"):
        import json
        row = json.loads(r.stdout)
        check(row["status"] == "trialing", f"trial subscription is trialing: {row}")
        check(row["trial_end_at"] == row["next_due_at"] and row["next_due_at"] > time.time(),
              "trial ends when period 0 is due, in the future")
        zone = zoneinfo.ZoneInfo("America/New_York")
        expect = (datetime.datetime.now(zone).date() + datetime.timedelta(days=14)).isoformat()
        check(row["anchor_date"] == expect, f"trial anchor is today + 14: {row['anchor_date']}")
        due = datetime.datetime.fromtimestamp(row["next_due_at"], zone)
        check((due.hour, due.minute) == (9, 30), f"due at 09:30 New York time: {due}")
        check(ctl.events(row["id"])[0]["actor"] == "alice", "--actor is recorded")
    return sid


def list_and_show(ctl, sid):
    r = ctl.run("subscription", "list")
    expect_exit(r, 0, "subscription list")
    lines = r.stdout.splitlines()
    check(lines and lines[0].split()[:2] == ["ID", "STATUS"], f"table header: {lines[:1]}")
    check(any("9,900 KRW" in l and "2024-01-31 10:00 KST" in l for l in lines),
          f"amount with currency and local due time: {r.stdout}")
    rows = ctl.json("subscription", "list", "--status", "trialing")
    if rows is not None:
        check(len(rows) == 1 and rows[0]["status"] == "trialing", f"--status filters: {rows}")
    expect_exit(ctl.run("subscription", "list", "--status", "sleeping"), 65, "unknown status")
    shown = ctl.json("subscription", "show", sid)
    if shown:
        check(set(shown) == {"subscription", "charges", "recent_events"}, f"keys: {set(shown)}")
        check(shown["subscription"]["id"] == sid and shown["charges"] == [] and
              shown["recent_events"][0]["kind"] == "subscription.created", "show content")
    r = ctl.run("subscription", "show", sid)
    expect_exit(r, 0, "show table")
    check("charges:" in r.stdout and "recent events:" in r.stdout, "show has sections")
    expect_exit(ctl.run("subscription", "show", 9999), 65, "unknown id", "9999")


def pause_and_resume_skip_the_paused_periods(ctl):
    sid = ctl.add("--anchor", "2020-01-01", "--backdate", "--every", "day", "--charge-time",
                  "00:00", "--time-zone", "UTC")
    cid = ctl.add_charge(sid, 3, "scheduled", next_action_at=int(time.time()))
    r = ctl.run("subscription", "pause", sid)
    expect_exit(r, 0, "pause")
    check(ctl.subscription(sid)["status"] == "paused", "status paused")
    c = ctl.charge(cid)
    check(c["state"] == "canceled" and c["next_action_at"] is None,
          f"pause cancels the scheduled charge: {c}")
    check(any(e["kind"] == "charge.canceled" and e["actor"] == LOGIN_NAME
              for e in ctl.events(charge_id=cid)), "charge cancel event")
    expect_exit(ctl.run("subscription", "pause", sid), 65, "pause twice", "paused")
    before = int(time.time())
    res = ctl.json("subscription", "resume", sid)
    after = int(time.time())
    s = ctl.subscription(sid)
    check(s["status"] == "active", f"resumed to active: {s['status']}")
    anchor = int(datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
    due = s["next_due_at"]
    check(due is not None and due >= before and due - 86400 < after,
          f"next period is the first starting at or after now: {due}")
    check(s["next_period"] == (due - anchor) // 86400, "next_period matches next_due_at")
    detail = ctl.events(sid)[-1]["detail"]
    # Period 3's charge was canceled by the pause (its own event); the schedule had moved on
    # to period 4 when that charge was created.
    check(f"periods 4-{s['next_period'] - 1} passed while paused" in detail,
          f"resume event names the skipped periods: {detail}")
    check(res is not None and res["subscription"]["status"] == "active", "resume --json")
    expect_exit(ctl.run("subscription", "resume", sid), 65, "resume an active subscription")
    expect_exit(ctl.run("subscription", "resume", 4242), 65, "resume unknown id")


def resume_restarts_an_unpaid_subscription(ctl):
    sid = ctl.add("--anchor", "2020-01-01", "--backdate", "--every", "month", "--charge-time",
                  "00:00", "--time-zone", "UTC")
    # Dunning exhausted on period 0: the charge is canceled and the subscription unpaid.
    ctl.add_charge(sid, 0, "canceled")
    ctl.execute("UPDATE subscriptions SET status = 'unpaid', next_due_at = NULL WHERE id = ?", sid)
    before = int(time.time())
    expect_exit(ctl.run("subscription", "resume", sid), 0, "resume an unpaid subscription")
    s = ctl.subscription(sid)
    check(s["status"] == "active", f"unpaid -> active: {s['status']}")
    check(s["next_due_at"] is not None and s["next_due_at"] >= before,
          f"scheduled from now on: {s['next_due_at']}")
    check(s["next_period"] > 0, "the failed period is not charged again")
    check("while unpaid" in ctl.events(sid)[-1]["detail"], "event names the unpaid periods")


def cancel_leaves_charges_in_doubt_alone(ctl):
    sid = ctl.add("--anchor", "2023-01-10", "--backdate")
    unknown = ctl.add_charge(sid, 0, "unknown", next_action_at=int(time.time()) + 60)
    declined = ctl.add_charge(sid, 1, "declined", next_action_at=int(time.time()) + 86400)
    waiting = ctl.add_charge(sid, 2, "retry_wait", next_action_at=int(time.time()))
    r = ctl.run("subscription", "cancel", sid)
    expect_exit(r, 0, "cancel")
    check("reconcile" in r.stdout and "t-s%d-p0" % sid in r.stdout,
          f"cancel says the charge in doubt is still reconciled: {r.stdout}")
    s = ctl.subscription(sid)
    check(s["status"] == "canceled" and s["next_due_at"] is None, f"canceled: {s}")
    check(ctl.charge(unknown)["state"] == "unknown", "a charge in doubt is never touched")
    check(ctl.charge(declined)["state"] == "canceled", "declined charge canceled")
    check(ctl.charge(waiting)["state"] == "canceled", "retry_wait charge canceled")
    expect_exit(ctl.run("subscription", "cancel", sid), 65, "cancel twice", "already")

    later = ctl.add("--anchor", "2030-05-01")
    res = ctl.json("subscription", "cancel", later, "--at-period-end")
    s = ctl.subscription(later)
    check(s["cancel_at_period_end"] == 1 and s["status"] == "active",
          f"--at-period-end only marks the row: {s}")
    check(res is not None and res["subscription"]["cancel_at_period_end"] is True,
          "cancel --json")
    check(ctl.events(later)[-1]["kind"] == "subscription.cancel_at_period_end", "event")
    expect_exit(ctl.run("subscription", "cancel", later, "--at-period-end"), 65, "twice")


def writes_wait_for_another_connection(ctl):
    sid = ctl.add()
    conn = sqlite3.connect(ctl.db_path, check_same_thread=False, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    release = threading.Timer(3.0, lambda: conn.execute("ROLLBACK"))
    release.start()
    r = ctl.run("subscription", "pause", sid)
    release.join()
    conn.close()
    expect_exit(r, 0, "pause while another connection holds the write lock")
    check("waiting for a database lock" in r.stderr, f"says it waits: {r.stderr}")
    check(ctl.subscription(sid)["status"] == "paused", "the change landed after the lock")


ctl = Ctl()
invalid_values_exit_65_and_change_nothing(ctl)
import os  # noqa: E402
check(not os.path.exists(ctl.db_path), "invalid values do not even create the database")
first = add_schedules_period_zero(ctl)
list_and_show(ctl, first)
pause_and_resume_skip_the_paused_periods(ctl)
resume_restarts_an_unpaid_subscription(ctl)
cancel_leaves_charges_in_doubt_alone(ctl)
writes_wait_for_another_connection(ctl)
finish("billingctl subscriptions")
