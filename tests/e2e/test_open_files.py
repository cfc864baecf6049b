"""1,024 in flight under the open-files limit a service starts with.

systemd (and most shells) start a service with a soft limit of 1,024 open files. billingd needs
one socket per request in flight: it raises its soft limit to the hard limit at start, and
refuses a configuration the hard limit cannot carry (exit 78, naming both figures) instead of
failing charges later with "too many open files".
"""
import resource
import subprocess

import harness
from harness import Sim, Workspace, check, check_ledger_agrees, finish

ANCHOR = "2026-03-02"
AT = "2026-03-02T01:00:00Z"  # 10:00 KST


def limited(soft, hard):
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def run_once(ws, soft, hard):
    return subprocess.run([harness.BILLINGD, "--config", ws.config_path, "--once", "--as-of", AT],
                          capture_output=True, text=True, env=ws.env, timeout=300,
                          preexec_fn=limited(soft, hard))


_, hard_now = resource.getrlimit(resource.RLIMIT_NOFILE)
roomy = hard_now if hard_now != resource.RLIM_INFINITY else 65536

# A hard limit below what max_in_flight needs: refused at start, nothing sent.
with Sim("--prefix", "fd-=pay") as sim:
    ws = Workspace(sim, max_in_flight=1024)
    ws.init_db()
    ws.add_subscription("fd-refused", ANCHOR)
    r = run_once(ws, 256, 256)
    check(r.returncode == 78, f"hard limit 256 with max_in_flight 1024: exit {r.returncode}")
    check("max_in_flight = 1024 needs 1088 open files" in r.stderr and "hard limit is 256" in r.stderr,
          f"the message names what is needed and the limit: {r.stderr[-400:]}")
    check(not sim.ledger(), "nothing was charged")

# A soft limit of 256 with room above it: raised, and 600 charges at 512 in flight go through.
if roomy >= 1024:
    with Sim("--prefix", "fd-=pay", "--fault", "charge:latency_ms=500:1.0") as sim:
        ws = Workspace(sim, max_in_flight=512, charge_timeout_ms=20000)
        ws.init_db()
        subs = [ws.add_subscription(f"fd-{i}", ANCHOR) for i in range(600)]
        r = run_once(ws, 256, roomy)
        check(r.returncode == 0, f"soft limit 256 raised: exit {r.returncode}: {r.stderr[-600:]}")
        check("open files" not in r.stderr.lower(), f"no descriptor ran out: {r.stderr[-600:]}")
        paid = check_ledger_agrees(ws, sim)
        check(len(paid) == 600, f"all 600 paid ({len(paid)})")
        # Each charge holds its connection for the 500 ms latency: arrivals within one such
        # window were on the wire together.
        arrivals = sorted(t for v in sim.requests().values() for t in v["charge_arrivals_ms"])
        most, first = 0, 0
        for last, t in enumerate(arrivals):
            while arrivals[first] <= t - 450:
                first += 1
            most = max(most, last - first + 1)
        check(most > 256, f"more requests at once ({most}) than the soft limit at start allows")
        print(f"open files: 600 paid with a soft limit of 256 at start", flush=True)
else:
    print(f"note: hard limit {hard_now} leaves no room to raise the soft limit; skipped")

finish("open files")
