"""Helpers for the billingctl tests: run the binary, a scratch database, rows by hand."""
import json
import os
import pwd
import sqlite3
import subprocess
import tempfile
import time

from harness import check  # noqa: F401  (re-exported for the tests)

BILLINGCTL = os.environ.get("BILLINGCTL", "billingctl")
# The actor billingctl records without --actor and $SUDO_USER: the user's login name.
LOGIN_NAME = pwd.getpwuid(os.getuid()).pw_name


class Ctl:
    """A scratch directory with a database that billingctl creates on the first `add`."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="billingctl-test-")
        self.dir = self.tmp.name
        self.db_path = os.path.join(self.dir, "billing.db")
        self.env = dict(os.environ)
        for name in ("CREDENTIALS_DIRECTORY", "BILLINGD_PORTONE_IMP_KEY",
                     "BILLINGD_PORTONE_IMP_SECRET", "SUDO_USER"):
            self.env.pop(name, None)

    def run(self, *args, database=True, env=None, timeout=60, user=None):
        """`user`: a uid to run billingctl as (the caller must be root)."""
        cmd = [BILLINGCTL]
        if database:
            cmd += ["--database", self.db_path]
        cmd += [str(a) for a in args]
        e = dict(self.env)
        e.update(env or {})
        as_user = {} if user is None else {"user": user, "group": user, "extra_groups": []}
        r = subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=timeout,
                           **as_user)
        if os.environ.get("BILLINGCTL_TEST_VERBOSE"):
            print("$", " ".join(cmd), "->", r.returncode, r.stdout, r.stderr)
        return r

    def json(self, *args, **kw):
        r = self.run("--json", *args, **kw)
        if not check(r.returncode == 0, f"{args}: exit {r.returncode}: {r.stderr}"):
            return None
        try:
            return json.loads(r.stdout)
        except ValueError:
            check(False, f"{args}: output is not JSON: {r.stdout!r}")
            return None

    def add(self, *extra, customer="cust_1", amount=9900, name="Pro plan"):
        r = self.run("subscription", "add", "--customer-uid", customer, "--amount", amount,
                     "--name", name, *extra)
        if not check(r.returncode == 0, f"add {extra}: exit {r.returncode}: {r.stderr}"):
            return None
        return int(r.stdout.strip())

    def db(self):
        conn = sqlite3.connect(self.db_path, timeout=30)
        conn.row_factory = sqlite3.Row
        return conn

    def row(self, sql, *params):
        with self.db() as c:
            r = c.execute(sql, params).fetchone()
            return dict(r) if r else None

    def rows(self, sql, *params):
        with self.db() as c:
            return [dict(r) for r in c.execute(sql, params)]

    def execute(self, sql, *params):
        with self.db() as c:
            return c.execute(sql, params).lastrowid

    def subscription(self, sid):
        return self.row("SELECT * FROM subscriptions WHERE id = ?", sid)

    def charge(self, cid):
        return self.row("SELECT * FROM charges WHERE id = ?", cid)

    def add_charge(self, sid, period, state, amount=9900, next_action_at=None,
                   merchant_uid=None, park_reason=None):
        """A charge row as billingd would have written it; the subscription moved on past it
        (to the next period), waiting for it to settle, as billingd leaves it."""
        now = int(time.time())
        uid = merchant_uid or f"t-s{sid}-p{period}"
        cid = self.execute(
            "INSERT INTO charges (subscription_id, period_index, period_start, merchant_uid, "
            "customer_uid, amount, currency, order_name, state, next_action_at, park_reason, "
            "created_at, updated_at) SELECT id, ?, ?, ?, customer_uid, ?, currency, order_name, "
            "?, ?, ?, ?, ? FROM subscriptions WHERE id = ?",
            period, now - 3600, uid, amount, state, next_action_at, park_reason, now, now, sid)
        self.execute("UPDATE subscriptions SET next_period = ?, next_due_at = NULL "
                     "WHERE id = ?", period + 1, sid)
        return cid

    def fingerprint(self):
        """Every row of every table, to show that a refused command wrote nothing."""
        with self.db() as c:
            return "\n".join(c.iterdump())

    def events(self, sid=None, charge_id=None):
        if charge_id is not None:
            return self.rows("SELECT * FROM events WHERE charge_id = ? ORDER BY id", charge_id)
        return self.rows("SELECT * FROM events WHERE subscription_id = ? ORDER BY id", sid)


def expect_exit(r, code, what, stderr_has=None):
    ok = check(r.returncode == code,
               f"{what}: expected exit {code}, got {r.returncode} (stderr: {r.stderr.strip()})")
    if ok and stderr_has:
        check(stderr_has.lower() in r.stderr.lower(),
              f"{what}: stderr should mention {stderr_has!r}: {r.stderr.strip()}")
    return ok
