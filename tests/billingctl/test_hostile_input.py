"""billingctl against hostile or careless input (issue 11): numbers in base 10 only and bounded,
text without control characters, anchors far in the past, read-only databases. Every refused
case checks the exit code, the message, and that nothing was written."""
import datetime
import hashlib
import json
import os
import shutil
import sqlite3
import stat
import tempfile
import zoneinfo

from ctl_support import Ctl, expect_exit
from harness import check, finish

ADD = ["subscription", "add", "--customer-uid", "cust_1", "--name", "Plan"]
MAX_AMOUNT = "100000000000"
MAX_ID = "9007199254740992"  # 2^53


def refused(ctl, args, code, says, what=None, **kw):
    """Runs billingctl; expects `code`, every text of `says` in stderr, and no change."""
    before = ctl.fingerprint()
    r = ctl.run(*args, **kw)
    what = what or " ".join(str(a) for a in args)
    if expect_exit(r, code, what):
        for text in ([says] if isinstance(says, str) else says):
            check(text.lower() in r.stderr.lower(),
                  f"{what}: stderr should mention {text!r}: {r.stderr.strip()}")
    check(ctl.fingerprint() == before, f"{what}: nothing is written")
    return r


def numbers_are_read_in_base_10_only_and_bounded(ctl):
    for _ in range(10):
        ctl.add()  # subscriptions 1..10: `010` must not reach 8 (octal) or 10
    malformed = [  # (option or command, text, what the message says) -> exit 64
        ("--amount", "010000", "leading zero"),
        ("--amount", "00", "leading zero"),
        ("--amount", "0x10", "base 10"),
        ("--amount", "0X10", "base 10"),
        ("--amount", "0b11", "base 10"),
        ("--amount", "0o17", "base 10"),
        ("--amount", "+5", "'+'"),
        ("--amount", "1e3", "decimal"),
        ("--amount", "10.0", "decimal"),
        ("--amount", "1,000", "decimal"),
        ("--amount", "1_000", "decimal"),
        ("--amount", "1 000", "decimal"),
        ("--amount", " 5", "decimal"),
        ("--amount", "5 ", "decimal"),
        ("--amount", "", "--amount"),
        ("--amount", "\uff11\uff12", "decimal"),  # full-width digits
        ("--amount", "5\x1b[2J", "decimal"),
        ("--count", "010", "leading zero"),
        ("--count", "0x2", "base 10"),
        ("--trial-days", "07", "leading zero"),
        ("--trial-days", "+3", "'+'"),
        ("--max-periods", "012", "leading zero"),
    ]
    for option, text, says in malformed:
        extra = [] if option == "--amount" else ["--amount", "100"]
        r = refused(ctl, [*ADD, *extra, f"{option}={text}"], 64, [option, says],
                    f"{option} {text!r}")
        check("\x1b" not in r.stderr, f"{option} {text!r}: the message escapes control bytes")
    out_of_range = [  # -> exit 65, naming the bound; never clamped
        ("--amount", "9223372036854775808", MAX_AMOUNT),
        ("--amount", "18446744073709551617", MAX_AMOUNT),
        ("--amount", "-9223372036854775809", MAX_AMOUNT),
        ("--amount", "100000000001", MAX_AMOUNT),
        ("--amount", "0", MAX_AMOUNT),
        ("--amount", "-5", MAX_AMOUNT),
        ("--count", "1001", "1000"),
        ("--count", "9223372036854775808", "1000"),
        ("--trial-days", "3661", "3660"),
        ("--max-periods", "1000001", "1000000"),
        ("--max-periods", "99999999999999999999", "1000000"),
    ]
    for option, text, bound in out_of_range:
        extra = [] if option == "--amount" else ["--amount", "100"]
        refused(ctl, [*ADD, *extra, f"{option}={text}"], 65, [option, bound, f"got {text}"],
                f"{option} {text}")
    # The largest amount is accepted, and what is typed is what is stored.
    for amount in ("10000", "100000000"):
        sid = ctl.add(amount=amount)
        if sid is not None:
            check(ctl.subscription(sid)["amount"] == int(amount), f"--amount {amount} stored")

    ids = [  # (command, exit, message)
        (["subscription", "cancel", "010"], 64, "leading zero"),
        (["subscription", "pause", "08"], 64, "leading zero"),
        (["subscription", "pause", "0x8"], 64, "base 10"),
        (["subscription", "resume", "+8"], 64, "'+'"),
        (["subscription", "show", "8.0"], 64, "decimal"),
        (["subscription", "cancel", "0"], 65, MAX_ID),
        (["subscription", "cancel", "-8"], 65, MAX_ID),
        (["subscription", "cancel", "9007199254740993"], 65, MAX_ID),
        (["subscription", "cancel", "9223372036854775808"], 65, "got 9223372036854775808"),
        (["subscription", "show", "9223372036854775816"], 65, "got 9223372036854775816"),
        (["charges", "010"], 64, "leading zero"),
        (["events", "0x1"], 64, "base 10"),
        (["attempts", "1e1"], 64, "decimal"),
        (["charge", "retry", "010"], 64, "leading zero"),
        (["charge", "resolve", "010", "--give-up", "--reason", "typo"], 64, "leading zero"),
        (["subscription", "list", "--limit", "010"], 64, "leading zero"),
        (["subscription", "list", "--limit", "0x10"], 64, "base 10"),
        (["subscription", "list", "--limit", "1000001"], 65, "1000000"),
        (["subscription", "list", "--limit", "0"], 65, "1000000"),
    ]
    for args, code, says in ids:
        refused(ctl, args, code, says)
    for sid in (8, 10):
        check(ctl.subscription(sid)["status"] == "active", f"subscription {sid} untouched")
    # 2^53 itself is a well-formed id: an unknown one, not a refused number.
    expect_exit(ctl.run("subscription", "show", MAX_ID), 65, "id 2^53",
                f"no subscription with id {MAX_ID}")
    expect_exit(ctl.run("subscription", "list", "--limit", "3"), 0, "--limit 3")

    r = ctl.run("subscription", "add", "--help", database=False)
    check("max_amount_per_charge" in r.stdout and "--backdate" in r.stdout,
          f"add --help names the amount's maximum and --backdate: {r.stdout}")
    r = ctl.run("--help", database=False)
    check("base 10" in r.stdout and "leading" in r.stdout and "read-only" in r.stdout,
          f"--help documents how numbers are read and read-only databases: {r.stdout}")


def text_with_control_characters_is_refused(ctl):
    sid = ctl.add(customer="cust_text")
    cid = ctl.add_charge(sid, 0, "parked", park_reason="test")
    bad_uids = {
        "CR LF (a header injected into PortOne's request)": "cust\r\nX-Evil: 1",
        "LF": "cust\n",
        "TAB": "cust\t1",
        "ESC (terminal control)": "cust\x1b[2J",
        "DEL": "cust\x7f",
        "C1 NEL": "cust\u0085",
    }
    for what, uid in bad_uids.items():
        r = refused(ctl, [*ADD[:2], "--customer-uid", uid, "--name", "Plan", "--amount", "100"],
                    65, ["--customer-uid", "control character"], f"customer_uid with {what}")
        check("\x1b" not in r.stderr and "\r" not in r.stderr,
              f"{what}: the value is escaped in the message: {r.stderr!r}")
    invalid_utf8 = "cust\udcff"  # the byte 0xFF on the command line
    refused(ctl, [*ADD[:2], "--customer-uid", invalid_utf8, "--name", "Plan", "--amount", "100"],
            65, ["--customer-uid", "UTF-8"], "customer_uid with invalid UTF-8")
    refused(ctl, [*ADD[:2], "--customer-uid", "caf\udcc3", "--name", "Plan", "--amount", "100"],
            65, ["--customer-uid", "UTF-8"], "customer_uid with a truncated UTF-8 sequence")
    for uid in (" cust_1", "cust_1 ", "cust_1\u3000"):
        refused(ctl, [*ADD[:2], "--customer-uid", uid, "--name", "Plan", "--amount", "100"],
                65, ["--customer-uid", "white space"], f"customer_uid {uid!r}")
    others = [
        (["--name", "Pro\nplan"], "--name"),
        (["--name", "Pro\udcffplan"], "--name"),
        (["--buyer-name", "Kim\r\nBcc: x"], "--buyer-name"),
        (["--buyer-email", "kim@example.com\r\n"], "--buyer-email"),
        (["--buyer-tel", "010\t1234"], "--buyer-tel"),
    ]
    for extra, option in others:
        name = [] if option == "--name" else ["--name", "Plan"]
        args = ["subscription", "add", "--customer-uid", "cust_1", "--amount", "100", *name,
                *extra]
        refused(ctl, args, 65, option, f"{option} {extra[1]!r}")
    for actor in ("alice\r\nbillingd", "alice\x1b]0;x\x07", "\udcfe"):
        refused(ctl, ["--actor", actor, "subscription", "pause", sid], 65, "--actor",
                f"--actor {actor!r}")
    check(ctl.subscription(sid)["status"] == "active", "a refused actor paused nothing")
    refused(ctl, ["charge", "resolve", cid, "--give-up", "--reason", "card\nstolen"], 65,
            "--reason")
    refused(ctl, ["charge", "resolve", cid, "--paid", "--imp-uid", "imp_1\r\n"], 65, "--imp-uid")
    check(ctl.charge(cid)["state"] == "parked", "refused resolutions leave the charge parked")
    # Refused before PortOne is asked (no configuration or credentials are even read).
    refused(ctl, ["customer", "verify", "cust\r\n1"], 65, ["CUSTOMER_UID", "control"])
    # Text that is merely not ASCII is fine.
    sid2 = ctl.add(customer="고객_1", name="프로 요금제")
    r = ctl.run("--actor", "김철수", "subscription", "pause", sid2)
    expect_exit(r, 0, "a Korean actor")
    check(ctl.events(sid2)[-1]["actor"] == "김철수", "the actor is recorded as typed")


def anchors_far_in_the_past_need_backdate(ctl):
    today = datetime.datetime.now(zoneinfo.ZoneInfo("Asia/Seoul")).date()
    ago = lambda days: (today - datetime.timedelta(days=days)).isoformat()  # noqa: E731
    base = [*ADD, "--amount", "100", "--time-zone", "Asia/Seoul"]
    cases = [  # (extra, exit, message)
        (["--anchor", "0000-01-01", "--every", "day"], 65, "1900-01-01"),
        (["--anchor", "0000-01-01", "--every", "day", "--backdate"], 65, "1900-01-01"),
        (["--anchor", "1899-12-31", "--every", "year", "--backdate"], 65, "1900-01-01"),
        (["--anchor", "2000-01-01", "--every", "day"], 65, "--backdate"),
        (["--anchor", "2024-01-31"], 65, "--backdate"),
        (["--anchor", ago(10), "--every", "week"], 65, "--backdate"),
        (["--anchor", ago(70), "--every", "month"], 65, "--backdate"),
        (["--anchor", ago(3), "--every", "day"], 65, "--backdate"),
        (["--backdate"], 64, "--anchor"),
        (["--trial-days", "3", "--backdate"], 64, ""),
    ]
    for extra, code, says in cases:
        refused(ctl, [*base, *extra], code, says, f"add {' '.join(extra)}")
    # Within one period of today: accepted as before; further back with --backdate.
    for extra in (["--anchor", ago(20), "--every", "month"],
                  ["--anchor", ago(1), "--every", "week", "--count", "2"],
                  ["--anchor", "2000-01-01", "--every", "day", "--backdate"],
                  ["--anchor", "1900-01-01", "--every", "year", "--backdate"]):
        r = ctl.run(*base, *extra)
        if expect_exit(r, 0, f"add {' '.join(extra)}"):
            anchor = ctl.subscription(int(r.stdout))["anchor_date"]
            check(anchor == extra[1], f"anchor {extra[1]} stored: {anchor}")


def tree_state(directory):
    """Names, modes and contents of the files in `directory`."""
    out = {}
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        with open(path, "rb") as f:
            out[name] = (os.stat(path).st_mode, hashlib.sha256(f.read()).hexdigest())
    return out


def read_only_databases_are_read_not_written(ctl):
    # As root every file is writable: the commands run as nobody then.
    user = 65534 if os.geteuid() == 0 else None
    sid = ctl.add(customer="cust_ro")
    cid = ctl.add_charge(sid, 0, "parked", park_reason="guardrail")
    ctl.execute("INSERT INTO attempts (at, charge_id, kind, phase, merchant_uid, "
                "request_summary, request_written) VALUES (1, ?, 'charge', 'request', 'm', "
                "'POST /subscribe/payments/again', 1)", cid)

    with ctl.db() as c:  # the copies below take the main file only
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def scratch(name, dir_mode, file_mode):
        d = os.path.join(ctl.dir, name)
        os.mkdir(d)
        shutil.copy(ctl.db_path, os.path.join(d, "billing.db"))
        os.chmod(os.path.join(d, "billing.db"), file_mode)
        os.chmod(d, dir_mode)
        return d

    os.chmod(ctl.dir, 0o755)
    reads = [["subscription", "list"], ["subscription", "show", sid], ["charges", sid],
             ["attempts", cid], ["events", sid], ["due"], ["parked"], ["in-doubt"], ["info"]]
    writes = [["subscription", "pause", sid], ["subscription", "resume", sid],
              ["subscription", "cancel", sid], ["charge", "retry", cid],
              ["charge", "resolve", cid, "--give-up", "--reason", "x"],
              ["charge", "resolve", cid, "--paid", "--imp-uid", "imp_1"],
              ["subscription", "add", "--customer-uid", "c", "--amount", "1", "--name", "n"]]
    places = {
        "a read-only copy in a read-only directory": scratch("ro_dir", 0o555, 0o444),
        "a read-only file in a writable directory": scratch("ro_file", 0o777, 0o444),
        "a writable file in a read-only directory": scratch("ro_dir_rw_file", 0o555, 0o666),
    }
    try:
        for what, d in places.items():
            db = os.path.join(d, "billing.db")
            before = tree_state(d)
            for args in reads:
                r = ctl.run("--database", db, *args, database=False, user=user)
                expect_exit(r, 0, f"{what}: {' '.join(map(str, args))}")
            out = ctl.run("--database", db, "--json", "subscription", "list", database=False,
                          user=user)
            if expect_exit(out, 0, f"{what}: list --json"):
                rows = {s["id"]: s["customer_uid"] for s in json.loads(out.stdout)}
                check(rows.get(sid) == "cust_ro", f"{what}: the rows are read: {rows}")
            info = ctl.run("--database", db, "--json", "info", database=False, user=user)
            if expect_exit(info, 0, f"{what}: info --json"):
                check(json.loads(info.stdout)["database"] == db,
                      f"{what}: info names the file: {info.stdout}")
            for args in writes:
                r = ctl.run("--database", db, *args, database=False, user=user)
                if expect_exit(r, 78, f"{what}: {' '.join(map(str, args))}", "not writable"):
                    check(db in r.stderr, f"{what}: the message names the file: {r.stderr}")
            check(tree_state(d) == before,
                  f"{what}: nothing written or created: {before} -> {tree_state(d)}")

        # billingd has it open (its -wal and -shm exist) and committed a change that is still
        # in the write-ahead log: a read sees it.
        d = places["a read-only copy in a read-only directory"]
        db = os.path.join(d, "billing.db")
        os.chmod(d, 0o755)
        os.chmod(db, 0o644)
        live = sqlite3.connect(db, isolation_level=None)
        live.execute("PRAGMA wal_autocheckpoint = 0")
        live.execute("UPDATE subscriptions SET customer_uid = 'cust_live' WHERE id = ?", (sid,))
        os.chmod(d, 0o555)
        try:
            out = ctl.run("--database", db, "--json", "subscription", "list", database=False,
                          user=user)
            if expect_exit(out, 0, "read while another connection has it open"):
                rows = {s["id"]: s["customer_uid"] for s in json.loads(out.stdout)}
                check(rows.get(sid) == "cust_live",
                      f"a read sees what is committed in the -wal: {rows}")
            expect_exit(ctl.run("--database", db, "subscription", "pause", sid, database=False,
                                user=user), 78, "write while another connection has it open",
                        "not writable")
        finally:
            live.close()
            os.chmod(d, 0o755)
    finally:
        for d in places.values():
            os.chmod(d, 0o755)


def read_only_open_never_migrates(ctl):
    user = 65534 if os.geteuid() == 0 else None
    schema = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "schema")
    d = os.path.join(ctl.dir, "old")
    os.mkdir(d)
    old = os.path.join(d, "old.db")
    with sqlite3.connect(old) as c:  # a database of the first release: migration 1 only
        with open(os.path.join(schema, "0001_initial.sql")) as f:
            c.executescript(f.read())
        c.execute("PRAGMA user_version = 1")
    newer = os.path.join(d, "newer.db")
    shutil.copy(ctl.db_path, newer)
    with sqlite3.connect(newer) as c:
        c.execute("PRAGMA user_version = 999")
    empty = os.path.join(d, "empty.db")
    open(empty, "w").close()
    garbage = os.path.join(d, "garbage.db")
    with open(garbage, "w") as f:
        f.write("not a database\n" * 100)
    for path in (old, newer, empty, garbage):
        os.chmod(path, 0o444)
    os.chmod(d, 0o555)
    try:
        before = tree_state(d)
        cases = [(old, ["schema version 1", "older", "migrate"]),
                 (newer, ["schema version 999", "newer"]),
                 (empty, ["not a billingd database"]),
                 (garbage, ["not a database", "read-only"])]
        for path, says in cases:
            for args in (["parked"], ["info"], ["subscription", "list"]):
                r = ctl.run("--database", path, *args, database=False, user=user)
                if expect_exit(r, 78, f"{os.path.basename(path)}: {' '.join(args)}"):
                    for text in says + [path]:
                        check(text in r.stderr, f"{path}: stderr mentions {text!r}: {r.stderr}")
        check(tree_state(d) == before, "read-only opens never migrate or create anything")
        with sqlite3.connect(f"file:{old}?mode=ro", uri=True) as c:
            check(c.execute("PRAGMA user_version").fetchone()[0] == 1, "still schema 1")
    finally:
        os.chmod(d, 0o755)


def read_only_open_checks_the_install_id(ctl):
    user = 65534 if os.geteuid() == 0 else None
    d = os.path.join(ctl.dir, "install")
    os.mkdir(d)
    db = os.path.join(d, "billing.db")
    configs = {}
    for prefix in ("shop1", "shop2"):
        configs[prefix] = os.path.join(ctl.dir, f"{prefix}.toml")
        with open(configs[prefix], "w") as f:
            f.write(f'database = "{db}"\n[billing]\nmerchant_uid_prefix = "{prefix}"\n')
        os.chmod(configs[prefix], 0o644)
    r = ctl.run("--config", configs["shop1"], "subscription", "add", "--customer-uid", "c",
                "--amount", "100", "--name", "n", database=False)
    expect_exit(r, 0, "add through a configuration naming install id shop1")
    os.chmod(db, 0o444)
    os.chmod(d, 0o555)
    try:
        r = ctl.run("--config", configs["shop1"], "info", database=False, user=user)
        if expect_exit(r, 0, "read-only info with the database's own configuration"):
            check("shop1" in r.stdout, f"install id shown: {r.stdout}")
        r = ctl.run("--config", configs["shop2"], "parked", database=False, user=user)
        expect_exit(r, 78, "read-only database of another install id", "shop1")
    finally:
        os.chmod(d, 0o755)


ctl = Ctl()
numbers_are_read_in_base_10_only_and_bounded(ctl)
text_with_control_characters_is_refused(ctl)
anchors_far_in_the_past_need_backdate(ctl)
read_only_databases_are_read_not_written(ctl)
read_only_open_never_migrates(ctl)
read_only_open_checks_the_install_id(ctl)
finish("billingctl hostile input")
