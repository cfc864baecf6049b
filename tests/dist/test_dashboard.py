"""The Grafana dashboard parses, its panels have queries, and every metric a panel or an alert
rule reads is one billingd really exports: the names are taken from a scrape of a running
billingd (after a pass, so histograms and counters have series)."""
import datetime
import json
import os
import re
import socket
import subprocess
import time
import urllib.request

from harness import BILLINGD, Sim, Workspace, check, finish

ROOT = os.environ["BILLINGD_SOURCE_ROOT"]
DASHBOARD = os.path.join(ROOT, "dist", "grafana", "billingd.json")
RULES = os.path.join(ROOT, "dist", "prometheus", "billingd.rules.yml")
PROMQL_WORDS = {"sum", "by", "rate", "increase", "histogram_quantile", "time", "absent", "le",
                "without", "max", "min", "avg", "count", "irate", "humanizeDuration"}


def metric_names(expr):
    """The metric names an expression reads (billingd_* identifiers outside label matchers)."""
    expr = re.sub(r'\{[^}]*\}', '', expr)
    return set(re.findall(r'\bbillingd_[a-z0-9_]+\b', expr))


def exported(scrape_text):
    """Sample names of a scrape; a histogram's _bucket/_sum/_count come with it."""
    return {line.split("{")[0].split(" ")[0] for line in scrape_text.splitlines()
            if line and not line.startswith("#")}


with open(DASHBOARD, encoding="utf-8") as f:
    dashboard = json.load(f)  # raises (fails the test) when it is not JSON
check(dashboard.get("title") == "billingd" and dashboard.get("uid"), "title and uid")
panels = dashboard.get("panels", [])
titles = [p.get("title", "") for p in panels]
for wanted in ("Revenue per day", "Charge outcomes", "Due backlog", "In doubt and parked",
               "PortOne latency p50 / p95 / p99"):
    check(wanted in titles, f"a panel {wanted!r} (panels: {titles})")
check(len({p["id"] for p in panels}) == len(panels), "panel ids are unique")
used = {}
for p in panels:
    targets = p.get("targets", [])
    check(targets and all(t.get("expr") for t in targets), f"panel {p.get('title')} has queries")
    for t in targets:
        for name in metric_names(t.get("expr", "")):
            used.setdefault(name, p["title"])
with open(RULES) as f:
    for line in f:
        if line.strip().startswith("expr:"):
            for name in metric_names(line.split("expr:", 1)[1]):
                used.setdefault(name, "alert rule: " + line.strip())

with Sim("--seed", "3", "--prefix", "pay-=pay") as sim:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ws = Workspace(sim)
    with open(ws.config_path, "a") as f:
        f.write(f'[metrics]\nlisten = "127.0.0.1:{port}"\n')
    ws.init_db()
    seoul = datetime.timezone(datetime.timedelta(hours=9))
    yesterday = (datetime.datetime.now(seoul) - datetime.timedelta(days=1)).strftime("%Y-%m-%d")
    ws.add_subscription("pay-1", yesterday, charge_time="00:00")
    daemon = subprocess.Popen([BILLINGD, "--config", ws.config_path], env=ws.env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    text = ""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    text = r.read().decode()
                if re.search(r'^billingd_passes_total [1-9]', text, re.M) and \
                        'billingd_paid_revenue_total{currency="KRW"}' in text:
                    break
            except OSError:
                pass
            time.sleep(0.1)
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
    names = exported(text)
    check(len(names) > 20, f"a real scrape ({len(names)} names)")
    for name, where in sorted(used.items()):
        check(name in names, f"{where} reads {name}, which billingd does not export")
    check(len(used) >= 12, f"the dashboard and rules read {len(used)} metrics")
finish("dist dashboard")
