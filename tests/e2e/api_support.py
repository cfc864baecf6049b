"""The HTTP API under test: its OpenAPI document, a client, and answers checked against the
document's schemas. Python 3 standard library plus python3-yaml and python3-jsonschema
(Debian packages, scripts/install-deps)."""
import http.client
import json
import os
import re
import socket
import subprocess
import time

import yaml
from jsonschema import Draft202012Validator

import harness
from harness import check

SOURCE_ROOT = os.environ.get("BILLINGD_SOURCE_ROOT",
                             os.path.join(os.path.dirname(__file__), "..", ".."))
SPEC_PATH = os.path.join(SOURCE_ROOT, "api", "openapi.yaml")
with open(SPEC_PATH, encoding="utf-8") as f:
    SPEC = yaml.safe_load(f)

# Tokens of the daemon under test (BILLINGD_API_TOKENS): two writers (a rotation) and a reader.
TOKENS = {
    "shop-2026a": ("write", "a" * 20 + "0123456789abcdefghij"),
    "shop-2026b": ("write", "b" * 20 + "0123456789abcdefghij"),
    "reporting": ("read", "r" * 20 + "0123456789abcdefghij"),
}
WRITE = TOKENS["shop-2026a"][1]
NEXT = TOKENS["shop-2026b"][1]
READ = TOKENS["reporting"][1]


def tokens_text():
    lines = ["# name scope token"]
    lines += [f"{name} {scope} {token}" for name, (scope, token) in TOKENS.items()]
    return "\n".join(lines) + "\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resolved(node):
    """`node` with every local $ref replaced by what it points at (the document has no cycles)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = SPEC
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            return resolved(target)
        return {k: resolved(v) for k, v in node.items()}
    if isinstance(node, list):
        return [resolved(v) for v in node]
    return node


def operations():
    """{operationId: (METHOD, path template, operation)} of the document."""
    out = {}
    for path, item in SPEC["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "patch", "put", "delete"):
                out[op["operationId"]] = (method.upper(), path, resolved(op))
    return out


OPERATIONS = operations()


def operation_of(method, path):
    path = path.split("?", 1)[0]
    for op_id, (m, template, _) in OPERATIONS.items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if m == method and re.match(pattern, path):
            return op_id
    return None


def example(op_id, name):
    """A request body example of the document."""
    op = OPERATIONS[op_id][2]
    return op["requestBody"]["content"]["application/json"]["examples"][name]["value"]


def path_of(op_id, **params):
    template = OPERATIONS[op_id][1]
    return re.sub(r"\{([^}]+)\}", lambda m: str(params[m.group(1)]), template)


class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.raw = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return f"<{self.status} {self.raw[:300]!r}>"


class Api:
    """A keep-alive client; every answer to a documented operation is checked against the
    document (status documented, schema, problem type listed) and counted in `covered`."""

    def __init__(self, port=None, unix_path=None, token=WRITE):
        self.port = port
        self.unix_path = unix_path
        self.token = token
        self.conn = None
        self.covered = {}  # (operationId, status) -> count
        self.problem_types = set()  # (operationId, status, type slug) seen

    def _connect(self):
        if self.unix_path:
            conn = http.client.HTTPConnection("localhost", timeout=30)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(30)
            sock.connect(self.unix_path)
            conn.sock = sock
            return conn
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def call(self, method, path, body=None, token="default", headers=None, raw=None,
             content_type="application/json", documented=True):
        hdrs = dict(headers or {})
        token = self.token if token == "default" else token
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None and content_type:
            hdrs["Content-Type"] = content_type
        for attempt in range(2):
            if self.conn is None:
                self.conn = self._connect()
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                r = self.conn.getresponse()
                answer = Answer(r.status, r.getheaders(), r.read().decode("utf-8", "replace"))
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                break
            except (http.client.HTTPException, ConnectionError, OSError):
                # A keep-alive connection the server closed (idle timeout): once more, anew.
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise
        if documented:
            self.validate(method, path, answer)
        return answer

    def validate(self, method, path, answer):
        op_id = operation_of(method, path)
        if not check(op_id is not None, f"{method} {path} is not an operation of the document"):
            return
        responses = OPERATIONS[op_id][2]["responses"]
        key = str(answer.status)
        self.covered[(op_id, answer.status)] = self.covered.get((op_id, answer.status), 0) + 1
        if not check(key in responses,
                     f"{op_id}: status {answer.status} is not documented: {answer}"):
            return
        documented = responses[key]
        content = documented.get("content", {})
        ctype = (answer.header("Content-Type") or "").split(";")[0]
        if not check(ctype in content, f"{op_id} {key}: content type {ctype} not documented"):
            return
        schema = content[ctype]["schema"]
        errors = sorted(Draft202012Validator(schema).iter_errors(answer.json),
                        key=lambda e: list(e.path))
        check(not errors, f"{op_id} {key}: the answer does not match its schema: "
                          f"{[f'{list(e.path)}: {e.message}' for e in errors[:3]]} {answer}")
        if ctype == "application/problem+json" and answer.json:
            slug = answer.json.get("type", "").rsplit(":", 1)[-1]
            allowed = documented.get("x-problem-types", [])
            check(slug in allowed, f"{op_id} {key}: problem type {slug} not in {allowed}")
            check(answer.json.get("status") == answer.status, f"{op_id}: status member differs")
            self.problem_types.add((op_id, answer.status, slug))
        for name in documented.get("headers", {}):
            if name in ("Location", "Idempotent-Replayed", "Retry-After"):
                continue  # present only in some answers
            check(answer.header(name) is not None, f"{op_id} {key}: header {name} missing")

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None


def documented_cases():
    """Every (operationId, status) and (operationId, status, problem type) of the document."""
    statuses, types = set(), set()
    for op_id, (_, _, op) in OPERATIONS.items():
        for status, response in op["responses"].items():
            statuses.add((op_id, int(status)))
            for slug in response.get("x-problem-types", []):
                types.add((op_id, int(status), slug))
    return statuses, types


def start_daemon(ws, env=None):
    """billingd on the workspace; its log goes to a file (a pipe nobody reads while it runs
    would fill up and block it)."""
    e = dict(ws.env)
    e.update(env or {})
    log = open(os.path.join(ws.dir, "billingd.log"), "w")
    proc = subprocess.Popen([harness.BILLINGD, "--config", ws.config_path], env=e,
                            stdout=subprocess.DEVNULL, stderr=log, text=True)
    proc.log_path = log.name
    log.close()
    return proc


def wait_until(what, predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.05)
    check(False, f"timed out waiting for {what}")
    return False


def stop_daemon(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    with open(proc.log_path, encoding="utf-8", errors="replace") as f:
        return f.read()
