"""The Prometheus alert rules: `promtool check rules` and `promtool test rules` (the unit tests
in dist/prometheus/billingd.rules.test.yml)."""
import os
import shutil
import subprocess

from harness import check, finish

ROOT = os.environ["BILLINGD_SOURCE_ROOT"]
RULES_DIR = os.path.join(ROOT, "dist", "prometheus")
promtool = shutil.which("promtool")
if check(promtool is not None, "promtool is installed (Debian package prometheus; scripts/install-deps)"):
    r = subprocess.run([promtool, "check", "rules", "billingd.rules.yml"], cwd=RULES_DIR,
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0 and "SUCCESS" in r.stdout, f"promtool check rules: {r.stdout}{r.stderr}")
    r = subprocess.run([promtool, "test", "rules", "billingd.rules.test.yml"], cwd=RULES_DIR,
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0 and "SUCCESS" in r.stdout, f"promtool test rules: {r.stdout}{r.stderr}")
    # Every alert the issue asks for exists and is tested.
    with open(os.path.join(RULES_DIR, "billingd.rules.yml")) as f:
        rules = f.read()
    with open(os.path.join(RULES_DIR, "billingd.rules.test.yml")) as f:
        tests = f.read()
    for alert in ("BillingdChargeInDoubtTooLong", "BillingdDueBacklogOld",
                  "BillingdCircuitBreakerOpen", "BillingdHalted", "BillingdNoRecentPass"):
        check(f"alert: {alert}" in rules, f"rule {alert} exists")
        check(f"alertname: {alert}" in tests, f"rule {alert} has a unit test")

# meson install puts the rules, the dashboard and billingctl's bash completion in place.
meson = shutil.which("meson")
if check(meson is not None, "meson is on PATH"):
    r = subprocess.run([meson, "introspect", "--installed", os.environ["BILLINGD_BUILD_ROOT"]],
                       capture_output=True, text=True, timeout=60)
    import json
    installed = json.loads(r.stdout or "{}").values() if r.returncode == 0 else []
    installed = list(installed)
    for suffix in ("share/billingd/prometheus/billingd.rules.yml",
                   "share/billingd/grafana/billingd.json",
                   "share/bash-completion/completions/billingctl"):
        check(any(p.endswith(suffix) for p in installed), f"meson installs {suffix}: {installed}")
finish("dist rules")
