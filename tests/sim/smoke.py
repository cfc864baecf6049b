#!/usr/bin/env python3
"""Smoke test of the portone-sim binary: start on port 0, token, charge, faults, ledger, SIGTERM,
recording modes and the per-merchant_uid request counter over real connections.

usage: smoke.py PORTONE_SIM [CERT KEY]   (with CERT and KEY, the TLS run is checked too)
"""
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time


def start(exe, *args):
    proc = subprocess.Popen([exe, "--port", "0", "--prefix", "pay-=pay", *args],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    assert line.startswith("listening on 127.0.0.1:"), line
    return proc, int(line.rsplit(":", 1)[1])


class Client:
    def __init__(self, port, context=None):
        self.port, self.context = port, context
        self.conn = self.connect()
        self.token = None

    def connect(self, timeout=10):
        if self.context:
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=self.context)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def call(self, method, path, body=None, conn=None):
        conn = conn or self.conn
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers=headers)
        res = conn.getresponse()
        data = res.read()
        return res.status, data

    def json(self, method, path, body=None):
        status, data = self.call(method, path, body)
        return status, json.loads(data)

    def login(self):
        status, body = self.json("POST", "/users/getToken",
                                 {"imp_key": "sim_key", "imp_secret": "sim_secret"})
        assert status == 200 and body["code"] == 0, body
        self.token = body["response"]["access_token"]
        return body["response"]


def charge_body(merchant_uid, customer_uid="pay-1"):
    return {"customer_uid": customer_uid, "merchant_uid": merchant_uid, "amount": 9900,
            "name": "monthly plan"}


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0, "exit status after SIGTERM"


def plain_run(exe):
    ledger_file = os.path.join(tempfile.mkdtemp(), "ledger.json")
    proc, port = start(exe, "--ledger-file", ledger_file, "--hang-seconds", "2", "--seed", "1",
                       "--max-body-bytes", "4096")
    try:
        c = Client(port)
        tok = c.login()
        assert tok["expired_at"] - tok["now"] == 1800, tok
        status, body = c.json("POST", "/subscribe/payments/again", charge_body("smoke-1"))
        assert status == 200 and body["code"] == 0 and body["response"]["status"] == "paid", body
        status, body = c.json("POST", "/subscribe/payments/again", charge_body("smoke-1"))
        assert body["code"] == 1 and body["response"] is None, body  # duplicate, same connection

        # reset_after: the payment is committed but the connection is reset.
        c.json("POST", "/__sim/faults", {"faults": ["charge:reset_after:1.0:1"]})
        try:
            c.call("POST", "/subscribe/payments/again", charge_body("smoke-2"))
            raise AssertionError("expected a reset")
        except (ConnectionError, http.client.HTTPException):
            pass
        # hang_after: nothing comes back before the client's timeout.
        c.conn = c.connect()
        c.json("POST", "/__sim/faults", {"faults": ["charge:hang_after:1.0:1"]})
        try:
            c.call("POST", "/subscribe/payments/again", charge_body("smoke-3"), c.connect(0.5))
            raise AssertionError("expected a timeout")
        except socket.timeout:
            pass
        # latency: an async delay on the answer.
        c.json("POST", "/__sim/faults", {"faults": ["find:latency_ms=200:1.0"]})
        started = time.monotonic()
        status, body = c.json("GET", "/payments/find/smoke-2")
        assert status == 200 and body["response"]["status"] == "paid", body
        assert time.monotonic() - started >= 0.19
        status, _ = c.json("POST", "/__sim/faults", {"faults": []})
        assert status == 200

        # Bodies above --max-body-bytes are refused before they reach the simulator.
        big = charge_body("smoke-4")
        big["custom_data"] = "x" * 5000
        status, _ = c.call("POST", "/subscribe/payments/again", big, c.connect())
        assert status == 413, status

        status, ledger = c.json("GET", "/__sim/ledger")
        assert [p["merchant_uid"] for p in ledger] == ["smoke-1", "smoke-2", "smoke-3"], ledger
        assert all(p["status"] == "paid" for p in ledger), ledger
        status, stats = c.json("GET", "/__sim/stats")
        assert stats["requests"]["charge"] == 4, stats
    except BaseException:
        proc.kill()
        raise
    stop(proc)
    with open(ledger_file, encoding="utf-8") as f:
        assert len(json.load(f)) == 3


def tls_run(exe, cert, key):
    rules = os.path.join(tempfile.mkdtemp(), "customers.json")
    with open(rules, "w", encoding="utf-8") as f:
        json.dump({"customers": {"vip": "pay"}, "prefixes": {"no-": "decline:잔액부족"}}, f)
    proc, port = start(exe, "--tls-cert", cert, "--tls-key", key, "--customers", rules)
    try:
        context = ssl.create_default_context(cafile=cert)
        c = Client(port, context)
        c.login()
        status, body = c.json("POST", "/subscribe/payments/again", charge_body("tls-1", "vip"))
        assert status == 200 and body["response"]["status"] == "paid", body
        status, body = c.json("POST", "/subscribe/payments/again", charge_body("tls-2", "no-1"))
        assert body["response"]["status"] == "failed", body
        assert body["response"]["fail_reason"] == "잔액부족", body
    except BaseException:
        proc.kill()
        raise
    stop(proc)


def requests_of(c, merchant_uid):
    status, body = c.json("GET", "/__sim/requests?merchant_uid=" + merchant_uid)
    assert status == 200, body
    return body["merchant_uids"][merchant_uid]


def modes_run(exe):
    """--record-at answer, --failed-uid-reuse refuse, the cancel modes, and counting requests
    that overlap."""
    proc, port = start(exe, "--record-at", "answer", "--failed-uid-reuse", "refuse",
                       "--cancel-refusal-status", "400", "--partial-cancel-status", "cancelled",
                       "--prefix", "no-=decline:잔액부족", "--hang-seconds", "5")
    try:
        c = Client(port)
        c.login()
        status, modes = c.json("GET", "/__sim/modes")
        assert modes == {"ok": True, "record_at": "answer", "failed_uid_reuse": "refuse",
                         "cancel_refusal_status": 400, "partial_cancel_status": "cancelled"}, modes

        # The client leaves during the PG latency: the charge is still recorded when the PG
        # answers, and lookups before that answer 404.
        c.json("POST", "/__sim/faults", {"faults": ["charge:latency_ms=600:1.0"]})
        leaving = c.connect()
        headers = {"Content-Type": "application/json", "Authorization": "Bearer " + c.token}
        leaving.request("POST", "/subscribe/payments/again",
                        body=json.dumps(charge_body("rec-1")), headers=headers)
        time.sleep(0.2)
        for path in ("/payments/find/rec-1", "/payments/findAll/rec-1"):
            status, body = c.json("GET", path)
            assert status == 404 and body == {"code": -1, "message": "존재하지 않는 결제정보입니다.",
                                              "response": None}, (path, status, body)
        status, ledger = c.json("GET", "/__sim/ledger")
        assert ledger == [], ledger
        leaving.close()
        time.sleep(0.7)
        status, body = c.json("GET", "/payments/find/rec-1")
        assert status == 200 and body["response"]["status"] == "paid", body
        status, ledger = c.json("GET", "/__sim/ledger")
        assert [p["merchant_uid"] for p in ledger] == ["rec-1"], ledger
        counted = requests_of(c, "rec-1")
        assert counted["charges"] == 1 and counted["lookups"] == 3, counted
        assert counted["max_concurrent"] == 2 and counted["max_concurrent_charges"] == 1, counted
        assert counted["charge_arrivals_ms"] == [ledger[0]["started_at_ms"]], (counted, ledger)

        # refuse: a failed merchant_uid is not charged again; nothing new is recorded.
        c.json("POST", "/__sim/faults", {"faults": []})
        status, body = c.json("POST", "/subscribe/payments/again", charge_body("ref-1", "no-1"))
        assert body["response"]["status"] == "failed", body
        status, body = c.json("POST", "/subscribe/payments/again", charge_body("ref-1", "no-1"))
        assert status == 200 and body["code"] == 1 and body["response"] is None, body
        assert body["message"].startswith("이미 주문이 이루어진 건입니다."), body
        status, body = c.json("POST", "/__sim/modes", {"failed_uid_reuse": "allow",
                                                       "record_at": "arrival"})
        assert body["failed_uid_reuse"] == "allow" and body["record_at"] == "arrival", body
        status, body = c.json("POST", "/subscribe/payments/again", charge_body("ref-1", "no-1"))
        assert body["code"] == 0 and body["response"]["status"] == "failed", body
        status, body = c.json("POST", "/__sim/modes", {"record_at": "sometime"})
        assert status == 400 and body["ok"] is False, body

        # Two keep-alive connections charging one merchant_uid at once overlap; requests one
        # after another on alternating connections do not.
        c.json("POST", "/__sim/faults", {"faults": ["charge:latency_ms=300:1.0"]})
        others = [Client(port), Client(port)]
        for o in others:
            o.token = c.token
        threads = [threading.Thread(target=o.json, args=("POST", "/subscribe/payments/again",
                                                         charge_body("both-1")))
                   for o in others]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        counted = requests_of(c, "both-1")
        assert counted["charges"] == 2 and counted["max_concurrent_charges"] == 2, counted
        for i in range(4):
            others[i % 2].json("POST", "/subscribe/payments/again", charge_body("one-1"))
            others[(i + 1) % 2].json("GET", "/payments/find/one-1")
        counted = requests_of(c, "one-1")
        assert counted["charges"] == 4 and counted["lookups"] == 4, counted
        assert counted["max_concurrent"] == 1, counted
        arrivals = counted["charge_arrivals_ms"]
        assert arrivals == sorted(arrivals) and len(arrivals) == 4, counted

        # A hung charge is in progress while its connection is held, and ends when the client
        # closes it: a lookup sent right after the close does not overlap it.
        c.json("POST", "/__sim/faults", {"faults": ["charge:hang_after:1.0"]})
        held = others[0].connect(0.3)
        try:
            others[0].call("POST", "/subscribe/payments/again", charge_body("hang-1"), held)
            raise AssertionError("expected a timeout")
        except socket.timeout:
            pass
        others[1].json("GET", "/payments/find/hang-1")
        assert requests_of(c, "hang-1")["max_concurrent"] == 2
        held.close()
        gone = others[0].connect(0.3)
        try:
            others[0].call("POST", "/subscribe/payments/again", charge_body("hang-2"), gone)
            raise AssertionError("expected a timeout")
        except socket.timeout:
            pass
        gone.close()
        others[1].json("GET", "/payments/find/hang-2")
        counted = requests_of(c, "hang-2")
        assert counted["max_concurrent"] == 1 and counted["lookups"] == 1, counted
    except BaseException:
        proc.kill()
        raise
    stop(proc)


def main():
    exe = sys.argv[1]
    plain_run(exe)
    modes_run(exe)
    if len(sys.argv) >= 4:
        tls_run(exe, sys.argv[2], sys.argv[3])
    print("ok")


if __name__ == "__main__":
    main()
