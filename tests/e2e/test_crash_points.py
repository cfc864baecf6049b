"""Kill billingd with SIGKILL at each step of the charge protocol, restart it, and check
PortOne's ledger: no period paid twice, nothing left unresolved, integrity_check ok."""
import signal

from harness import Sim, Workspace, check, check_ledger_agrees, finish

STEPS = ["before_write_ahead_commit", "after_write_ahead_commit", "after_request_written",
         "before_outcome_commit"]

with Sim("--seed", "3", "--prefix", "pay-=pay", "--prefix", "decline-=decline") as sim:
    for step in STEPS:
        for occurrence in (1, 3):
            # Small batches so that every step is reached several times in one run.
            ws = Workspace(sim, max_in_flight=4, extra_billing="batch_size = 4")
            ws.init_db()
            subs = [ws.add_subscription(f"pay-{step[:6]}-{occurrence}-{i}", "2025-05-10")
                    for i in range(12)]
            subs += [ws.add_subscription(f"decline-{step[:6]}-{occurrence}-{i}", "2025-05-10")
                     for i in range(3)]
            as_of = "2025-05-10T01:00:00Z"
            r = ws.once(as_of=as_of, env={"BILLINGD_CRASH_AT": f"{step}:{occurrence}"})
            check(r.returncode == -signal.SIGKILL,
                  f"{step}:{occurrence}: expected a SIGKILL, got {r.returncode} {r.stderr[-300:]}")
            # Only what is on the wire is written ahead: at most max_in_flight rows in doubt.
            in_doubt = ws.scalar("SELECT count(*) FROM charges WHERE state = 'sending'")
            check(in_doubt <= 4, f"{step}:{occurrence}: {in_doubt} rows in doubt (> max_in_flight 4)")
            if step in ("after_write_ahead_commit", "after_request_written"):
                check(in_doubt > 0, f"{step}: the crash left no 'sending' row")
            # The restart looks every row in doubt up at once; "no record" is trusted only past
            # the trust floor (106 s with these timeouts: see daemon::trust_floor), so a row
            # whose request never left stays in doubt until a run after the floor.
            r = ws.once(as_of=as_of)
            check(r.returncode in (0, 1), f"{step}:{occurrence}: restart exited {r.returncode}: {r.stderr[-500:]}")
            check(ws.scalar("SELECT count(*) FROM charges WHERE state IN ('sending', 'reconciling')") == 0,
                  f"{step}:{occurrence}: rows left on the wire after the restart")
            r = ws.once(as_of="2025-05-10T01:05:00Z")
            check(r.returncode == 0, f"{step}:{occurrence}: run past the floor exited {r.returncode}: {r.stderr[-500:]}")
            paid = check_ledger_agrees(ws, sim)
            states = [c["state"] for c in ws.charges()]
            check(all(s in ("paid", "declined") for s in states),
                  f"{step}:{occurrence}: unresolved states after restart: {states}")
            for sub in subs[:12]:
                check(ws.uid(sub, 0) in paid, f"{step}:{occurrence}: subscription {sub} not paid")
            check(ws.scalar("SELECT count(*) FROM charges WHERE state = 'paid'") == 12,
                  f"{step}:{occurrence}: paid rows")

finish("crash points")
