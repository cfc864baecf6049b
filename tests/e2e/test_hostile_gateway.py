"""Hostile gateway: the real billingd against a misbehaving PortOne V1 stand-in (issue 11).

The stand-in (class StandIn below, raw sockets and one thread per connection on 127.0.0.1)
implements just enough of PortOne V1 - POST /users/getToken, POST /subscribe/payments/again,
GET /payments/findAll/{merchant_uid}, GET /subscribe/customers/{customer_uid} - and in each case
misbehaves in one chosen way on the token, the charge or the lookup. It keeps its own ledger
(the payments "PortOne" made) and a record of every request it parsed, byte for byte, so every
case can check money as PortOne sees it.

Every case runs `billingd --once --as-of 2025-05-10T01:00:00Z` on a fresh database with one or
two due subscriptions (charge_timeout_ms = lookup_timeout_ms = connect_timeout_ms = 2000) and
checks, besides what the case itself expects (CASES below):
  * bounded time: the run ends by itself in < 60 s (it is killed at 75 s);
  * exit code: the case's expected one; never 70, never a signal;
  * bounded memory: the child's ru_maxrss (os.wait4, per process) < 200 MB;
  * money: at most one charge request and one payment per merchant_uid at the stand-in; a charge
    `paid` in billingd has a paid record with its imp_uid; never resent while in doubt
    (harness.check_never_resent_in_doubt); PRAGMA integrity_check;
  * secrets: the imp_key, the imp_secret and every access token the stand-in issued appear
    nowhere in `sqlite3 <db> .dump` (every table), in stdout or in stderr (the log, with
    [log] level = "debug"; the systemd journal is the same lines);
  * the wire: no request the stand-in did not expect (a smuggled one), no injected header.

Cases (expected outcome in brackets):
  1  slowloris: the answer one byte per second (charge; lookup; token)   [settled by lookup]
  2  Content-Length: 10 GB, a few bytes, then silence (charge; lookup; token)
  3  an endless chunked body (charge; lookup; token)
  4  a 50 MB JSON body (charge; lookup; token)
  5  100,000-deep nested JSON: a bare array, and inside a paid envelope (charge; lookup; token)
     For 1-5 on the charge the stand-in made the payment, so billingd must end `paid` through
     its lookup with exit 0; on the lookup the charge stays in doubt (exit 1, not resent); on
     getToken nothing is charged (except when the deep field sits beside a valid token: a
     readable answer).
  6  302 and 307 redirects on the charge: charging halts (exit 1), the charge stays in doubt,
     is not resent, the redirect is not followed, the second subscription is not sent.
  7  duplicate Content-Length (conflicting), Content-Length + Transfer-Encoding, duplicate
     header names: settled paid (directly or by lookup), exit 0.
  8  the bearer token / key / secret echoed back: HTTP 500 text and JSON, HTTP 200 code -1,
     a decline whose fail_reason holds them, a lookup's failed payment holding them, a getToken
     500 echoing its body: none of them may reach the database or the log.
  9  an access_token with CRLF + an injected header (and a smuggled second request; and a bare
     LF): refused as a configuration error (exit 78, or exit 1 with charging halted); the
     stand-in never sees X-Injected, a second request on the connection, or any charge.
  10 a "paid" payment whose amount is 9223372036854775808 or 1e30: not paid, in doubt or
     parked; the amount reported as received text (park reason, events or the journal's
     message), never as a wrapped negative number.
  11 a decline whose fail_reason is EUC-KR bytes (invalid UTF-8) in a valid envelope: the
     charge is `declined` (dunning continues: past_due, a retry date), the reason kept as
     escaped bytes in valid UTF-8 - not `unknown` forever.
  12 TLS: an untrusted self-signed certificate, and a trusted one for another host name: nothing
     sent, charging halted with a TLS / certificate message, --once exits non-zero; with the
     right CA the charge is paid.

FINDINGS: the cases in FINDINGS (marked "FINDING" in cases()) failed against billingd built from
commit 3a8615b (the state before the gateway fix for issue 11) and pass since f6e820d ("gateway:
nothing it returns holds a secret; ..."). The summary at the end labels them; any failing case
fails the suite.

Run one or a few cases by name: python3 test_hostile_gateway.py slowloris "EUC-KR".
"""
import dataclasses
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Optional

from harness import BILLINGD, Workspace, check, check_never_resent_in_doubt, failures, finish

KEY = "KEY-7f3a1c9e5d2b8a64"
SECRET = "SECRET-9b2c6e0f4a8d1357"
TOKEN = "tok123"              # every token the stand-in issues starts with this
AS_OF = "2025-05-10T01:00:00Z"
ANCHOR = "2025-05-10"         # 10:00 Asia/Seoul that day is 01:00 UTC
T0 = 1746838800               # AS_OF in UNIX seconds
WALL_LIMIT = 60               # seconds a run may take
KILL_AFTER = 75               # seconds after which a run is killed (and fails)
MAXRSS_LIMIT_KB = 200 * 1024
INT64_WRAPPED = "-9223372036854775808"
EUC_KR_LIMIT = b"\xc7\xd1\xb5\xb5\xc3\xca\xb0\xfa"  # "한도초과" in EUC-KR, not UTF-8

# Cases that failed against billingd at 3a8615b (issue 11 findings; fixed by f6e820d), with what
# that build did. Only used to label the summary.
FINDINGS = {
    # 8: fail_reason comes from the unscrubbed payment: token, key and secret reach
    #    charges.fail_reason, events.detail and the decision log line.
    "decline whose fail_reason holds the token and the secret",
    "lookup finds a failed payment whose fail_reason holds the token and the secret",
    # 9: the token is used as it is: X-Injected reaches PortOne on the charge (and its resend
    #    after the 401); the smuggled GET /smuggled is sent and its 404 is read as the answer to
    #    the next getToken on the connection (a response desync); exit 1 via "HTTP 401" or 0.
    "access_token with CRLF and an injected header",
    "access_token smuggling a second request",
    "access_token with a bare LF and an injected header",
    # 10: 9223372036854775808 wraps to -9223372036854775808 in the ANOMALY park reason;
    #     1e30 is only "code 0 without a readable payment" / "malformed payment in list".
    "paid amount 9223372036854775808",
    "paid amount 1e30",
    # 11: "HTTP 200 with a non-JSON body", then "without a PortOne envelope": unknown, exit 1.
    "decline with an EUC-KR fail_reason",
    # 12: certificate verify failed is "transient", retried, and --once says "result: ok".
    "TLS with an untrusted self-signed certificate",
    "TLS with a trusted certificate for another host name",
}


# ---------------------------------------------------------------------------------------------
# The stand-in

class Request:
    def __init__(self, conn_id, method, target, headers, body, head):
        self.conn_id = conn_id
        self.method = method
        self.target = target
        self.path = target.split("?", 1)[0]
        self.headers = headers      # [(name, value)] in arrival order, duplicates kept
        self.body = body
        self.head = head            # the raw request head, without the blank line

    def header(self, name):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None


REASONS = {200: "OK", 302: "Found", 307: "Temporary Redirect", 400: "Bad Request",
           401: "Unauthorized", 404: "Not Found", 500: "Internal Server Error"}


def response_bytes(status, body, headers=None, content_type="application/json; charset=utf-8"):
    """A well-formed HTTP/1.1 response (keep-alive) unless headers say otherwise."""
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Whatever')}"]
    if headers is None:
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    lines += [f"{n}: {v}" for n, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def envelope(code, message, response_json_bytes):
    return (b'{"code":' + str(code).encode() + b',"message":' +
            json.dumps(message, ensure_ascii=False).encode() + b',"response":' +
            response_json_bytes + b"}")


class StandIn:
    """A PortOne V1 stand-in on 127.0.0.1 that misbehaves as a case tells it.

    token_writer / charge_writer / lookup_writer: f(standin, conn, req, honest_body) -> keep_alive
    writes the answer (honest_body is what PortOne would have answered); None = honest.
    charge_effect: what PortOne did with the charge: "paid", "failed" or None (nothing), or
    f(standin, req) -> raw payment JSON bytes | None.
    """

    def __init__(self, token_writer=None, charge_writer=None, lookup_writer=None,
                 charge_effect="paid", fail_reason=None, token_value=TOKEN, tls=None):
        self.token_writer = token_writer
        self.charge_writer = charge_writer
        self.lookup_writer = lookup_writer
        self.charge_effect = charge_effect
        self.fail_reason = fail_reason
        self.token_value = token_value
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.requests = []          # every request parsed, in order
        self.anomalies = []         # anything on the wire billingd should never send
        self.tls_failures = []
        self.tokens_issued = []
        self.hostile = {}           # "token" / "charge" / "lookup" -> hostile answers written
        self.ledger = {}            # merchant_uid -> [(status, imp_uid, raw payment bytes)]
        self.charges = {}           # merchant_uid -> charge requests received
        self.lookups = {}           # merchant_uid -> lookups received
        self.imp_counter = 0
        self.threads = []
        self.tls_context = None
        if tls:
            self.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls_context.load_cert_chain(tls[0], tls[1])
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.base_url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    # -- lifecycle
    def stop(self):
        self.stopping.set()
        self.acceptor.join(timeout=5)
        self.sock.close()
        for t in self.threads:
            t.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _accept(self):
        conn_id = 0
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn_id += 1
            t = threading.Thread(target=self._serve, args=(conn, conn_id), daemon=True)
            self.threads.append(t)
            t.start()

    # -- helpers for writers
    def wait_closed(self, conn, limit=90):
        """Reads and discards until the peer closes the connection (or the stand-in stops)."""
        deadline = time.monotonic() + limit
        conn.settimeout(0.2)
        while not self.stopping.is_set() and time.monotonic() < deadline:
            try:
                if not conn.recv(65536):
                    return
            except socket.timeout:
                continue
            except (OSError, ssl.SSLError):
                return

    def send(self, conn, data):
        """sendall; False when the peer is gone."""
        try:
            conn.sendall(data)
            return True
        except (OSError, ssl.SSLError):
            return False

    def count_hostile(self, target):
        with self.lock:
            self.hostile[target] = self.hostile.get(target, 0) + 1

    def note(self, text):
        with self.lock:
            self.anomalies.append(text)

    # -- the connection loop
    def _recv(self, conn):
        try:
            return conn.recv(65536)
        except socket.timeout:
            return None
        except (OSError, ssl.SSLError):
            return b""

    def _serve(self, conn, conn_id):
        try:
            conn.settimeout(2.0)
            if self.tls_context:
                try:
                    conn = self.tls_context.wrap_socket(conn, server_side=True)
                except (OSError, ssl.SSLError) as e:
                    with self.lock:
                        self.tls_failures.append(str(e))
                    return
            conn.settimeout(0.2)
            buf = b""
            idle_since = time.monotonic()
            while not self.stopping.is_set():
                # Lenient framing on purpose (bare LF ends a line too), so that anything a
                # lenient server or proxy would see as an extra header or request is seen.
                m = re.search(rb"\r?\n\r?\n", buf)
                if not m:
                    if len(buf) > 65536:
                        self.note(f"conn {conn_id}: request head over 64 KiB")
                        return
                    data = self._recv(conn)
                    if data is None:
                        if time.monotonic() - idle_since > 120:
                            return
                        continue
                    if not data:
                        if buf.strip():
                            self.note(f"conn {conn_id}: {len(buf)} stray bytes before close: "
                                      f"{buf[:200]!r}")
                        return
                    buf += data
                    idle_since = time.monotonic()
                    continue
                head, buf = buf[:m.start()], buf[m.end():]
                lines = re.split(rb"\r?\n", head)
                request_line = lines[0].decode("latin-1")
                headers = []
                for line in lines[1:]:
                    if b"\r" in line:
                        self.note(f"conn {conn_id}: bare CR in header line {line!r}")
                    name, sep, value = line.partition(b":")
                    if not sep:
                        self.note(f"conn {conn_id}: malformed header line {line!r}")
                        continue
                    headers.append((name.decode("latin-1").strip(),
                                    value.decode("latin-1").strip()))
                parts = request_line.split(" ")
                if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                    self.note(f"conn {conn_id}: malformed request line {request_line!r}")
                method, target = parts[0], (parts[1] if len(parts) > 1 else "")
                lengths = [v for n, v in headers if n.lower() == "content-length"]
                if len(lengths) > 1:
                    self.note(f"conn {conn_id}: {len(lengths)} Content-Length headers")
                if any(n.lower() == "transfer-encoding" for n, _ in headers):
                    self.note(f"conn {conn_id}: a request with Transfer-Encoding")
                for n, v in headers:
                    if n.lower() == "x-injected":
                        self.note(f"conn {conn_id}: injected header {n}: {v}")
                length = int(lengths[0]) if lengths and lengths[0].isdigit() else 0
                while len(buf) < length and not self.stopping.is_set():
                    data = self._recv(conn)
                    if data is None:
                        continue
                    if not data:
                        self.note(f"conn {conn_id}: closed inside a request body")
                        return
                    buf += data
                body, buf = buf[:length], buf[length:]
                req = Request(conn_id, method, target, headers, body, head)
                with self.lock:
                    same_conn = [r for r in self.requests if r.conn_id == conn_id]
                    self.requests.append(req)
                if same_conn and same_conn[-1].path == req.path == "/subscribe/payments/again":
                    self.note(f"conn {conn_id}: a second charge request on one connection")
                if not self._dispatch(conn, req):
                    return
                idle_since = time.monotonic()
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _dispatch(self, conn, req):
        p = req.path
        if req.method == "POST" and p == "/users/getToken":
            return self._token(conn, req)
        if req.method == "POST" and p == "/subscribe/payments/again":
            return self._charge(conn, req)
        if req.method == "GET" and p.startswith("/payments/findAll/"):
            return self._find_all(conn, req, p[len("/payments/findAll/"):].split("/")[0])
        if req.method == "GET" and p.startswith("/subscribe/customers/"):
            body = envelope(0, None, json.dumps({
                "customer_uid": p.rsplit("/", 1)[1], "card_name": "BC카드",
                "card_number": "1234-****-****-5678", "pg_provider": "kakaopay",
                "inserted": T0 - 86400, "updated": T0 - 86400}, ensure_ascii=False).encode())
            return self.send(conn, response_bytes(200, body))
        self.note(f"conn {req.conn_id}: unexpected request {req.method} {req.target}")
        self.send(conn, response_bytes(404, envelope(-1, "no such endpoint", b"null")))
        return False

    def _authorized(self, req):
        return req.header("Authorization") in [f"Bearer {t}" for t in self.tokens_issued]

    def _token(self, conn, req):
        body = req.json() or {}
        if body.get("imp_key") != KEY or body.get("imp_secret") != SECRET:
            return self.send(conn, response_bytes(401, envelope(-1, "Unauthorized", b"null")))
        with self.lock:
            if self.token_value not in self.tokens_issued:
                self.tokens_issued.append(self.token_value)
        honest = envelope(0, None, json.dumps({
            "access_token": self.token_value, "now": int(time.time()),
            "expired_at": int(time.time()) + 1800}).encode())
        if self.token_writer:
            self.count_hostile("token")
            return self.token_writer(self, conn, req, honest)
        return self.send(conn, response_bytes(200, honest))

    def _charge(self, conn, req):
        if not self._authorized(req):
            return self.send(conn, response_bytes(401, envelope(-1, "Unauthorized", b"null")))
        body = req.json()
        if not isinstance(body, dict) or "merchant_uid" not in body:
            self.note(f"conn {req.conn_id}: charge request without a JSON body: {req.body[:200]!r}")
            return self.send(conn, response_bytes(400, envelope(-1, "bad request", b"null")))
        uid = body["merchant_uid"]
        with self.lock:
            self.charges[uid] = self.charges.get(uid, 0) + 1
        raw = None
        effect = self.charge_effect
        if callable(effect):
            raw = effect(self, body)
        elif effect in ("paid", "failed"):
            raw = self.payment(body, effect, fail_reason=self.fail_reason)
        if raw is not None:
            self.record(uid, raw)
            honest = envelope(0, None, raw)
        else:
            honest = envelope(-1, "PG사 통신 실패", b"null")
        if self.charge_writer:
            self.count_hostile("charge")
            return self.charge_writer(self, conn, req, honest)
        return self.send(conn, response_bytes(200, honest))

    def _find_all(self, conn, req, uid):
        if not self._authorized(req):
            return self.send(conn, response_bytes(401, envelope(-1, "Unauthorized", b"null")))
        with self.lock:
            self.lookups[uid] = self.lookups.get(uid, 0) + 1
            found = list(self.ledger.get(uid, []))
        if found:
            honest = envelope(0, None, b'{"total":' + str(len(found)).encode() +
                              b',"previous":0,"next":0,"list":[' +
                              b",".join(raw for _, _, raw in found) + b"]}")
            status = 200
        else:
            honest = envelope(-1, "존재하지 않는 결제정보입니다.", b"null")
            status = 404
        if self.lookup_writer:
            self.count_hostile("lookup")
            return self.lookup_writer(self, conn, req, honest)
        return self.send(conn, response_bytes(status, honest))

    # -- the ledger
    def payment(self, req, status, fail_reason=None, amount_text=None):
        """Raw JSON of a payment for the charge request `req`. fail_reason: str (JSON-escaped)
        or bytes (put between the quotes as they are); amount_text: the amount's literal."""
        with self.lock:
            self.imp_counter += 1
            imp_uid = f"imp_{self.port}{self.imp_counter:04d}"
        p = {"imp_uid": imp_uid, "merchant_uid": req["merchant_uid"],
             "customer_uid": req["customer_uid"], "customer_uid_usage": "payment",
             "channel": "api", "pay_method": "card", "pg_provider": "kakaopay",
             "pg_tid": "T" + imp_uid, "name": req.get("name"), "amount": "__AMOUNT__",
             "cancel_amount": 0, "currency": req.get("currency", "KRW"), "status": status,
             "started_at": T0, "paid_at": T0 if status == "paid" else 0,
             "failed_at": T0 if status == "failed" else 0, "cancelled_at": 0,
             "fail_reason": "__FAIL__", "receipt_url": "", "sandbox": True}
        raw = json.dumps(p, ensure_ascii=False).encode()
        amount = amount_text if amount_text is not None else str(req["amount"])
        raw = raw.replace(b'"__AMOUNT__"', amount.encode())
        if fail_reason is None:
            reason = b"null" if status != "failed" else b'"\xec\x9e\x94\xec\x95\xa1 \xeb\xb6\x80\xec\xa1\xb1"'
        elif isinstance(fail_reason, bytes):
            reason = b'"' + fail_reason + b'"'
        else:
            reason = json.dumps(fail_reason, ensure_ascii=False).encode()
        return raw.replace(b'"__FAIL__"', reason)

    def record(self, uid, raw):
        status = re.search(rb'"status": "(\w+)"', raw).group(1).decode()
        imp_uid = re.search(rb'"imp_uid": "(\w+)"', raw).group(1).decode()
        with self.lock:
            self.ledger.setdefault(uid, []).append((status, imp_uid, raw))

    def paid_records(self, uid):
        with self.lock:
            return [(s, i) for s, i, _ in self.ledger.get(uid, []) if s == "paid"]

    def charge_requests(self):
        with self.lock:
            return [r for r in self.requests if r.path == "/subscribe/payments/again"]


# ---------------------------------------------------------------------------------------------
# Hostile ways to answer. Each: f(standin, conn, req, honest_body) -> keep the connection?

def honest_status(status):
    def write(s, conn, req, honest):
        return s.send(conn, response_bytes(status, honest))
    return write


def slowloris(s, conn, req, honest):
    """The honest answer, one byte per second, until the peer gives up."""
    data = response_bytes(200, honest)
    for i in range(len(data)):
        if not s.send(conn, data[i:i + 1]) or s.stopping.wait(1.0):
            return False
    return False


def huge_content_length(s, conn, req, honest):
    """Content-Length: 10 GB, a few bytes of it, then silence until the peer gives up."""
    head = ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            "Content-Length: 10737418240\r\n\r\n").encode()
    if s.send(conn, head + honest[:12]):
        s.wait_closed(conn)
    return False


def endless_chunked(s, conn, req, honest):
    """A chunked body that never ends: the honest answer, then blanks forever."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    if not s.send(conn, head + b"%x\r\n%s\r\n" % (len(honest), honest)):
        return False
    chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
    deadline = time.monotonic() + 90
    while not s.stopping.is_set() and time.monotonic() < deadline:
        if not s.send(conn, chunk):
            break
    return False


def fifty_mb_json(s, conn, req, honest):
    """The honest envelope with a 50 MB string field in front: valid JSON, 50 MB."""
    body = b'{"padding":"' + b"A" * (50 * 1024 * 1024) + b'",' + honest[1:]
    s.send(conn, response_bytes(200, body))
    s.wait_closed(conn, limit=30)
    return False


DEEP = 100_000


def deep_bare(s, conn, req, honest):
    """A 100,000-deep nested array instead of the answer."""
    s.send(conn, response_bytes(200, b"[" * DEEP + b"]" * DEEP))
    return False


def deep_in_envelope(s, conn, req, honest):
    """The honest envelope with a 100,000-deep nested array as an extra field."""
    s.send(conn, response_bytes(200, b'{"deep":' + b"[" * DEEP + b"]" * DEEP + b"," + honest[1:]))
    return False


def redirect(status):
    def write(s, conn, req, honest):
        location = f"http://127.0.0.1:{s.port}/redirected{req.target}"
        s.send(conn, response_bytes(status, b"", headers=[
            ("Location", location), ("Content-Length", "0")]))
        return False
    return write


def conflicting_content_length(s, conn, req, honest):
    s.send(conn, response_bytes(200, honest, headers=[
        ("Content-Type", "application/json"), ("Content-Length", "7"),
        ("Content-Length", str(len(honest)))]))
    s.wait_closed(conn, limit=10)
    return False


def length_and_chunked(s, conn, req, honest):
    """Content-Length and Transfer-Encoding: chunked together (the classic smuggling pair)."""
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(honest), honest)
    s.send(conn, response_bytes(200, chunked, headers=[
        ("Content-Type", "application/json"), ("Content-Length", str(len(honest))),
        ("Transfer-Encoding", "chunked")]))
    s.wait_closed(conn, limit=10)
    return False


def duplicate_header_names(s, conn, req, honest):
    """The same Content-Length twice and other header names repeated: a well-formed answer."""
    s.send(conn, response_bytes(200, honest, headers=[
        ("Content-Type", "text/html"), ("Content-Type", "application/json"),
        ("Content-Length", str(len(honest))), ("Content-Length", str(len(honest))),
        ("Connection", "keep-alive"), ("Connection", "close"), ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2")]))
    return False


def echo_of(req):
    return req.head + b"\r\n\r\n" + req.body


def echo_500_text(s, conn, req, honest):
    s.send(conn, response_bytes(500, b"upstream error; your request was:\n" + echo_of(req),
                                content_type="text/plain"))
    return False


def echo_500_json(s, conn, req, honest):
    s.send(conn, response_bytes(500, envelope(-1, "bad gateway: " + echo_of(req).decode("latin-1"),
                                              b"null")))
    return False


def echo_200_code_minus_1(s, conn, req, honest):
    s.send(conn, response_bytes(200, envelope(-1, "PG 통신 실패: " + echo_of(req).decode("latin-1"),
                                              b"null")))
    return False


def plain_500(s, conn, req, honest):
    s.send(conn, response_bytes(500, b"Internal Server Error", content_type="text/plain"))
    return False


def huge_amount(text):
    """charge_effect: PortOne says paid, with an amount beyond int64, as that literal."""
    def effect(s, req):
        return s.payment(req, "paid", amount_text=text)
    return effect


def leaky_reason():
    return (f"카드 한도초과 (Authorization: Bearer {TOKEN}; imp_key={KEY}; "
            f"imp_secret={SECRET})")


def leaky_failed_payment(s, req):
    """charge_effect: a failed payment whose fail_reason carries the token and the secret."""
    return s.payment(req, "failed", fail_reason=leaky_reason())


def token_echo_500(s, conn, req, honest):
    """getToken answered 500, echoing the request: its body holds imp_key and imp_secret."""
    s.send(conn, response_bytes(500, envelope(-1, "error in " + echo_of(req).decode("latin-1"),
                                              b"null")))
    return False


# ---------------------------------------------------------------------------------------------
# Running billingd

class HostileWorkspace(Workspace):
    """A harness Workspace pointed at a StandIn, with distinctive secrets and debug logging."""

    def __init__(self, standin, max_in_flight=16, ca_file=""):
        self.ca_file = ca_file
        super().__init__(standin, max_in_flight=max_in_flight)
        self.env["BILLINGD_PORTONE_IMP_KEY"] = KEY
        self.env["BILLINGD_PORTONE_IMP_SECRET"] = SECRET
        self.env.pop("JOURNAL_STREAM", None)

    def write_config(self, max_in_flight=16, **ignored):
        ca_line = f'ca_file = "{self.ca_file}"' if self.ca_file else ""
        with open(self.config_path, "w") as f:
            f.write(f'''database = "{self.db_path}"
[portone]
base_url = "{self.sim.base_url}"
connect_timeout_ms = 2000
charge_timeout_ms = 2000
lookup_timeout_ms = 2000
max_in_flight = {max_in_flight}
{ca_line}
[billing]
time_zone = "Asia/Seoul"
charge_time = "10:00"
merchant_uid_prefix = "{self.prefix}"
[refunds]
# The stand-in plays hostile charge and lookup answers only: no console refund check.
console_check_minutes = 0
[log]
level = "debug"
''')


class Run:
    pass


# ru_maxrss of a child exec'd straight from this (large) Python process includes the parent's
# high-water mark (Linux carries it over at exec), so billingd is started by GNU time, whose
# own small process forks it; without /usr/bin/time, VmHWM of billingd is sampled instead.
TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def vm_hwm_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def run_billingd(ws, *args):
    """billingd with a wall-clock limit; its peak RSS in run.maxrss_kb."""
    run = Run()
    cmd = [BILLINGD, "--config", ws.config_path, *args]
    rusage_file = os.path.join(ws.dir, "rusage.txt")
    if TIME:
        cmd = [TIME, "-o", rusage_file, "-f", "maxrss_kb=%M", *cmd]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=ws.env, start_new_session=True)
        run.timed_out = False
        run.maxrss_kb = 0
        while proc.poll() is None:
            if not TIME:
                run.maxrss_kb = max(run.maxrss_kb, vm_hwm_kb(proc.pid))
            if time.monotonic() - start > KILL_AFTER:
                run.timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)  # the session started just above
                proc.wait()
                break
            time.sleep(0.02)
        run.elapsed = time.monotonic() - start
        run.returncode = proc.returncode
        if TIME:
            try:
                with open(rusage_file) as f:
                    report = f.read()
            except OSError:
                report = ""
            m = re.search(r"maxrss_kb=(\d+)", report)
            run.maxrss_kb = int(m.group(1)) if m else 0
            m = re.search(r"terminated by signal (\d+)", report)
            if m:
                run.returncode = -int(m.group(1))
        out.seek(0)
        err.seek(0)
        run.stdout = out.read()
        run.stderr = err.read()
    run.text = (run.stdout + run.stderr).decode("utf-8", "replace")
    return run


def dump_database(ws):
    r = subprocess.run(["sqlite3", ws.db_path, ".dump"], capture_output=True, timeout=60)
    if r.returncode == 0:
        return r.stdout
    with ws.db() as c:  # no sqlite3 CLI: the same statements from Python
        c.text_factory = bytes
        return "\n".join(c.iterdump()).encode("utf-8", "surrogateescape")


def human_text(ws):
    """What an operator reads: reasons, event details, the journal's messages (not raw bodies)."""
    with ws.db() as c:
        c.text_factory = lambda b: b.decode("utf-8", "replace")
        rows = [r[0] for r in c.execute(
            "SELECT park_reason FROM charges UNION ALL SELECT fail_reason FROM charges "
            "UNION ALL SELECT detail FROM events UNION ALL SELECT message FROM attempts "
            "UNION ALL SELECT needs_attention FROM subscriptions")]
    return "\n".join(r for r in rows if r)


def tail(run, n=700):
    return f"exit {run.returncode} after {run.elapsed:.1f}s; output: {run.text[-n:]!r}"


# ---------------------------------------------------------------------------------------------
# Cases

@dataclasses.dataclass
class Case:
    name: str
    standin: dict
    exits: tuple = (0,)
    states: tuple = ("paid",)          # allowed states of the first subscription's charge
    charge_requests: Optional[int] = 1  # charge requests the stand-in must see for it
    customers: int = 1
    other_states: tuple = ()           # allowed states of the second one (None: no charge row)
    max_in_flight: int = 16
    tls: Optional[str] = None          # "untrusted", "wrong_host", "trusted"
    extra: Optional[Callable] = None   # f(name, ws, standin, run, charge_rows)


IN_DOUBT = ("unknown", "reconciling")


def transport_cases():
    """1-5: each hostile answer on the charge, on the lookup and on getToken."""
    writers = [("slowloris", slowloris), ("10 GB Content-Length then silence", huge_content_length),
               ("endless chunked body", endless_chunked), ("50 MB JSON body", fifty_mb_json),
               ("100k-deep JSON array", deep_bare),
               ("100k-deep JSON inside the envelope", deep_in_envelope)]
    cases = []
    for label, writer in writers:
        # PortOne made the payment and answered badly: the lookup settles it as paid.
        cases.append(Case(f"{label} on the charge", dict(charge_writer=writer),
                          exits=(0,), states=("paid",)))
        # The charge's answer was lost (500) and the lookup misbehaves: still in doubt, not resent.
        # (A deep field the parser copes with is a readable answer: paid is fine too.)
        cases.append(Case(f"{label} on the lookup",
                          dict(charge_writer=plain_500, lookup_writer=writer),
                          exits=(1, 0) if writer is deep_in_envelope else (1,),
                          states=IN_DOUBT + (("paid",) if writer is deep_in_envelope else ())))
        # No token: nothing may be charged.
        cases.append(Case(f"{label} on getToken", dict(token_writer=writer),
                          exits=(0, 1) if writer is not deep_in_envelope else (0,),
                          states=("retry_wait", "scheduled") + (
                              ("paid",) if writer is deep_in_envelope else ()),
                          charge_requests=0 if writer is not deep_in_envelope else 1))
    return cases


def check_halted(name, ws, s, run, rows):
    check("charging halted" in run.text, f"{name}: stdout/stderr do not say charging halted: "
                                         f"{run.text[-500:]!r}")


def check_redirect(name, ws, s, run, rows):
    check_halted(name, ws, s, run, rows)
    followed = [r.target for r in s.requests if r.path.startswith("/redirected")]
    check(not followed, f"{name}: billingd followed the redirect: {followed}")
    check(len(s.charge_requests()) == 1,
          f"{name}: {len(s.charge_requests())} charge requests after the redirect halted charging")


def check_no_smuggling(name, ws, s, run, rows):
    if run.returncode == 1:
        check("charging halted" in run.text,
              f"{name}: exit 1 without charging halted: {run.text[-500:]!r}")
    others = [f"{r.method} {r.target}" for r in s.requests if r.path != "/users/getToken"]
    check(not others, f"{name}: requests after an unusable token: {others}")
    refusal = [line for line in run.text.splitlines()
               if re.search(r"(?i)halt|error|refus|invalid", line)]
    check(any(re.search(r"(?i)token", line) for line in refusal),
          f"{name}: no error/halt line names the token as the problem: {refusal[-3:]!r}")


def check_amount_text(literals):
    def check_it(name, ws, s, run, rows):
        text = human_text(ws)
        everything = dump_database(ws) + run.stdout + run.stderr
        check(INT64_WRAPPED.encode() not in everything,
              f"{name}: the amount wrapped to {INT64_WRAPPED} (database or log)")
        negative = re.findall(r"-\d{12,}", text)
        check(not negative, f"{name}: a wrapped negative amount in reasons/events: {negative}")
        check(any(lit in text for lit in literals),
              f"{name}: the received amount ({' or '.join(literals)}) is in no park reason, "
              f"event or journal message; they say: {text[-600:]!r}")
    return check_it


def check_euc_kr(name, ws, s, run, rows):
    with ws.db() as c:
        c.text_factory = bytes
        raw = c.execute("SELECT fail_reason FROM charges ORDER BY id").fetchone()
        sub = c.execute("SELECT status FROM subscriptions ORDER BY id").fetchone()
        nxt = c.execute("SELECT next_action_at FROM charges ORDER BY id").fetchone()
    reason = raw[0] if raw else None
    try:
        text = reason.decode("utf-8") if reason is not None else None
    except UnicodeDecodeError:
        text = None
        check(False, f"{name}: fail_reason stored as invalid UTF-8: {reason!r}")
    if reason is not None and text is not None:
        check(re.search(r"(?i)(\\x|%|\\u00|<)c7", text),
              f"{name}: fail_reason {text!r} does not keep the bytes escaped (\\xC7...)")
    elif reason is None:
        check(False, f"{name}: no fail_reason kept")
    check(sub and sub[0] == b"past_due", f"{name}: the subscription is {sub and sub[0]!r}, "
                                         f"not past_due (dunning)")
    check(nxt and nxt[0] is not None, f"{name}: the decline has no dunning retry date")


def check_declined_reason(name, ws, s, run, rows):
    check(rows and rows[0]["fail_reason"], f"{name}: the decline kept no fail_reason")


def cases():
    out = transport_cases()
    out += [
        # 6. Redirects: base_url points elsewhere. Halt; the charge in doubt; nothing else sent.
        Case("302 redirect on the charge", dict(charge_writer=redirect(302), charge_effect=None),
             exits=(1,), states=IN_DOUBT, customers=2, other_states=(None, "scheduled"),
             max_in_flight=1, extra=check_redirect),
        Case("307 redirect on the charge", dict(charge_writer=redirect(307), charge_effect=None),
             exits=(1,), states=IN_DOUBT, customers=2, other_states=(None, "scheduled"),
             max_in_flight=1, extra=check_redirect),
        # 7. Duplicate headers.
        Case("conflicting duplicate Content-Length", dict(charge_writer=conflicting_content_length)),
        Case("Content-Length with Transfer-Encoding chunked", dict(charge_writer=length_and_chunked)),
        Case("duplicate header names", dict(charge_writer=duplicate_header_names)),
        # 8. Secrets echoed back. The generic secret check is the point of these cases.
        Case("HTTP 500 text echoing the request head", dict(charge_writer=echo_500_text,
                                                            charge_effect=None),
             exits=(1,), states=IN_DOUBT),
        Case("HTTP 500 JSON echoing the request head", dict(charge_writer=echo_500_json,
                                                            charge_effect=None),
             exits=(1,), states=IN_DOUBT),
        Case("HTTP 200 code -1 echoing the request head", dict(charge_writer=echo_200_code_minus_1,
                                                               charge_effect=None),
             exits=(0, 1), states=("retry_wait",) + IN_DOUBT),
        # FINDING (failed at 3a8615b): the two fail_reason leaks below.
        Case("decline whose fail_reason holds the token and the secret",
             dict(charge_effect=leaky_failed_payment), exits=(0,), states=("declined",),
             extra=check_declined_reason),
        Case("lookup finds a failed payment whose fail_reason holds the token and the secret",
             dict(charge_effect=leaky_failed_payment, charge_writer=plain_500), exits=(0,),
             states=("declined",), extra=check_declined_reason),
        Case("getToken HTTP 500 echoing imp_key and imp_secret",
             dict(token_writer=token_echo_500), exits=(0, 1), states=("retry_wait", "scheduled"),
             charge_requests=0),
        # 9. CRLF in the access token. FINDING (all three failed at 3a8615b).
        Case("access_token with CRLF and an injected header",
             dict(token_value=TOKEN + "\r\nX-Injected: 1"), exits=(78, 1),
             states=(None, "scheduled", "retry_wait"), charge_requests=0,
             extra=check_no_smuggling),
        Case("access_token smuggling a second request",
             dict(token_value=TOKEN + "\r\nContent-Length: 0\r\n\r\nGET /smuggled HTTP/1.1\r\n"
                                      "Host: 127.0.0.1\r\nX-Injected: 1"),
             exits=(78, 1), states=(None, "scheduled", "retry_wait"), charge_requests=0,
             extra=check_no_smuggling),
        Case("access_token with a bare LF and an injected header",
             dict(token_value=TOKEN + "\nX-Injected: 1"), exits=(78, 1),
             states=(None, "scheduled", "retry_wait"), charge_requests=0,
             extra=check_no_smuggling),
        # 10. Amounts beyond int64 in a "paid" payment. FINDING (both failed at 3a8615b).
        Case("paid amount 9223372036854775808",
             dict(charge_effect=huge_amount("9223372036854775808")), exits=(1,),
             states=("parked",) + IN_DOUBT,
             extra=check_amount_text(["9223372036854775808"])),
        Case("paid amount 1e30", dict(charge_effect=huge_amount("1e30")), exits=(1,),
             states=("parked",) + IN_DOUBT,
             extra=check_amount_text(["1e30", "1e+30", "1000000000000000000000000000000"])),
        # 11. EUC-KR fail_reason. FINDING (failed at 3a8615b).
        Case("decline with an EUC-KR fail_reason",
             dict(charge_effect="failed", fail_reason=EUC_KR_LIMIT), exits=(0,),
             states=("declined",), extra=check_euc_kr),
        # 12. TLS. FINDING (the two refusals failed at 3a8615b; the sanity case passed).
        Case("TLS with an untrusted self-signed certificate", {}, tls="untrusted", exits=(1,),
             states=("retry_wait", "scheduled", None), charge_requests=0, extra=check_tls_refused),
        Case("TLS with a trusted certificate for another host name", {}, tls="wrong_host",
             exits=(1,), states=("retry_wait", "scheduled", None), charge_requests=0,
             extra=check_tls_refused),
        Case("TLS with the right CA (sanity)", {}, tls="trusted"),
    ]
    return out


def check_tls_refused(name, ws, s, run, rows):
    check(not s.requests, f"{name}: the stand-in got HTTP requests over an unverified TLS "
                          f"connection: {[r.target for r in s.requests]}")
    check(re.search(r"(?i)certificate|verif", run.text),
          f"{name}: no certificate/verification message: {run.text[-500:]!r}")
    check_halted(name, ws, s, run, rows)


def make_certificates(tmp):
    """(cert, key) for 127.0.0.1 and (cert, key) for wrong.example, both self-signed."""
    def one(stem, subject, san):
        cert, key = os.path.join(tmp, stem + ".pem"), os.path.join(tmp, stem + ".key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", subject, "-addext", "subjectAltName=" + san],
                       check=True, capture_output=True)
        return cert, key
    return one("local", "/CN=127.0.0.1", "IP:127.0.0.1"), one("wrong", "/CN=wrong.example",
                                                            "DNS:wrong.example")


# ---------------------------------------------------------------------------------------------

def run_case(case, certificates):
    name = case.name
    tls_files, ca_file = None, ""
    if case.tls:
        if certificates is None:
            print(f"SKIP {name}: no openssl to make certificates")
            return True
        local, wrong = certificates
        tls_files = wrong if case.tls == "wrong_host" else local
        ca_file = "" if case.tls == "untrusted" else tls_files[0]
    with StandIn(tls=tls_files, **case.standin) as s:
        ws = HostileWorkspace(s, max_in_flight=case.max_in_flight, ca_file=ca_file)
        ws.init_db()
        for i in range(case.customers):
            ws.add_subscription(f"cust-{i}-{Workspace.count}", ANCHOR)
        run = run_billingd(ws, "--once", "--as-of", AS_OF)

        # Time, exit code, memory.
        check(not run.timed_out, f"{name}: billingd still running after {KILL_AFTER}s, killed")
        check(run.elapsed < WALL_LIMIT, f"{name}: the run took {run.elapsed:.1f}s (>= {WALL_LIMIT})")
        check(run.returncode >= 0, f"{name}: billingd died of signal {-run.returncode}")
        check(run.returncode != 70, f"{name}: internal error (exit 70): {tail(run)}")
        check(run.returncode in case.exits, f"{name}: expected exit {case.exits}, got {tail(run)}")
        check(run.maxrss_kb < MAXRSS_LIMIT_KB,
              f"{name}: ru_maxrss {run.maxrss_kb // 1024} MB >= {MAXRSS_LIMIT_KB // 1024} MB")

        # The charges billingd has, by subscription.
        rows = ws.charges()
        by_sub = {}
        for row in rows:
            by_sub.setdefault(row["subscription_id"], row)
        first = by_sub.get(1)
        state = first["state"] if first else None
        check(state in case.states, f"{name}: the charge is {state!r}, expected one of "
                                    f"{case.states}; park_reason={first and first['park_reason']!r} "
                                    f"fail_reason={first and first['fail_reason']!r}; {tail(run, 400)}")
        if case.customers > 1:
            second = by_sub.get(2)
            st2 = second["state"] if second else None
            check(st2 in case.other_states,
                  f"{name}: the second charge is {st2!r}, expected one of {case.other_states}")

        # Money, as PortOne (the stand-in) sees it.
        for uid, n in s.charges.items():
            check(n <= 1, f"{name}: {uid} got {n} charge requests")
            payments = len(s.ledger.get(uid, []))
            check(payments <= 1, f"{name}: {uid} has {payments} payments at PortOne")
        if case.charge_requests is not None:
            uid = first["merchant_uid"] if first else None
            got = s.charges.get(uid, 0) if uid else 0
            check(got == case.charge_requests,
                  f"{name}: {got} charge requests for the first charge, expected "
                  f"{case.charge_requests}")
        for row in rows:
            if row["state"] == "paid":
                paid = s.paid_records(row["merchant_uid"])
                check(paid and paid[0][1] == row["imp_uid"],
                      f"{name}: {row['merchant_uid']} is paid in billingd (imp_uid "
                      f"{row['imp_uid']}) but PortOne's paid records are {paid}")
        check_never_resent_in_doubt(ws)
        with ws.db() as c:
            check(c.execute("PRAGMA integrity_check").fetchone()[0] == "ok",
                  f"{name}: integrity_check")

        # Secrets: the database (every table), stdout and stderr.
        dump = dump_database(ws)
        secrets = list(dict.fromkeys([KEY, SECRET, TOKEN] + s.tokens_issued))
        for secret in secrets:
            needle = secret.encode()
            tables = sorted({m.group(1).decode() for line in dump.splitlines() if needle in line
                             for m in [re.match(rb'INSERT INTO "?(\w+)"?', line)] if m})
            if needle in dump:
                at = dump.find(needle)
                check(False, f"{name}: SECRET LEAK {secret!r} in the database (tables "
                             f"{', '.join(tables) or '?'}): ...{dump[max(0, at - 100):at + 40]!r}")
            for where, blob in (("stdout", run.stdout), ("stderr", run.stderr)):
                if needle in blob:
                    at = blob.find(needle)
                    check(False, f"{name}: SECRET LEAK {secret!r} in {where}: "
                                 f"...{blob[max(0, at - 100):at + 40]!r}")

        # The hostile answer was really given (else the case proves nothing).
        for target in ("token", "charge", "lookup"):
            if case.standin.get(target + "_writer"):
                check(s.hostile.get(target, 0) >= 1,
                      f"{name}: billingd never asked for the {target}, so the hostile answer "
                      f"was not given")

        # The wire: nothing smuggled, no injected header, no unexpected request.
        check(not s.anomalies, f"{name}: the stand-in saw {s.anomalies}")

        if case.extra:
            case.extra(name, ws, s, run, rows)
    return run


def main():
    selected = sys.argv[1:]
    try:
        tmp = tempfile.TemporaryDirectory(prefix="billingd-hostile-")
        certificates = make_certificates(tmp.name)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"no TLS certificates ({e}): the TLS cases are skipped")
        certificates = None
    results = []
    started = time.monotonic()
    for case in cases():
        if selected and not any(sel.lower() in case.name.lower() for sel in selected):
            continue
        before = len(failures)
        t = time.monotonic()
        run = run_case(case, certificates)
        ok = len(failures) == before
        detail = (f"exit {run.returncode}, {run.elapsed:.1f}s, {run.maxrss_kb // 1024} MB"
                  if isinstance(run, Run) else "skipped")
        results.append((case.name, ok, detail))
        print(f"{'PASS' if ok else 'FAIL'} {case.name} ({detail}; {time.monotonic() - t:.1f}s)",
              flush=True)
    print(f"\nhostile gateway summary ({time.monotonic() - started:.0f}s):")
    for case_name, ok, detail in results:
        if ok:
            label = "pass  (a finding at 3a8615b)" if case_name in FINDINGS else "pass"
        elif case_name in FINDINGS:
            label = "FAIL  (issue 11 finding: failed at 3a8615b)"
        else:
            label = "FAIL"
        print(f"  {label:<46} {case_name} [{detail}]")
    finish("e2e_hostile_gateway")


if __name__ == "__main__":
    main()
