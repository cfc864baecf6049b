"""Prometheus metrics: a running billingd is scraped during a pass (charges on the wire) and
after it, and every number is checked against the database; `promtool check metrics` runs on
the real scrapes; the endpoint's bounds; `billingctl metrics`; the loopback rule."""
import datetime
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

from harness import BILLINGCTL, BILLINGD, Sim, Workspace, check, finish

PROMTOOL = shutil.which("promtool")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        check(r.headers["Content-Type"].startswith("text/plain; version=0.0.4"),
              f"content type {r.headers['Content-Type']}")
        return r.read().decode()


def parse(text):
    """{(name, frozenset(labels)): value} of a text exposition."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)', line)
        if not check(m is not None, f"malformed sample line {line!r}"):
            continue
        labels = frozenset(re.findall(r'([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def promtool_check(text, what):
    if not check(PROMTOOL is not None, "promtool is installed (Debian package prometheus)"):
        return
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    check(r.returncode == 0, f"promtool check metrics on {what}: {r.stdout}{r.stderr}")


def wait_for(what, predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    check(False, f"timed out waiting for {what}")
    return False


def database_numbers(ws):
    now = int(time.time())
    q = ws.scalar
    return {
        "paid": q("SELECT count(*) FROM charges WHERE state = 'paid'"),
        "paid_amount": q("SELECT sum(amount) FROM charges WHERE state = 'paid'"),
        "declined": q("SELECT count(*) FROM events WHERE to_state = 'declined'"),
        "in_doubt": q("SELECT count(*) FROM charges WHERE state IN ('sending', 'unknown', 'reconciling')"),
        "in_doubt_amount": q("SELECT coalesce(sum(amount), 0) FROM charges WHERE state IN ('sending', 'unknown', 'reconciling')"),
        "parked": q("SELECT count(*) FROM charges WHERE state = 'parked'"),
        "due_subscriptions": q("SELECT count(*) FROM subscriptions WHERE next_due_at <= ? AND needs_attention IS NULL AND status IN ('trialing', 'active', 'past_due')", now),
        "due_charges": q("SELECT count(*) FROM charges WHERE next_action_at <= ?", now),
        "charge_answers_paid": q("SELECT count(*) FROM attempts WHERE kind = 'charge' AND phase = 'answer' AND outcome = 'paid'"),
        "charge_answers_declined": q("SELECT count(*) FROM attempts WHERE kind = 'charge' AND phase = 'answer' AND outcome = 'declined'"),
        "charge_answers": q("SELECT count(*) FROM attempts WHERE kind = 'charge' AND phase = 'answer'"),
        "active": q("SELECT count(*) FROM subscriptions WHERE status = 'active'"),
        "past_due": q("SELECT count(*) FROM subscriptions WHERE status = 'past_due'"),
    }


def compare(samples, db, when):
    """The scrape's numbers are the database's."""
    pairs = [
        (value(samples, "billingd_charge_outcomes_total", outcome="paid"), db["paid"], "paid outcomes"),
        (value(samples, "billingd_charge_outcomes_total", outcome="declined"), db["declined"], "declined outcomes"),
        (value(samples, "billingd_charges_in_doubt"), db["in_doubt"], "charges in doubt"),
        (value(samples, "billingd_charges_in_doubt_amount"), db["in_doubt_amount"], "amount in doubt"),
        (value(samples, "billingd_charges_parked"), db["parked"], "parked"),
        (value(samples, "billingd_due_backlog", kind="subscription"), db["due_subscriptions"], "due subscriptions"),
        (value(samples, "billingd_due_backlog", kind="charge"), db["due_charges"], "due charges"),
        (value(samples, "billingd_portone_requests_total", endpoint="charge", **{"class": "paid"}),
         db["charge_answers_paid"], "charge requests answered paid"),
        (value(samples, "billingd_portone_requests_total", endpoint="charge", **{"class": "declined"}),
         db["charge_answers_declined"], "charge requests answered declined"),
        (value(samples, "billingd_portone_request_duration_seconds_count", endpoint="charge"),
         db["charge_answers"], "charge latency observations"),
        (value(samples, "billingd_subscriptions", status="active"), db["active"], "active subscriptions"),
        (value(samples, "billingd_paid_charges_total", currency="KRW"), db["paid"], "paid charges total"),
        (value(samples, "billingd_paid_revenue_total", currency="KRW"), db["paid_amount"], "paid revenue total"),
        (value(samples, "billingd_subscriptions", status="past_due"), db["past_due"], "past_due subscriptions"),
    ]
    for got, want, what in pairs:
        check(got == want, f"{when}: {what}: metrics say {got}, the database {want}")


def local_yesterday():
    seoul = datetime.timezone(datetime.timedelta(hours=9))
    return (datetime.datetime.now(seoul) - datetime.timedelta(days=1)).strftime("%Y-%m-%d")


with Sim("--seed", "14", "--prefix", "pay-=pay", "--prefix", "dec-=decline:한도초과") as sim:
    port = free_port()
    ws = Workspace(sim, charge_timeout_ms=15000, lookup_timeout_ms=15000)
    with open(ws.config_path, "a") as f:
        f.write(f'[metrics]\nlisten = "127.0.0.1:{port}"\n')
    ws.init_db()
    yesterday = local_yesterday()
    for i in range(6):
        ws.add_subscription(f"pay-{i}", yesterday, charge_time="00:00")
    for i in range(2):
        ws.add_subscription(f"dec-{i}", yesterday, charge_time="00:00", amount=5000)

    daemon = subprocess.Popen([BILLINGD, "--config", ws.config_path], env=ws.env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        def up():
            try:
                scrape(port)
                return True
            except (urllib.error.URLError, ConnectionError):
                return False
        wait_for("the metrics endpoint", up)
        wait_for("the first 8 charges to settle",
                 lambda: ws.scalar("SELECT count(*) FROM charges WHERE state IN ('paid', 'declined')") == 8)
        wait_for("a completed pass", lambda: (value(parse(scrape(port)),
                 "billingd_last_pass_completed_timestamp_seconds") or 0) > 0)
        first = scrape(port)
        compare(parse(first), database_numbers(ws), "after the first pass")
        promtool_check(first, "a scrape after a pass")

        # During a pass: PortOne answers charges after 4 s, so three charges sit on the wire
        # (sending) while the database stands still; the scrape must be answered meanwhile.
        sim.set_faults(["charge:latency_ms=4000:1.0"])
        passes_before = value(parse(first), "billingd_passes_total")
        for i in range(3):
            ws.add_subscription(f"pay-late-{i}", yesterday, charge_time="00:00", amount=7000)
        wait_for("three charges on the wire",
                 lambda: ws.scalar("SELECT count(*) FROM charges WHERE state = 'sending'") == 3)
        during_text = scrape(port)
        during = parse(during_text)
        db_during = database_numbers(ws)
        still_sending = ws.scalar("SELECT count(*) FROM charges WHERE state = 'sending'")
        check(still_sending == 3, f"the scrape was answered while the charges were on the wire "
                                  f"({still_sending} still sending)")
        compare(during, db_during, "during a pass")
        check(value(during, "billingd_charges_in_doubt") == 3, "three in doubt during the pass")
        check(value(during, "billingd_charges_in_doubt_amount") == 21000, "their amount")
        check(value(during, "billingd_passes_total") == passes_before,
              "the scrape came before the pass completed")
        check((value(during, "billingd_sqlite_commit_duration_seconds_count") or 0) > 0,
              "commits were timed")
        check(value(during, "billingd_build_info", version=ws.billingd("--version").stdout.split()[-1]) == 1,
              "build_info carries the version")
        check(value(during, "billingd_circuit_breaker_open") == 0 and value(during, "billingd_halted") == 0,
              "breaker closed, not halted")
        promtool_check(during_text, "a scrape during a pass")

        # A client that connects and sends nothing, many times over, does not hold charging up.
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
        sim.set_faults([])
        ws.add_subscription("pay-while-idle", yesterday, charge_time="00:00")
        wait_for("the charges settle while idle connections are held",
                 lambda: ws.scalar("SELECT count(*) FROM charges WHERE state = 'paid'") == 10)
        for s in idle:
            s.close()
        wait_for("the endpoint answers again once the idle connections are gone", up)
        wait_for("everything settled", lambda: database_numbers(ws)["in_doubt"] == 0 and
                 ws.scalar("SELECT count(*) FROM charges WHERE state = 'paid'") == 10)
        wait_for("the pass completed", lambda: (value(parse(scrape(port)), "billingd_passes_total") or 0) > passes_before)
        after = scrape(port)
        compare(parse(after), database_numbers(ws), "after the pass")
        promtool_check(after, "a scrape after everything settled")

        # Only GET /metrics.
        req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", data=b"x", method="POST")
        try:
            urllib.request.urlopen(req, timeout=10)
            check(False, "POST /metrics is refused")
        except urllib.error.HTTPError as e:
            check(e.code == 405, f"POST /metrics: {e.code}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10)
            check(False, "GET / is refused")
        except urllib.error.HTTPError as e:
            check(e.code == 404, f"GET /: {e.code}")

        # billingctl metrics: the same database gauges, for the textfile collector.
        r = subprocess.run([BILLINGCTL, "--config", ws.config_path, "metrics"], capture_output=True,
                           text=True, env=ws.env, timeout=60)
        check(r.returncode == 0, f"billingctl metrics: {r.stderr}")
        ctl = parse(r.stdout)
        served = parse(scrape(port))
        for name in ("billingd_charges_in_doubt", "billingd_charges_parked",
                     "billingd_subscriptions_needing_attention", "billingd_charges_parked_amount"):
            check(value(ctl, name) == value(served, name), f"billingctl metrics {name}")
        check(value(ctl, "billingd_subscriptions", status="active") ==
              value(served, "billingd_subscriptions", status="active"), "billingctl metrics by status")
        check(value(ctl, "billingd_charge_outcomes_total", outcome="paid") is None,
              "billingctl prints no process counters")
        promtool_check(r.stdout, "billingctl metrics")
        out = os.path.join(ws.dir, "billingd.prom")
        r = subprocess.run([BILLINGCTL, "--config", ws.config_path, "metrics", "--output", out],
                           capture_output=True, text=True, env=ws.env, timeout=60)
        check(r.returncode == 0 and r.stdout == "" and os.path.exists(out) and
              not os.path.exists(out + ".tmp"), f"--output writes the file: {r.stderr}")
        r = subprocess.run([BILLINGCTL, "--config", ws.config_path, "metrics", "--output",
                            os.path.join(ws.dir, "no", "such", "dir.prom")],
                           capture_output=True, text=True, env=ws.env, timeout=60)
        check(r.returncode == 73 and "cannot write" in r.stderr, f"--output to nowhere: {r.returncode} {r.stderr}")
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
    check(daemon.returncode == 0, f"billingd exit {daemon.returncode}: {daemon.stderr.read()[-500:]}")

    # The endpoint listens on loopback (or a unix socket) unless exposure is explicit.
    def config_check(metrics_section):
        ws.write_config()
        with open(ws.config_path, "a") as f:
            f.write("[metrics]\n" + metrics_section)
        return ws.billingd("--check-config")
    r = config_check('listen = "0.0.0.0:9464"\n')
    check(r.returncode == 78 and "not a loopback address" in r.stderr and "allow_non_loopback" in r.stderr,
          f"0.0.0.0 refused: {r.returncode} {r.stderr}")
    r = config_check('listen = "0.0.0.0:9464"\nallow_non_loopback = true\n')
    check(r.returncode == 0, f"0.0.0.0 with allow_non_loopback: {r.returncode} {r.stderr}")
    for bad in ('listen = "127.0.0.1"\n', 'listen = "127.0.0.1:70000"\n', 'listen = "example.com:9464"\n',
                'listen = "unix:relative.sock"\n', 'allow_non_loopback = "yes"\n'):
        r = config_check(bad)
        check(r.returncode == 78 and "metrics." in r.stderr, f"{bad.strip()}: {r.returncode} {r.stderr}")
    for good in ('listen = "[::1]:9464"\n', 'listen = "localhost:9464"\n', 'listen = "unix:/run/billingd/metrics.sock"\n'):
        r = config_check(good)
        check(r.returncode == 0, f"{good.strip()}: {r.returncode} {r.stderr}")

    # A unix socket endpoint answers too, and a port in use is a clear configuration error.
    sock_path = os.path.join(ws.dir, "metrics.sock")
    ws.write_config()
    with open(ws.config_path, "a") as f:
        f.write(f'[metrics]\nlisten = "unix:{sock_path}"\n')
    daemon = subprocess.Popen([BILLINGD, "--config", ws.config_path], env=ws.env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for("the unix socket", lambda: os.path.exists(sock_path))
        def unix_scrape():
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(10)
                s.connect(sock_path)
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: billingd\r\n\r\n")
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
                return data.decode()
        text = unix_scrape()
        check(text.startswith("HTTP/1.1 200") and "billingd_charges_in_doubt 0" in text,
              f"scrape over the unix socket: {text[:200]}")
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    ws.write_config()
    with open(ws.config_path, "a") as f:
        f.write(f'[metrics]\nlisten = "127.0.0.1:{busy.getsockname()[1]}"\n')
    r = ws.billingd(timeout=60)
    check(r.returncode == 78 and "cannot listen" in r.stderr, f"a port in use: {r.returncode} {r.stderr[-300:]}")
    busy.close()

finish("metrics")
