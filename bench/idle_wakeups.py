#!/usr/bin/env python3
"""How much an idle billingd costs: CPU time and wake-ups over a window with nothing due.

Not a test (it asserts nothing and is not registered with meson). Starts portone-sim and the
long-running billingd on 127.0.0.1 with one subscription whose next charge is weeks away,
waits for the first pass to finish, then samples /proc/<pid>/stat (utime + stime, all threads)
and the voluntary context switches of every thread (/proc/<pid>/task/*/status) over the window.
A voluntary context switch is the process going to sleep, so their rate approximates the
wake-ups per second.

    BILLINGD=build/daemon/billingd PORTONE_SIM=build/tools/portone-sim/portone-sim \\
        python3 bench/idle_wakeups.py [--seconds 60] [--watchdog-sec 60] [--subscriptions N]

--watchdog-sec N runs it as under systemd with WatchdogSec=N (NOTIFY_SOCKET + WATCHDOG_USEC),
so WATCHDOG=1 is sent every N/2 s.
"""
import argparse
import datetime
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
from harness import BILLINGD, Sim, Workspace  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After "pid (comm)": field 3 is state, so utime (14) and stime (15) are at 11 and 12.
    return (int(fields[11]) + int(fields[12])) / TICKS


def context_switches(pid):
    """(voluntary, involuntary, threads) summed over every thread of the process."""
    voluntary = involuntary = threads = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        voluntary += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        involuntary += int(line.split()[1])
            threads += 1
        except FileNotFoundError:
            pass  # a thread that just ended
    return voluntary, involuntary, threads


def drain(sock, received):
    while True:
        try:
            received.append(sock.recv(4096))
        except socket.timeout:
            continue
        except OSError:
            return


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--settle", type=float, default=5,
                        help="seconds to wait after start before sampling")
    parser.add_argument("--watchdog-sec", type=float, default=0)
    parser.add_argument("--subscriptions", type=int, default=1,
                        help="scheduled subscriptions in the database, none of them due")
    args = parser.parse_args()

    with Sim("--prefix", "pay-=pay") as sim:
        ws = Workspace(sim)
        ws.init_db()
        # Scheduled, not due: its first charge is 20 days away.
        future = (datetime.date.today() + datetime.timedelta(days=20)).isoformat()
        ws.add_subscription("pay-idle-1", future)
        if args.subscriptions > 1:
            due = int(time.time()) + 20 * 86400
            with ws.db() as c:
                c.executemany(
                    "INSERT INTO subscriptions (customer_uid, amount, order_name, interval_unit, "
                    "anchor_date, next_due_at) VALUES (?, 9900, 'idle', 'month', ?, ?)",
                    ((f"pay-idle-{i}", future, due) for i in range(2, args.subscriptions + 1)))

        env = dict(ws.env)
        notify = None
        received = []
        if args.watchdog_sec > 0:
            notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            path = os.path.join(tempfile.mkdtemp(dir=ws.dir), "notify.sock")
            notify.bind(path)
            notify.settimeout(0.5)
            # Read it as systemd does: an unread datagram socket fills up (net.unix.
            # max_dgram_qlen, often 10) and then sd_notify() blocks the daemon's event loop.
            threading.Thread(target=drain, args=(notify, received), daemon=True).start()
            env["NOTIFY_SOCKET"] = path
            env["WATCHDOG_USEC"] = str(int(args.watchdog_sec * 1_000_000))

        proc = subprocess.Popen([BILLINGD, "--config", ws.config_path], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(args.settle)
            if proc.poll() is not None:
                sys.exit(f"billingd exited early with {proc.returncode}")
            cpu0, (vol0, invol0, threads), t0 = (cpu_seconds(proc.pid),
                                                 context_switches(proc.pid), time.monotonic())
            time.sleep(args.seconds)
            cpu1, (vol1, invol1, _), t1 = (cpu_seconds(proc.pid), context_switches(proc.pid),
                                           time.monotonic())
            if proc.poll() is not None:
                sys.exit(f"billingd exited during the window with {proc.returncode}")
            with open(f"/proc/{proc.pid}/status") as f:
                memory = {line.split(":")[0]: line.split(":")[1].strip() for line in f
                          if line.startswith(("VmRSS", "VmHWM"))}
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        time.sleep(1)
        datagrams = len(received)
        watchdogs = sum(1 for d in received if b"WATCHDOG=1" in d)
        window = t1 - t0
        charges = ws.scalar("SELECT count(*) FROM charges")

    print(f"billingd idle for {window:.1f} s (nothing due; threads: {threads}; "
          f"charges: {charges}; watchdog: "
          f"{f'{args.watchdog_sec:g} s' if args.watchdog_sec else 'off'})")
    print(f"  CPU time:                   {cpu1 - cpu0:.3f} s "
          f"({100 * (cpu1 - cpu0) / window:.3f} % of one core)")
    print(f"  voluntary context switches: {vol1 - vol0} ({(vol1 - vol0) / window:.2f}/s "
          f"= wake-ups per second)")
    print(f"  involuntary switches:       {invol1 - invol0}")
    print(f"  memory:                     RSS {memory.get('VmRSS')}, peak {memory.get('VmHWM')} "
          f"({args.subscriptions} subscriptions)")
    if notify:
        print(f"  sd_notify datagrams:        {datagrams} in the whole run, {watchdogs} WATCHDOG=1")


if __name__ == "__main__":
    main()
