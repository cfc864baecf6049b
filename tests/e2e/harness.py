"""End-to-end test harness: runs the real billingd against portone-sim on 127.0.0.1.

Paths of the built binaries come from the environment that tests/e2e/meson.build sets
(BILLINGD, PORTONE_SIM, BILLINGCTL). Everything lives in a temporary directory per test.
"""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

BILLINGD = os.environ.get("BILLINGD", "billingd")
BILLINGCTL = os.environ.get("BILLINGCTL", "billingctl")
PORTONE_SIM = os.environ.get("PORTONE_SIM", "portone-sim")

failures = []


def check(condition, message):
    """Records a failed expectation and keeps going, like doctest's CHECK."""
    if not condition:
        failures.append(message)
        print(f"FAILED: {message}", flush=True)
    return condition


def finish(name):
    passed = not failures
    print(f"{name}: {'1 passed, 0 failed' if passed else '0 passed, 1 failed'}")
    sys.exit(0 if passed else 1)


class Sim:
    """A portone-sim process on 127.0.0.1 with a free port."""

    def __init__(self, *args, tls=None):
        cmd = [PORTONE_SIM, "--port", "0", *args]
        if tls:
            cmd += ["--tls-cert", tls[0], "--tls-key", tls[1]]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening on 127.0.0.1:"):
            raise RuntimeError(f"portone-sim did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])
        self.base_url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.control = f"http://127.0.0.1:{self.port}"

    def _call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.control + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read().decode() or "null")

    def ledger(self):
        return self._call("GET", "/__sim/ledger")

    def set_faults(self, faults):
        return self._call("POST", "/__sim/faults", {"faults": faults})

    def add_customers(self, customers=None, prefixes=None):
        return self._call("POST", "/__sim/customers",
                          {"customers": customers or {}, "prefixes": prefixes or {}})

    def set_modes(self, **modes):
        """POST /__sim/modes, e.g. set_modes(record_at="answer", failed_uid_reuse="refuse")."""
        return self._call("POST", "/__sim/modes", modes)

    def requests(self, merchant_uid=None):
        """GET /__sim/requests: {merchant_uid: {"charges", "lookups", "max_concurrent_charges",
        "max_concurrent", "charge_arrivals_ms"}}; with merchant_uid, that one entry only."""
        if merchant_uid is None:
            return self._call("GET", "/__sim/requests")["merchant_uids"]
        answer = self._call("GET", "/__sim/requests?merchant_uid=" +
                            urllib.parse.quote(merchant_uid, safe=""))
        return answer["merchant_uids"].get(merchant_uid, {
            "charges": 0, "lookups": 0, "max_concurrent_charges": 0, "max_concurrent": 0,
            "charge_arrivals_ms": []})

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Workspace:
    """A temporary directory with a database and a billingd config pointing at a simulator.
    Each workspace gets its own merchant_uid prefix so that several can share one simulator.
    With prefix=None the config names no merchant_uid_prefix (the default: billingd gives a
    new database a random install id); install_id() reads it from the database."""

    count = 0

    def __init__(self, sim, prefix="", **settings):
        Workspace.count += 1
        self.prefix = (prefix or f"w{Workspace.count}") if prefix is not None else None
        self.tmp = tempfile.TemporaryDirectory(prefix="billingd-e2e-")
        self.dir = self.tmp.name
        self.db_path = os.path.join(self.dir, "billing.db")
        self.config_path = os.path.join(self.dir, "billingd.toml")
        self.sim = sim
        self.write_config(**settings)
        self.env = dict(os.environ)
        self.env["BILLINGD_PORTONE_IMP_KEY"] = "sim_key"
        self.env["BILLINGD_PORTONE_IMP_SECRET"] = "sim_secret"
        self.env.pop("CREDENTIALS_DIRECTORY", None)
        self.env.pop("NOTIFY_SOCKET", None)

    def write_config(self, charge_timeout_ms=2000, lookup_timeout_ms=2000, max_in_flight=16,
                     extra_billing="", extra_retry="", extra_guardrails="", base_url=None,
                     merchant_uid_prefix="", extra_refunds=""):
        """merchant_uid_prefix: "" writes the workspace's own prefix (none when it has none),
        another string writes that one instead."""
        prefix = merchant_uid_prefix or self.prefix
        prefix_line = f'merchant_uid_prefix = "{prefix}"' if prefix else ""
        with open(self.config_path, "w") as f:
            f.write(f'''database = "{self.db_path}"
[portone]
base_url = "{base_url or self.sim.base_url}"
connect_timeout_ms = 2000
charge_timeout_ms = {charge_timeout_ms}
lookup_timeout_ms = {lookup_timeout_ms}
max_in_flight = {max_in_flight}
[billing]
time_zone = "Asia/Seoul"
charge_time = "10:00"
{prefix_line}
{extra_billing}
[retry]
{extra_retry}
[guardrails]
{extra_guardrails}
[refunds]
{extra_refunds}
[log]
level = "warn"
''')

    def billingd(self, *args, as_of=None, env=None, timeout=300):
        cmd = [BILLINGD, "--config", self.config_path, *args]
        if as_of:
            cmd += ["--as-of", as_of]
        e = dict(self.env)
        e.update(env or {})
        return subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=timeout)

    def once(self, as_of=None, env=None):
        return self.billingd("--once", as_of=as_of, env=env)

    def billingctl(self, *args, timeout=120):
        """billingctl --config <this workspace's config> ARGS (BILLINGCTL from the environment)."""
        return subprocess.run([BILLINGCTL, "--config", self.config_path, *args],
                              capture_output=True, text=True, env=self.env, timeout=timeout)

    def db(self):
        conn = sqlite3.connect(self.db_path, timeout=30)
        conn.row_factory = sqlite3.Row
        return conn

    def init_db(self):
        """Creates the database through billingd itself (migrations run on open)."""
        r = self.billingd("--once", as_of="2000-01-01T00:00:00Z")
        if r.returncode != 0:
            raise RuntimeError(f"billingd could not create the database: {r.stderr}")

    def add_subscription(self, customer_uid, anchor, amount=9900, unit="month", count=1,
                         charge_time="10:00", time_zone="Asia/Seoul", status="active",
                         max_periods=None):
        with self.db() as c:
            cur = c.execute(
                "INSERT INTO subscriptions (customer_uid, amount, order_name, interval_unit, "
                "interval_count, anchor_date, charge_time, time_zone, status, max_periods) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (customer_uid, amount, "Plan " + customer_uid[:30], unit, count, anchor,
                 charge_time, time_zone, status, max_periods))
            return cur.lastrowid

    def install_id(self):
        """The database's install id: the first part of every merchant_uid it mints."""
        with self.db() as c:
            return c.execute("SELECT install_id FROM install").fetchone()[0]

    def uid(self, subscription_id, period):
        """The period's merchant_uid: the database's install id and the subscription's key."""
        with self.db() as c:
            install = c.execute("SELECT install_id FROM install").fetchone()[0]
            key = c.execute("SELECT uid_key FROM subscriptions WHERE id = ?",
                            (subscription_id,)).fetchone()[0]
        return f"{install}-{key}-p{period}"

    def charges(self):
        with self.db() as c:
            return [dict(r) for r in c.execute("SELECT * FROM charges ORDER BY id")]

    def scalar(self, sql, *params):
        with self.db() as c:
            return c.execute(sql, params).fetchone()[0]


def check_ledger_agrees(ws, sim, own_subscriptions_only=False):
    """The money invariants, checked against PortOne's (the simulator's) own ledger.
    own_subscriptions_only: look only at merchant_uids of this database's subscriptions (their
    uid_key), for a database restored from another's backup, which shares its install id."""
    # A workspace without a configured prefix mints under its database's install id.
    namespace = ws.prefix or ws.install_id()
    ledger = [p for p in sim.ledger() if p["merchant_uid"].startswith(namespace + "-")]
    if own_subscriptions_only:
        with ws.db() as c:
            keys = {r[0] for r in c.execute("SELECT uid_key FROM subscriptions")}
        ledger = [p for p in ledger
                  if p["merchant_uid"][len(namespace) + 1:].rsplit("-p", 1)[0] in keys]
    paid = {}
    for p in ledger:
        if p["status"] == "paid":
            check(p["merchant_uid"] not in paid,
                  f"merchant_uid {p['merchant_uid']} paid twice at PortOne")
            paid[p["merchant_uid"]] = p
    rows = {c["merchant_uid"]: c for c in ws.charges()}
    for uid, p in paid.items():
        row = rows.get(uid)
        if check(row is not None, f"PortOne has a payment {uid} billingd does not know"):
            check(row["state"] in ("paid", "unknown", "reconciling", "sending", "parked"),
                  f"{uid} is paid at PortOne but billingd says {row['state']}")
            if row["state"] == "paid":
                check(row["imp_uid"] == p["imp_uid"], f"{uid}: imp_uid differs")
                check(row["amount"] == p["amount"], f"{uid}: amount differs")
    for uid, row in rows.items():
        if row["state"] == "paid":
            check(uid in paid, f"billingd says {uid} is paid but PortOne has no paid record")
    per_period = {}
    for row in rows.values():
        key = (row["subscription_id"], row["period_index"])
        check(key not in per_period, f"two charge rows for period {key}")
        per_period[key] = row
    with ws.db() as c:
        check(c.execute("PRAGMA integrity_check").fetchone()[0] == "ok", "integrity_check")
    check_never_resent_in_doubt(ws)
    return paid


def check_never_resent_in_doubt(ws):
    """From the journal: after a charge request whose answer is missing (crash) or unknown,
    the next request for that charge is a lookup, and only a lookup that found no payment (or
    only failed ones) lets a charge request follow."""
    with ws.db() as c:
        answers = {r[0]: r[1] for r in c.execute(
            "SELECT request_id, outcome FROM attempts WHERE phase = 'answer' AND kind IN ('charge', 'lookup')")}
        requests = c.execute("SELECT id, charge_id, kind FROM attempts WHERE phase = 'request' "
                             "ORDER BY charge_id, id").fetchall()
    in_doubt = {}
    for request_id, charge_id, kind in requests:
        outcome = answers.get(request_id)
        if kind == "charge":
            check(not in_doubt.get(charge_id, False),
                  f"charge {charge_id} was resent (request {request_id}) while in doubt")
            in_doubt[charge_id] = outcome is None or outcome == "unknown"
        elif kind == "lookup":
            in_doubt[charge_id] = outcome not in ("not_found", "declined", "paid")
