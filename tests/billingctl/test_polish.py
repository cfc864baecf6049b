"""billingctl for operators: display-width tables, pagination that says it was cut, RFC 3339
--as-of, the actor of a change, the per-charge amount limit, --backdate, --version, --csv on
every read, and the bash completion script."""
import csv
import io
import os
import subprocess
import time

from ctl_support import BILLINGCTL, LOGIN_NAME, Ctl, expect_exit
from harness import check, finish

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def width(text):
    """Terminal columns, independently of billingctl: East Asian wide and emoji count 2."""
    import unicodedata
    w = 0
    for ch in text:
        if unicodedata.combining(ch) or ch in "\u200d\ufe0f":
            continue
        w += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return w


def tables_align_by_display_width(ctl):
    ids = [ctl.add(customer="cust_wide", name="베이직 월간 플랜"),
           ctl.add(customer="고객_한글", name="Pro 🎉 plan"),
           ctl.add(customer="c", name="plain")]
    r = ctl.run("subscription", "list")
    expect_exit(r, 0, "list with Hangul and emoji")
    lines = r.stdout.rstrip("\n").split("\n")
    header = lines[0]
    # Every row's NAME column starts where the header's does, counted in display columns.
    name_col = width(header[:header.index("NAME")])
    for line in lines[1:]:
        for name in ("베이직 월간 플랜", "Pro 🎉 plan", "plain"):
            if name in line:
                check(width(line[:line.index(name)]) == name_col,
                      f"NAME aligned by display width: {line!r} vs {header!r}")
        customer_col = width(header[:header.index("CUSTOMER")])
        amount_col = width(header[:header.index("AMOUNT")])
        cust = [c for c in ("cust_wide", "고객_한글", "c ") if c in line]
        if cust:
            check(width(line[:line.index(cust[0])]) == customer_col, f"CUSTOMER aligned: {line!r}")
        check(width(line[:line.index("KRW") - len("9,900 ")]) == amount_col,
              f"AMOUNT aligned after a wide customer: {line!r}")
    return ids


def lists_paginate_and_say_when_cut(ctl, ids):
    for _ in range(4):
        ctl.add(customer="cust_more")
    total = len(ctl.rows("SELECT id FROM subscriptions"))
    r = ctl.run("subscription", "list", "--limit", "2")
    expect_exit(r, 0, "list --limit 2")
    shown = [l.split()[0] for l in r.stdout.strip().split("\n")[1:]]
    check(shown == ["1", "2"], f"first page: {shown}")
    check("--after 2" in r.stderr and "first 2" in r.stderr, f"the cut is said: {r.stderr!r}")
    page = ctl.json("subscription", "list", "--limit", "3", "--after", "2")
    check([s["id"] for s in page] == [3, 4, 5], f"second page: {[s['id'] for s in page]}")
    r = ctl.run("subscription", "list", "--after", "2")
    check(r.returncode == 0 and r.stderr == "", f"an uncut list says nothing: {r.stderr!r}")
    check(len(r.stdout.strip().split("\n")) == total - 2 + 1, "the rest after id 2")
    # Charges, events, attempts, in-doubt: the same options.
    sid = ids[0]
    for period in range(3):
        ctl.add_charge(sid, period, "sending" if period else "parked", park_reason="x")
    r = ctl.run("charges", sid, "--limit", "1")
    check(r.returncode == 0 and "--after" in r.stderr, f"charges cut: {r.stderr!r}")
    ctl.execute("INSERT INTO events (at, subscription_id, kind, actor) VALUES (1, ?, 'note', 't')", sid)
    r = ctl.run("events", sid, "--limit", "1")
    check(r.returncode == 0 and "--after" in r.stderr, f"events cut: {r.stderr!r}")
    doubt = ctl.json("in-doubt", "--limit", "1")
    check(len(doubt) == 1, f"in-doubt --limit 1: {doubt}")
    rest = ctl.json("in-doubt", "--after", doubt[0]["id"])
    check(len(rest) == 1 and rest[0]["id"] > doubt[0]["id"], f"in-doubt --after: {rest}")
    # parked: the charge first, then the subscriptions needing attention.
    ctl.execute("UPDATE subscriptions SET needs_attention = 'bad' WHERE id IN (?, ?)", ids[1], ids[2])
    r = ctl.run("--json", "parked", "--limit", "2")
    check(r.returncode == 0 and "--after-subscription" in r.stderr, f"parked cut: {r.stderr!r}")
    import json
    page = json.loads(r.stdout)
    check(len(page["charges"]) == 1 and len(page["subscriptions"]) == 1 and
          page["next_after"] == f"--after-subscription {ids[1]}", f"parked page: {page}")
    page2 = ctl.json("parked", "--after-subscription", ids[1])
    check(page2["charges"] == [] and [s["id"] for s in page2["subscriptions"]] == [ids[2]],
          f"parked second page: {page2}")
    # due: subscriptions first, then charges.
    ctl.execute("UPDATE subscriptions SET next_due_at = 1000")
    ctl.execute("UPDATE charges SET next_action_at = 1000")
    due = ctl.json("due", "--limit", "3")
    check(len(due["subscriptions"]) == 3 and
          due["next_after"] == f"--after {due['subscriptions'][-1]['id']}", f"due page 1: {due['next_after']}")
    due = ctl.json("due", "--after-charge", "0")
    check(due["subscriptions"] == [] and len(due["charges"]) == 3, "due --after-charge 0: the charges")
    for bad in (["--limit", "0"], ["--after", "-1"], ["--limit", "x"]):
        r = ctl.run("subscription", "list", *bad)
        check(r.returncode in (64, 65), f"list {bad}: exit {r.returncode}")


def as_of_takes_any_offset(ctl):
    ctl.execute("UPDATE subscriptions SET next_due_at = 1893456000")  # 2030-01-01T00:00:00Z
    z = ctl.json("due", "--as-of", "2030-01-01T00:00:00Z")
    for form in ("2030-01-01T09:00:00+09:00", "2029-12-31T19:00:00-05:00",
                 "2030-01-01t00:00:00z", "2030-01-01 09:00:00.250+09:00", "2030-01-01T00:00:00Z"):
        got = ctl.json("due", "--as-of", form)
        check(got and got["as_of"] == 1893456000, f"--as-of {form}: {got and got['as_of']}")
        check(got and len(got["subscriptions"]) == len(z["subscriptions"]) > 0, f"--as-of {form} finds the due rows")
    before = ctl.json("due", "--as-of", "2030-01-01T08:59:59+09:00")
    check(before and before["subscriptions"] == [], "a second before (in +09:00) nothing is due")
    for bad in ("2030-01-01T09:00:00+24:00", "2030-02-30T00:00:00Z", "2030-01-01T09:00:00",
                "tomorrow"):
        expect_exit(ctl.run("due", "--as-of", bad), 64, f"--as-of {bad}", "RFC 3339")


def the_actor_is_named(ctl, sid):
    ctl.run("subscription", "pause", sid, env={"SUDO_USER": "alice"})
    check(ctl.events(sid)[-1]["actor"] == "alice", f"$SUDO_USER: {ctl.events(sid)[-1]}")
    ctl.run("--actor", "bob", "subscription", "resume", sid, env={"SUDO_USER": "alice"})
    check(ctl.events(sid)[-1]["actor"] == "bob", "--actor wins over $SUDO_USER")
    ctl.run("subscription", "pause", sid)
    check(ctl.events(sid)[-1]["actor"] == LOGIN_NAME, f"else the login name {LOGIN_NAME}")


def amounts_are_bounded(ctl):
    r = ctl.run("subscription", "add", "--customer-uid", "big", "--name", "P", "--amount", "100000001")
    expect_exit(r, 65, "above 100,000,000 by default", "100000000")
    check(ctl.add(customer="big", amount="100000000") is not None, "100,000,000 is accepted")
    config = os.path.join(ctl.dir, "billingd.toml")
    with open(config, "w") as f:
        f.write(f'database = "{ctl.db_path}"\n[guardrails]\nmax_amount_per_charge = 300000000\n')
    r = ctl.run("--config", config, "subscription", "add", "--customer-uid", "big", "--name", "P",
                "--amount", "250000000", database=False)
    expect_exit(r, 0, "the configured limit raises it")
    r = ctl.run("--config", config, "subscription", "add", "--customer-uid", "big", "--name", "P",
                "--amount", "300000001", database=False)
    expect_exit(r, 65, "above the configured limit", "300000000")
    # The schema refuses what billingctl would, also written by hand.
    try:
        ctl.execute("INSERT INTO subscriptions (customer_uid, amount, order_name, interval_unit, "
                    "anchor_date) VALUES ('x', 99999999999999999999, 'P', 'month', '2026-01-01')")
        check(False, "the schema refuses an amount of 99999999999999999999")
    except Exception as e:  # sqlite3.IntegrityError
        check("amount" in str(e), f"refused: {e}")


def past_anchor_needs_backdate(ctl):
    old = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 90 * 86400))
    r = ctl.run("subscription", "add", "--customer-uid", "b", "--name", "P", "--amount", "100",
                "--anchor", old)
    expect_exit(r, 65, "an anchor three months back", "--backdate")
    r = ctl.run("subscription", "add", "--customer-uid", "b", "--name", "P", "--amount", "100",
                "--anchor", old, "--backdate")
    expect_exit(r, 0, "with --backdate")


def version(ctl):
    r = ctl.run("--version", database=False)
    check(r.returncode == 0 and r.stdout.startswith("billingctl ") and
          r.stdout.split()[-1][0].isdigit(), f"billingctl --version: {r.stdout!r}")
    billingd = os.path.join(os.path.dirname(os.path.dirname(BILLINGCTL)), "daemon", "billingd")
    if os.path.exists(billingd):
        d = subprocess.run([billingd, "--version"], capture_output=True, text=True)
        check(d.stdout.split()[-1] == r.stdout.split()[-1], f"one version: {d.stdout!r} {r.stdout!r}")


def csv_on_every_read(ctl, sid):
    cid = ctl.rows("SELECT id FROM charges ORDER BY id")[0]["id"]
    reads = [["subscription", "list"], ["subscription", "show", sid], ["charges", sid],
             ["attempts", cid], ["events", sid], ["due"], ["parked"], ["in-doubt"], ["info"]]
    for args in reads:
        r = ctl.run("--csv", *args)
        if not expect_exit(r, 0, f"--csv {args}"):
            continue
        rows = list(csv.reader(io.StringIO(r.stdout, newline="")))
        check(len(rows) >= 1 and all(len(row) == len(rows[0]) for row in rows),
              f"--csv {args} is rectangular CSV: {r.stdout[:200]!r}")
        check("(none)" not in r.stdout, f"--csv {args} prints no table decoration")
    rows = list(csv.reader(io.StringIO(ctl.run("--csv", "subscription", "list").stdout, newline="")))
    check(rows[0][0] == "ID" and any("베이직 월간 플랜" in row for row in rows),
          f"CSV keeps the text as it is: {rows[:2]}")
    expect_exit(ctl.run("--csv", "--json", "info"), 64, "--csv with --json")


def bash_completion(ctl):
    script = os.path.join(ROOT, "dist", "bash-completion", "billingctl")
    def complete(*words):
        line = " ".join(words)
        r = subprocess.run(["bash", "-c", f'source "{script}"; COMP_WORDS=({line}); '
                            f'COMP_CWORD={len(words) - 1}; _billingctl; echo "${{COMPREPLY[@]}}"'],
                           capture_output=True, text=True)
        return r.stdout.split()
    check("subscription" in complete("billingctl", "su") and "metrics" in complete("billingctl", "m"),
          "commands complete")
    check(complete("billingctl", "subscription", "list", "--status", "pa") == ["past_due", "paused"],
          "--status values complete")
    check({"--limit", "--after", "--after-charge", "--as-of"} <= set(complete("billingctl", "due", "--")),
          "due's options complete")
    # meson installs it where bash-completion looks.
    with open(os.path.join(ROOT, "dist", "meson.build")) as f:
        check("bash-completion/billingctl" in f.read(), "meson installs the completion")


ctl = Ctl()
ids = tables_align_by_display_width(ctl)
lists_paginate_and_say_when_cut(ctl, ids)
as_of_takes_any_offset(ctl)
the_actor_is_named(ctl, ids[0])
amounts_are_bounded(ctl)
past_anchor_needs_backdate(ctl)
version(ctl)
csv_on_every_read(ctl, ids[0])
bash_completion(ctl)
finish("billingctl polish")
