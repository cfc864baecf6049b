"""api/openapi.yaml is a sound OpenAPI 3.1 document that matches billingd's code.

Structure (3.1, every operation named once, path parameters declared, a 401 and a summary for
every operation), every $ref resolves, every schema is valid JSON Schema 2020-12, every
example matches its schema, every problem answer lists its problem types and each is a
documented type, and every problem type the server's code can answer (lib/operations,
daemon/api_*.cpp) is documented. When openapi-spec-validator is installed (it is not a Debian
12 package) the document is also checked against the official OpenAPI 3.1 schema."""
import os
import re
import sys

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

ROOT = os.environ.get("BILLINGD_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
failures = []


def check(ok, message):
    if not ok:
        failures.append(message)
        print(f"FAILED: {message}")
    return ok


with open(os.path.join(ROOT, "api", "openapi.yaml"), encoding="utf-8") as f:
    spec = yaml.safe_load(f)


def lookup(ref):
    if not ref.startswith("#/"):
        return None
    node = spec
    for part in ref[2:].split("/"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def refs(node, where="#"):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield where, v
            else:
                yield from refs(v, f"{where}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from refs(v, f"{where}/{i}")


def resolved(node):
    if isinstance(node, dict):
        if "$ref" in node:
            return resolved(lookup(node["$ref"]))
        return {k: resolved(v) for k, v in node.items()}
    if isinstance(node, list):
        return [resolved(v) for v in node]
    return node


# --- structure ---
check(str(spec.get("openapi", "")).startswith("3.1."), "openapi: 3.1.x")
check(spec.get("info", {}).get("title") and spec["info"].get("version"), "info.title/version")
check("bearer" in spec.get("components", {}).get("securitySchemes", {}), "bearer scheme")
check(spec.get("security") == [{"bearer": []}], "every operation needs the bearer token")
for where, ref in refs(spec):
    check(lookup(ref) is not None, f"{where}: $ref {ref} does not resolve")

problem = spec["components"]["schemas"]["Problem"]
problem_types = {t.rsplit(":", 1)[-1] for t in problem["properties"]["type"]["enum"]}
check(all(t.startswith("urn:billingd:problem:") for t in problem["properties"]["type"]["enum"]),
      "problem types are urn:billingd:problem:<slug>")
used_types = set()
operation_ids = set()
methods = ("get", "post", "put", "patch", "delete")
for path, item in spec["paths"].items():
    check(path.startswith("/v1/"), f"{path}: under /v1/")
    names = set(re.findall(r"\{([^}]+)\}", path))
    for method, op in item.items():
        if method not in methods:
            continue
        op = resolved(op)
        what = f"{method.upper()} {path}"
        check(op.get("operationId") and op["operationId"] not in operation_ids,
              f"{what}: a unique operationId")
        operation_ids.add(op.get("operationId"))
        check(op.get("summary"), f"{what}: a summary")
        params = resolved(item.get("parameters", [])) + op.get("parameters", [])
        declared = {p["name"] for p in params if p["in"] == "path"}
        check(declared == names, f"{what}: path parameters {declared} vs {names}")
        check(all(p.get("required") for p in params if p["in"] == "path"),
              f"{what}: path parameters are required")
        responses = op.get("responses", {})
        check("401" in responses, f"{what}: documents 401")
        check(any(s.startswith("2") for s in responses), f"{what}: a success answer")
        if method != "get" and op["operationId"] not in ("pauseSubscription",
                                                          "resumeSubscription",
                                                          "recordConsent"):
            check("requestBody" in op, f"{what}: a request body")
        if method != "get":
            check("403" in responses, f"{what}: documents 403 (read-only token)")
        for status, response in responses.items():
            check(re.fullmatch(r"[2-5][0-9][0-9]", status), f"{what}: status {status}")
            check(response.get("description"), f"{what} {status}: a description")
            content = response.get("content", {})
            if status.startswith(("4", "5")):
                check(list(content) == ["application/problem+json"],
                      f"{what} {status}: errors are application/problem+json only")
                listed = response.get("x-problem-types", [])
                check(listed, f"{what} {status}: x-problem-types lists its problem types")
                for slug in listed:
                    check(slug in problem_types, f"{what} {status}: {slug} is not in Problem.type")
                    used_types.add(slug)
            else:
                check(list(content) == ["application/json"], f"{what} {status}: JSON")

# --- schemas and examples ---
def schemas(node, where="#"):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "schema" and isinstance(v, dict):
                yield f"{where}/schema", v
            else:
                yield from schemas(v, f"{where}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from schemas(v, f"{where}/{i}")


for name, schema in spec["components"]["schemas"].items():
    try:
        Draft202012Validator.check_schema(resolved(schema))
    except SchemaError as e:
        check(False, f"components/schemas/{name}: {e.message}")
for where, schema in schemas(spec["paths"], "#/paths"):
    try:
        Draft202012Validator.check_schema(resolved(schema))
    except SchemaError as e:
        check(False, f"{where}: {e.message}")
for path, item in spec["paths"].items():
    for method, op in item.items():
        if method not in methods:
            continue
        body = resolved(op).get("requestBody", {}).get("content", {}).get("application/json")
        if not body:
            continue
        validator = Draft202012Validator(body["schema"])
        check(body.get("examples"), f"{method.upper()} {path}: request examples")
        for name, ex in body.get("examples", {}).items():
            errors = [e.message for e in validator.iter_errors(ex["value"])]
            check(not errors, f"{method.upper()} {path} example {name}: {errors}")

# --- the code's problem types are documented ---
# Refusals that only billingctl can meet (its commands have no API endpoint): redelivery and an
# operator's resolution of parked charges.
billingctl_only = {"no-delivery-channel", "event-not-found", "event-not-delivered",
                   "event-not-sent-yet", "charge-not-retryable", "charge-not-resolvable",
                   "charge-changed", "charge-not-paid-at-portone", "charge-differs-at-portone",
                   "charge-transition-not-allowed",
                   # billingctl charge rekey (rekey.cpp): no API endpoint
                   "charge-not-rekeyable", "same-customer-uid", "request-may-be-in-progress",
                   "too-many-rekeys",
                   "merchant-uid-too-long"}
sources = [os.path.join(ROOT, "lib", "operations", f) for f in
           sorted(os.listdir(os.path.join(ROOT, "lib", "operations"))) if f.endswith(".cpp")]
sources += [os.path.join(ROOT, "daemon", f) for f in ("api_routes.cpp", "api_server.cpp")]
pattern = re.compile(r'(?:error_kind::\w+,|problem\(\d{3},|refuse\(\d{3},|refuse_field\([^,]+,[^,]+,'
                     r'|conflict\(|invalid\(|refuse\(c,)\s*"([a-z0-9-]+)"')
in_code = set()
for source in sources:
    with open(source, encoding="utf-8") as f:
        in_code |= set(pattern.findall(f.read()))
check(len(in_code) > 30, f"found the code's problem types ({len(in_code)})")
for slug in sorted(in_code - billingctl_only):
    check(slug in problem_types, f"{slug} (in the code) is not documented in Problem.type")
general = {"database-unavailable", "too-many-connections", "method-not-allowed", "no-such-endpoint",
           "body-too-large", "header-too-large", "malformed-request", "database-refused",
           "subscription-unschedulable", "unschedulable"}
for slug in sorted(problem_types - used_types - general):
    check(False, f"{slug} is in Problem.type but no answer lists it")

try:
    from openapi_spec_validator import validate as validate_spec
except ImportError:
    try:
        from openapi_spec_validator import validate_spec
    except ImportError:
        validate_spec = None
if validate_spec:
    try:
        validate_spec(spec)
    except Exception as e:  # noqa: BLE001 - any finding is a failure
        check(False, f"openapi-spec-validator: {e}")
else:
    print("openapi-spec-validator not installed: the structural checks above only")

print(f"api_openapi_document: {'1 passed, 0 failed' if not failures else '0 passed, 1 failed'}")
sys.exit(1 if failures else 0)
