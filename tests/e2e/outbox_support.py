"""Helpers for the event delivery tests: a webhook receiver, signature checks with Python's
own hmac (an implementation independent of billingd's), an exec hook, and the daemon."""
import base64
import hashlib
import hmac
import http.server
import json
import os
import signal
import subprocess
import threading
import time

from harness import BILLINGD

# Two Standard Webhooks secrets (whsec_ + base64 of 32 bytes): current and previous.
SECRET = "whsec_" + base64.b64encode(b"billingd-test-secret-0123456789ab").decode()
PREVIOUS = "whsec_" + base64.b64encode(b"billingd-old-secret-0123456789abc").decode()


def expected_signature(secret, msg_id, timestamp, body):
    key = base64.b64decode(secret[len("whsec_"):])
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify(secret, headers, body):
    """The receiver's check, as the README shows it: any v1 signature may match."""
    msg_id, timestamp = headers.get("webhook-id"), headers.get("webhook-timestamp")
    if not msg_id or not timestamp:
        return False
    want = expected_signature(secret, msg_id, timestamp, body)
    return any(hmac.compare_digest(want, sig)
               for sig in headers.get("webhook-signature", "").split(" "))


class Receiver:
    """An HTTP receiver on 127.0.0.1. mode: "ok" (204), "fail" (503) or "hang" (answers after
    `hang_seconds`). Records every request: (mode at arrival, headers, body)."""

    def __init__(self, mode="ok", hang_seconds=30):
        self.mode = mode
        self.hang_seconds = hang_seconds
        self.requests = []
        self.open_requests = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                mode = receiver.mode
                with receiver.lock:
                    receiver.requests.append((mode, headers, body))
                    receiver.open_requests += 1
                try:
                    if mode == "hang":
                        time.sleep(receiver.hang_seconds)
                    status = 204 if mode == "ok" else 503
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.send_header("Connection", "close")
                    self.end_headers()
                except OSError:
                    pass
                finally:
                    with receiver.lock:
                        receiver.open_requests -= 1

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/billing"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def delivered(self):
        """[(event id, envelope, headers, body)] of requests answered 2xx, in arrival order."""
        with self.lock:
            return [(h["webhook-id"], json.loads(b), h, b)
                    for mode, h, b in self.requests if mode == "ok"]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def write_exec_hook(directory):
    """A hook that appends each event's JSON (its stdin) as one line to events.jsonl; hooks
    run concurrently, so it holds a lock while it writes."""
    out = os.path.join(directory, "events.jsonl")
    path = os.path.join(directory, "hook.sh")
    with open(path, "w") as f:
        f.write(f"#!/bin/sh\nexec 9>>'{out}'\nflock 9\n{{ cat; echo; }} >&9\n"
                f"env > '{directory}/hook.env'\n")
    os.chmod(path, 0o755)
    return path, out


def events_config(webhook_url=None, exec_path=None, **settings):
    lines = ["[events]"]
    if webhook_url:
        lines.append(f'webhook_url = "{webhook_url}"')
    if exec_path:
        lines.append(f'exec = ["{exec_path}"]')
    for k, v in settings.items():
        lines.append(f"{k} = {v}")
    return "\n".join(lines) + "\n"


def add_events_section(ws, section):
    with open(ws.config_path, "a") as f:
        f.write(section)


def merchant_events(ws):
    """Event ids the webhook must receive (merchant kinds), per the README's type table."""
    with ws.db() as c:
        rows = c.execute("SELECT id, subscription_id, kind, from_state, to_state FROM events "
                         "ORDER BY id").fetchall()
    out = []
    for r in rows:
        kind, frm, to = r["kind"], r["from_state"], r["to_state"]
        if kind == "subscription.status":
            merchant = to in ("past_due", "unpaid", "paused", "canceled", "ended") or (
                to == "active" and frm in ("trialing", "past_due"))
        else:
            merchant = kind in (
                "subscription.created", "subscription.resumed", "subscription.cancel_at_period_end",
                "subscription.trial_will_end", "charge.paid", "charge.declined",
                "charge.dunning_exhausted", "charge.parked", "charge.canceled", "charge.upcoming",
            ) or (kind == "charge.resolved" and to in ("paid", "canceled"))
        if merchant:
            out.append((r["id"], r["subscription_id"]))
    return out


class Daemon:
    """billingd without --once; stderr (the log) is collected line by line."""

    def __init__(self, ws, env=None):
        e = dict(ws.env)
        e.update(env or {})
        self.proc = subprocess.Popen([BILLINGD, "--config", ws.config_path], env=e,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def log(self):
        return "\n".join(self.lines)

    def running(self):
        return self.proc.poll() is None

    def terminate(self, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = None
        self.thread.join(timeout=5)
        return code

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.thread.join(timeout=5)


def poll(condition, limit, every=0.1):
    deadline = time.monotonic() + limit
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(every)
