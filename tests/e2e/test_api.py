"""The HTTP API against a running billingd and portone-sim, driven from api/openapi.yaml.

Requests are built from the document (paths, example bodies); every answer is checked
against the document (the status is documented for the operation, the body matches its
schema, a problem's type is listed); at the end every documented status and problem type of
every operation must have been seen. Besides: authentication (none, unknown, read-only,
rotation, never logged), idempotent creates under retries and concurrency, pagination, the
same validation messages as billingctl, the engine woken by a create, the bounds (body size,
slow and idle clients, connection count), a unix socket, TLS, and the refusal of a
non-loopback address without TLS."""
import concurrent.futures
import datetime
import json
import os
import socket
import ssl
import subprocess
import time
import urllib.parse

from api_support import (NEXT, OPERATIONS, READ, TOKENS, WRITE, Api, documented_cases, example,
                         free_port, path_of, start_daemon, stop_daemon, tokens_text, wait_until)
from harness import BILLINGD, Sim, Workspace, check, finish

SIM_CERT = os.environ.get("SIM_CERT")
# [api] max_connections of the daemons under test: room for the 6 concurrent clients of the
# idempotency test and the connections still closing.
MAX_CONNECTIONS = 12
SIM_KEY = os.environ.get("SIM_KEY")


# The console refund check reads PortOne at the end of passes; these tests count and time the
# API's own requests, so the workspaces turn it off (Workspace writes the [refunds] section).
NO_CONSOLE_CHECK = "console_check_minutes = 0"


def api_section(port=None, listen=None, extra=""):
    return (f'\n[api]\nlisten = "{listen or f"127.0.0.1:{port}"}"\nmax_connections = {MAX_CONNECTIONS}\n'
            f'max_body_bytes = 4096\nrequest_timeout_ms = 1500\nidle_timeout_ms = 1500\n{extra}')


def workspace(sim, port=None, listen=None, extra=""):
    ws = Workspace(sim, extra_refunds=NO_CONSOLE_CHECK)
    with open(ws.config_path) as f:
        config = f.read().replace('level = "warn"', 'level = "debug"')
    with open(ws.config_path, "w") as f:
        f.write(config + api_section(port, listen, extra))
    ws.env["BILLINGD_API_TOKENS"] = tokens_text()
    return ws


def seoul_today():
    seoul = datetime.timezone(datetime.timedelta(hours=9))
    return datetime.datetime.now(seoul).date()


def authentication(api):
    """Every operation of the document refuses a request without a token, and one with a token
    billingd does not know; a read token cannot write; both tokens of a rotation work."""
    for op_id, (method, template, _) in OPERATIONS.items():
        path = template.replace("{id}", "1").replace("{customer_uid}", "cust_1")
        r = api.call(method, path, body={} if method != "GET" else None, token=None)
        if check(r.status == 401, f"{op_id} without a token: {r}"):
            check((r.header("WWW-Authenticate") or "").startswith("Bearer"),
                  "WWW-Authenticate: Bearer")
        r = api.call(method, path, body={} if method != "GET" else None, token="x" * 40)
        check(r.status == 401, f"{op_id} with an unknown token: {r}")
    r = api.call("POST", "/v1/subscriptions", example("createSubscription", "monthly"), token=READ)
    check(r.status == 403 and r.json["type"].endswith("read-only-token"), f"read token: {r}")
    r = api.call("GET", "/v1/subscriptions", token=READ)
    check(r.status == 200, f"a read token reads: {r}")
    r = api.call("GET", "/v1/subscriptions", token=f"bearer-less {WRITE}", documented=False)
    check(r.status == 401, "a malformed Authorization header is refused")


def create_examples(api, ws):
    created = {}
    for name in ("monthly", "trial", "quarterly"):
        body = example("createSubscription", name)
        r = api.call("POST", "/v1/subscriptions", body)
        if not check(r.status == 201, f"create {name}: {r}"):
            continue
        s = r.json["subscription"]
        created[name] = s
        check(r.header("Location") == f"/v1/subscriptions/{s['id']}", f"Location: {r.headers}")
        for key, value in body.items():
            if key == "trial_days":
                continue
            check(s[key] == value, f"create {name}: {key} is {s[key]!r}, sent {value!r}")
    if "trial" in created:
        s = created["trial"]
        check(s["status"] == "trialing" and s["trial_end_at"] == s["next_due_at"],
              f"a trial is trialing until period 0: {s}")
    if "monthly" in created:
        s = created["monthly"]
        check(s["anchor_date"] == seoul_today().isoformat(), f"default anchor today: {s}")
        with ws.db() as c:
            ev = c.execute("SELECT kind, actor FROM events WHERE subscription_id = ? AND "
                           "charge_id IS NULL", (s["id"],)).fetchall()
        check([tuple(e) for e in ev] == [("subscription.created", "shop-2026a")],
              f"the event names the token as actor: {[tuple(e) for e in ev]}")
    # The next token of a rotation writes under its own name.
    r = api.call("POST", "/v1/subscriptions", {"customer_uid": "cust_rot", "amount": 1000,
                                               "order_name": "Rotation"}, token=NEXT)
    if check(r.status == 201, f"the rotation's next token creates: {r}"):
        check(ws.scalar("SELECT actor FROM events WHERE subscription_id = ?",
                        r.json["subscription"]["id"]) == "shop-2026b", "its own actor")
    return created


def same_messages_as_billingctl(api, ws):
    """A refused create says what billingctl says for the same value, naming the JSON member
    where billingctl names its option; nothing is created."""
    base = {"customer_uid": "cust_msg", "amount": 9900, "order_name": "Plan"}
    cases = [
        ("number-out-of-range", {"amount": 0}, ["--amount", "0"], "amount", "--amount"),
        ("amount-above-limit", {"amount": 200_000_000}, ["--amount", "200000000"], "amount",
         "--amount"),
        ("unsupported-currency", {"currency": "USD"}, ["--currency", "USD"], "currency",
         "--currency"),
        ("invalid-currency", {"currency": "krw"}, ["--currency", "krw"], "currency", "--currency"),
        ("invalid-interval-unit", {"interval_unit": "fortnight"}, ["--every", "fortnight"],
         "interval_unit", "--every"),
        ("number-out-of-range", {"interval_count": 1001}, ["--count", "1001"], "interval_count",
         "--count"),
        ("invalid-time-zone", {"time_zone": "Mars/Olympus"}, ["--time-zone", "Mars/Olympus"],
         "time_zone", "--time-zone"),
        ("invalid-charge-time", {"charge_time": "25:00"}, ["--charge-time", "25:00"],
         "charge_time", "--charge-time"),
        ("invalid-anchor", {"anchor_date": "2024-02-30"}, ["--anchor", "2024-02-30"],
         "anchor_date", "--anchor"),
        ("anchor-too-old", {"anchor_date": "2001-01-31"}, ["--anchor", "2001-01-31"],
         "anchor_date", "--anchor"),
        ("invalid-text", {"order_name": "x" * 41}, ["--name", "x" * 41], "order_name", "--name"),
        ("invalid-text", {"customer_uid": "cust\r\n1"}, ["--customer-uid", "cust\r\n1"],
         "customer_uid", "--customer-uid"),
        ("invalid-text", {"buyer_tel": "0" * 41}, ["--buyer-tel", "0" * 41], "buyer_tel",
         "--buyer-tel"),
        ("number-out-of-range", {"trial_days": 3661}, None, "trial_days", None),
        ("number-out-of-range", {"max_periods": 0}, None, "max_periods", None),
    ]
    before = ws.scalar("SELECT count(*) FROM subscriptions")
    for slug, change, ctl_args, field, option in cases:
        r = api.call("POST", "/v1/subscriptions", {**base, **change})
        if not check(r.status == 422 and r.json["type"] == f"urn:billingd:problem:{slug}",
                     f"{change}: expected 422 {slug}, got {r}"):
            continue
        check(r.json.get("field") == field, f"{change}: field {r.json.get('field')}")
        if ctl_args is None:
            continue
        options = {"--customer-uid": "cust_msg", "--amount": "9900", "--name": "Plan"}
        options.update(zip(ctl_args[::2], ctl_args[1::2]))
        ctl = ws.billingctl("subscription", "add",
                            *[part for pair in options.items() for part in pair])
        check(ctl.returncode == 65, f"billingctl {ctl_args}: exit {ctl.returncode}")
        said = ctl.stderr.strip().removeprefix("billingctl: ")
        if slug == "anchor-too-old":  # each says how to insist in its own terms
            said = said.replace("add --backdate", 'add "backdate": true')
        check(said.replace(option, field, 1) == r.json["detail"],
              f"same message as billingctl for {change}:\n  api: {r.json['detail']}\n  "
              f"ctl: {said}")
    for slug, body in [
        ("trial-excludes-anchor", {**base, "trial_days": 7, "anchor_date": "2030-01-01"}),
        ("wrong-type", {**base, "amount": "9900"}),
        ("wrong-type", {**base, "amount": 9900.5}),
        ("wrong-type", {**base, "backdate": "yes"}),
        ("missing-field", {"amount": 9900, "order_name": "Plan"}),
        ("unknown-field", {**base, "plan": "gold"}),
    ]:
        r = api.call("POST", "/v1/subscriptions", body)
        check(r.status == 422 and r.json["type"].endswith(":" + slug), f"{body}: {r}")
    r = api.call("POST", "/v1/subscriptions", raw=b'{"customer_uid": ')
    check(r.status == 400 and r.json["type"].endswith("malformed-json"), f"broken JSON: {r}")
    r = api.call("POST", "/v1/subscriptions", raw=b"[1, 2]")
    check(r.status == 400 and r.json["type"].endswith("malformed-json"), f"an array: {r}")
    r = api.call("POST", "/v1/subscriptions", raw=b"[" * 100 + b"]" * 100)
    check(r.status == 400, f"deep nesting is refused: {r}")
    r = api.call("POST", "/v1/subscriptions", raw=json.dumps(base).encode(),
                 content_type="text/plain")
    check(r.status == 415, f"text/plain: {r}")
    r = api.call("POST", "/v1/subscriptions", raw=b'{"order_name": "' + b"x" * 5000 + b'"}')
    check(r.status == 413 and r.json["type"].endswith("body-too-large"), f"5 KB body: {r}")
    check(ws.scalar("SELECT count(*) FROM subscriptions") == before, "refusals created nothing")


def idempotency(api, ws, port):
    body = {"customer_uid": "cust_idem", "amount": 5500, "order_name": "Idem"}
    key = "4f1c5a3e-0d6b-4b8e-9a51-6c2f0e7b9d10"
    first = api.call("POST", "/v1/subscriptions", body, headers={"Idempotency-Key": key})
    check(first.status == 201, f"first create with a key: {first}")
    # The answer was lost; the client retries (body re-serialised in another member order).
    again = api.call("POST", "/v1/subscriptions", raw=json.dumps(dict(reversed(body.items()))).encode(),
                     headers={"Idempotency-Key": key})
    check(again.status == 201 and again.json == first.json,
          f"a retry gets the first answer: {again}")
    check(again.header("Idempotent-Replayed") == "true", "marked as replayed")
    other = api.call("POST", "/v1/subscriptions", {**body, "amount": 6600},
                     headers={"Idempotency-Key": key})
    check(other.status == 409 and other.json["type"].endswith("idempotency-key-reused"),
          f"same key, other body: {other}")
    check(ws.scalar("SELECT count(*) FROM subscriptions WHERE customer_uid = 'cust_idem'") == 1,
          "one subscription for the key")
    bad = api.call("POST", "/v1/subscriptions", body, headers={"Idempotency-Key": "has space"})
    check(bad.status == 400 and bad.json["type"].endswith("invalid-idempotency-key"), f"{bad}")
    # A refused request leaves no key: fixed, the same key creates.
    key2 = "retry-after-422"
    r = api.call("POST", "/v1/subscriptions", {**body, "amount": 0},
                 headers={"Idempotency-Key": key2})
    check(r.status == 422, "refused with a key")
    r = api.call("POST", "/v1/subscriptions", {**body, "customer_uid": "cust_idem2"},
                 headers={"Idempotency-Key": key2})
    check(r.status == 201, f"the key of a refused request is free: {r}")

    # Concurrency: 12 clients send the same key and body at once (each its own connection).
    key3 = "concurrent-key-1"
    body3 = {"customer_uid": "cust_conc", "amount": 7700, "order_name": "Concurrent"}

    def send(_):
        client = Api(port)
        try:
            return client.call("POST", "/v1/subscriptions", body3,
                               headers={"Idempotency-Key": key3}, documented=False)
        finally:
            client.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(send, range(12)))
    statuses = sorted(a.status for a in answers)
    check(all(s == 201 for s in statuses), f"every concurrent retry is answered 201: {statuses}")
    bodies = {a.raw for a in answers if a.status == 201}
    check(len(bodies) == 1, f"every concurrent retry gets the same answer: {len(bodies)} bodies")
    check(ws.scalar("SELECT count(*) FROM subscriptions WHERE customer_uid = 'cust_conc'") == 1,
          "concurrent retries create one subscription")
    check(ws.scalar("SELECT count(*) FROM api_idempotency") == 3, "three keys remembered")


def pagination(api):
    ids = []
    for i in range(7):
        r = api.call("POST", "/v1/subscriptions",
                     {"customer_uid": "cust_page", "amount": 1000 + i, "order_name": f"P{i}"})
        if check(r.status == 201, f"create for paging: {r}"):
            ids.append(r.json["subscription"]["id"])
    seen, after, pages = [], 0, 0
    while True:
        r = api.call("GET", f"/v1/subscriptions?customer_uid=cust_page&limit=3&after={after}")
        if not check(r.status == 200, f"page: {r}"):
            break
        pages += 1
        seen += [s["id"] for s in r.json["subscriptions"]]
        check(len(r.json["subscriptions"]) <= 3, "at most limit rows")
        if r.json["next_after"] is None:
            break
        after = r.json["next_after"]
        if pages > 10:
            break
    check(seen == ids and pages == 3, f"pages walk every row once, in order: {seen} vs {ids}")
    r = api.call("GET", "/v1/subscriptions?status=trialing&limit=1000")
    check(r.status == 200 and r.json["subscriptions"] and
          all(s["status"] == "trialing" for s in r.json["subscriptions"]), f"status filter: {r}")
    r = api.call("GET", "/v1/subscriptions?customer_uid=" + urllib.parse.quote("cust page+x"))
    check(r.status == 200 and r.json["subscriptions"] == [], "an unknown customer: no rows")
    for query, slug in [("status=sleeping", "invalid-status"), ("limit=0", "invalid-parameter"),
                        ("limit=1001", "invalid-parameter"), ("after=-1", "invalid-parameter"),
                        ("limit=1e3", "invalid-parameter"),
                        ("customer_uid=a%0Ab", "invalid-text")]:
        r = api.call("GET", f"/v1/subscriptions?{query}")
        check(r.status == 422 and r.json["type"].endswith(slug), f"{query}: {r}")
    r = api.call("GET", "/v1/subscriptions?sort=id")
    check(r.status == 400 and r.json["type"].endswith("unknown-parameter"), f"sort: {r}")


def lifecycle(api, ws, sid):
    """pause, resume, cancel at period end, cancel now: what each allows."""
    p = lambda what: path_of(f"{what}Subscription", id=sid)  # noqa: E731
    r = api.call("POST", p("pause"))
    check(r.status == 200 and r.json["subscription"]["status"] == "paused", f"pause: {r}")
    r = api.call("POST", p("pause"))
    check(r.status == 409 and r.json["type"].endswith("subscription-not-pausable"), f"{r}")
    r = api.call("POST", p("resume"))
    check(r.status == 200 and r.json["subscription"]["status"] == "active", f"resume: {r}")
    r = api.call("POST", p("resume"))
    check(r.status == 409 and r.json["type"].endswith("subscription-not-resumable"), f"{r}")
    r = api.call("POST", p("cancel"), example("cancelSubscription", "at_period_end"))
    check(r.status == 200 and r.json["subscription"]["cancel_at_period_end"] is True, f"{r}")
    r = api.call("POST", p("cancel"), {"at_period_end": True})
    check(r.status == 409 and r.json["type"].endswith("subscription-already-canceling"), f"{r}")
    for body, slug in [({"at_period_end": "yes"}, "wrong-type"), ({"now": True}, "unknown-field")]:
        r = api.call("POST", p("cancel"), body)
        check(r.status == 422 and r.json["type"].endswith(slug), f"cancel {body}: {r}")
    r = api.call("POST", p("cancel"), raw=b"{")
    check(r.status == 400, f"cancel with broken JSON: {r}")
    r = api.call("POST", p("cancel"), raw=b"{}", content_type="application/x-www-form-urlencoded")
    check(r.status == 415, f"cancel with a form body: {r}")
    r = api.call("POST", p("cancel"), example("cancelSubscription", "now"))
    check(r.status == 200 and r.json["subscription"]["status"] == "canceled", f"cancel: {r}")
    r = api.call("POST", p("cancel"))
    check(r.status == 409 and r.json["type"].endswith("subscription-already-ended"), f"{r}")
    kinds = [row[0] for row in ws.db().execute(
        "SELECT kind FROM events WHERE subscription_id = ? AND actor = 'shop-2026a' "
        "AND charge_id IS NULL ORDER BY id", (sid,))]
    check(kinds == ["subscription.created", "subscription.status", "subscription.status",
                    "subscription.resumed", "subscription.cancel_at_period_end",
                    "subscription.status"], f"one event per change: {kinds}")
    for what in ("pause", "resume", "cancel"):
        r = api.call("POST", path_of(f"{what}Subscription", id=987654321))
        check(r.status == 404, f"{what} of an unknown subscription: {r}")
        r = api.call("POST", path_of(f"{what}Subscription", id=sid), token=READ)
        check(r.status == 403, f"{what} with a read token: {r}")


def reads(api, ws, sid):
    r = api.call("GET", path_of("getSubscription", id=sid))
    check(r.status == 200 and r.json["subscription"]["id"] == sid, f"get: {r}")
    for bad in (987654321, "abc", "0", "01"):
        r = api.call("GET", f"/v1/subscriptions/{bad}")
        check(r.status == 404 and r.json["type"].endswith("subscription-not-found"), f"{bad}: {r}")
    r = api.call("GET", path_of("listSubscriptionEvents", id=sid) + "?limit=2")
    if check(r.status == 200, f"events: {r}"):
        events = r.json["events"]
        check(len(events) == 2 and events[0]["type"] == "subscription.created" and
              events[1]["type"] in ("subscription.paused", "charge.paid") and
              events[0]["id"].startswith("evt_") and r.json["next_after"], f"envelopes: {events}")
        r2 = api.call("GET", path_of("listSubscriptionEvents", id=sid) +
                      f"?after={r.json['next_after']}&limit=100")
        check(r2.status == 200 and r2.json["next_after"] is None and
              r2.json["events"][0]["event_id"] > events[-1]["event_id"], f"next page: {r2}")
    r = api.call("GET", path_of("listSubscriptionEvents", id=987654321))
    check(r.status == 404, f"events of an unknown subscription: {r}")
    r = api.call("GET", path_of("listSubscriptionEvents", id=sid) + "?limit=abc")
    check(r.status == 422, f"events limit=abc: {r}")
    r = api.call("GET", path_of("getCharge", id=987654321))
    check(r.status == 404 and r.json["type"].endswith("charge-not-found"), f"charge: {r}")


def woken_by_create(api, ws, sim):
    """A subscription due now is charged within seconds of its create: the API wakes the
    engine (billingd's own writes do not change PRAGMA data_version)."""
    started = time.monotonic()
    r = api.call("POST", "/v1/subscriptions",
                 {"customer_uid": "pay-now", "amount": 3300, "order_name": "Due now",
                  "charge_time": "00:00"})
    if not check(r.status == 201, f"create due now: {r}"):
        return None
    sid = r.json["subscription"]["id"]
    paid = wait_until("the new subscription's charge to be paid", lambda: ws.scalar(
        "SELECT count(*) FROM charges WHERE subscription_id = ? AND state = 'paid'", sid) == 1,
        timeout=25)
    took = time.monotonic() - started
    check(paid and took < 5, f"charged {took:.1f} s after the create (a poll would take up to 30)")
    cid = ws.scalar("SELECT id FROM charges WHERE subscription_id = ?", sid)
    r = api.call("GET", path_of("getCharge", id=cid))
    if check(r.status == 200, f"get charge: {r}"):
        check(r.json["charge"]["state"] == "paid" and
              [a["phase"] for a in r.json["attempts"]][:2] == ["request", "answer"],
              f"the charge with its journal: {r.json}")
    r = api.call("GET", path_of("getSubscription", id=sid))
    check(r.status == 200 and len(r.json["charges"]) == 1 and
          r.json["subscription"]["next_period"] == 1, f"subscription with its charge: {r}")
    return sid, cid


def parked_charge(api, ws):
    """A charge that is not paid: a card PortOne does not know is parked."""
    r = api.call("POST", "/v1/subscriptions",
                 {"customer_uid": "unknown-card", "amount": 1100, "order_name": "No card",
                  "charge_time": "00:00"})
    if not check(r.status == 201, f"create with an unknown card: {r}"):
        return None
    sid = r.json["subscription"]["id"]
    wait_until("the unknown card's charge to be parked", lambda: ws.scalar(
        "SELECT count(*) FROM charges WHERE subscription_id = ? AND state = 'parked'", sid) == 1)
    return ws.scalar("SELECT id FROM charges WHERE subscription_id = ?", sid)


def updates(api, ws):
    """PATCH: a price from the next period on, a card, the refusals (issue 13's rules)."""
    r = api.call("POST", "/v1/subscriptions", {"customer_uid": "cust_upd", "amount": 9900,
                                               "order_name": "Update me",
                                               "anchor_date": "2030-03-31"})
    if not check(r.status == 201, f"create for updates: {r}"):
        return None
    sid = r.json["subscription"]["id"]
    path = path_of("updateSubscription", id=sid)
    r = api.call("PATCH", path, example("updateSubscription", "price_rise"))
    if check(r.status == 200, f"price rise: {r}"):
        check(r.json["from_period"] == 0 and
              [(e["from_period"], e["amount"]) for e in r.json["price_schedule"]] == [(0, 12900)],
              f"a price entry from the next period: {r.json}")
    r = api.call("PATCH", path, example("updateSubscription", "new_card"))
    check(r.status == 200 and r.json["subscription"]["customer_uid"] == "cust_42_new_card",
          f"new card: {r}")
    r = api.call("GET", path_of("getSubscription", id=sid))
    check(r.status == 200 and len(r.json.get("price_schedule", [])) == 1,
          f"the subscription shows its price schedule: {r}")
    with ws.db() as c:
        kinds = [(k, a) for k, a in c.execute(
            "SELECT kind, actor FROM events WHERE subscription_id = ? ORDER BY id", (sid,))]
    check(kinds[1:] == [("subscription.price_scheduled", "shop-2026a"),
                        ("subscription.card_changed", "shop-2026a")], f"events: {kinds}")
    for body, slug in [({}, "nothing-to-change"), ({"amount": 0}, "invalid-amount"),
                       ({"amount": 200_000_000}, "invalid-amount"),
                       ({"order_name": "x" * 41}, "invalid-order-name"),
                       ({"charge_time": "25:00"}, "invalid-charge-time"),
                       ({"interval_unit": "fortnight"}, "invalid-interval"),
                       ({"interval_count": 0}, "invalid-interval"),
                       ({"customer_uid": "a\nb"}, "invalid-customer-uid"),
                       ({"amount": 9900, "from_period": -1}, "invalid-period"),
                       ({"charge_time": "09:00", "from_period": 3}, "change-starts-next-period"),
                       ({"amount": "9900"}, "wrong-type"), ({"price": 1}, "unknown-field")]:
        r = api.call("PATCH", path, body)
        check(r.status == 422 and r.json["type"].endswith(":" + slug), f"PATCH {body}: {r}")
    r = api.call("PATCH", path, raw=b"{")
    check(r.status == 400, f"PATCH broken JSON: {r}")
    r = api.call("PATCH", path, raw=b'{"amount": 1}', content_type="text/plain")
    check(r.status == 415, f"PATCH text/plain: {r}")
    r = api.call("PATCH", path, {"amount": 1000}, token=READ)
    check(r.status == 403, f"PATCH with a read token: {r}")
    r = api.call("PATCH", path_of("updateSubscription", id=987654321), {"amount": 1000})
    check(r.status == 404, f"PATCH of an unknown subscription: {r}")
    return sid


def consent(api, ws, sid, charged_sid):
    """Consent to the scheduled rise; the refusals."""
    path = path_of("recordConsent", id=sid)
    r = api.call("POST", path, example("recordConsent", "held"))
    if check(r.status == 200, f"consent to the scheduled rise: {r}"):
        check(ws.scalar("SELECT kind FROM events WHERE id = ?", r.json["event_id"]) ==
              "subscription.consent_given", "a consent event")
    r = api.call("POST", "/v1/subscriptions", {"customer_uid": "cust_nocons", "amount": 100,
                                               "order_name": "No rise", "anchor_date": "2030-01-01"})
    other = r.json["subscription"]["id"]
    r = api.call("POST", path_of("recordConsent", id=other))
    check(r.status == 409 and r.json["type"].endswith("nothing-awaits-consent"), f"{r}")
    if charged_sid:
        r = api.call("POST", path_of("recordConsent", id=charged_sid), {"period": 0})
        check(r.status == 422 and r.json["type"].endswith("period-has-charge"), f"{r}")
        r = api.call("PATCH", path_of("updateSubscription", id=charged_sid),
                     {"amount": 5000, "from_period": 0})
        check(r.status == 422 and r.json["type"].endswith("period-has-charge"),
              f"a price for a period that has its charge: {r}")
    for body, slug in [({"period": "x"}, "wrong-type"), ({"when": 1}, "unknown-field")]:
        r = api.call("POST", path, body)
        check(r.status == 422 and r.json["type"].endswith(slug), f"consent {body}: {r}")
    r = api.call("POST", path, raw=b"{")
    check(r.status == 400, f"consent broken JSON: {r}")
    r = api.call("POST", path, raw=b"{}", content_type="text/plain")
    check(r.status == 415, f"consent text/plain: {r}")
    r = api.call("POST", path, token=READ)
    check(r.status == 403, f"consent with a read token: {r}")
    r = api.call("POST", path_of("recordConsent", id=987654321))
    check(r.status == 404, f"consent of an unknown subscription: {r}")
    api.call("POST", path_of("cancelSubscription", id=other))
    r = api.call("POST", path_of("recordConsent", id=other))
    check(r.status == 409 and r.json["type"].endswith("subscription-closed"), f"{r}")
    r = api.call("PATCH", path_of("updateSubscription", id=other), {"amount": 200})
    check(r.status == 409 and r.json["type"].endswith("subscription-closed"), f"{r}")
    # A row written by hand whose calendar cannot be computed: its schedule cannot change.
    with ws.db() as c:
        broken = c.execute(
            "INSERT INTO subscriptions (customer_uid, amount, order_name, interval_unit, "
            "anchor_date, charge_time, time_zone, status) VALUES ('cust_broken', 100, 'Broken', "
            "'month', '2030-01-01', '10:00', 'Mars/Olympus', 'paused')").lastrowid
    r = api.call("PATCH", path_of("updateSubscription", id=broken), {"charge_time": "09:00"})
    check(r.status == 409 and r.json["type"].endswith("subscription-invalid"), f"{r}")


def refunds(api, ws, cid, unpaid_cid):
    """A refund of a paid charge is recorded (202) for billingd to send; the refusals."""
    path = path_of("refundCharge", id=cid)
    for body, status, slug in [
        ({"amount": 999999, "reason": "too much"}, 409, "refund-exceeds-paid"),
        ({"amount": 0, "reason": "zero"}, 422, "invalid-amount"),
        ({"reason": ""}, 422, "invalid-reason"),
        ({"amount": 100}, 422, "missing-field"),
        ({"amount": "100", "reason": "x"}, 422, "wrong-type"),
        ({"reason": "x", "why": "y"}, 422, "unknown-field"),
    ]:
        r = api.call("POST", path, body)
        check(r.status == status and r.json["type"].endswith(":" + slug), f"refund {body}: {r}")
    r = api.call("POST", path, raw=b"{")
    check(r.status == 400, f"refund broken JSON: {r}")
    r = api.call("POST", path, raw=b'{"reason": "x"}', content_type="text/plain")
    check(r.status == 415, f"refund text/plain: {r}")
    r = api.call("POST", path, example("refundCharge", "partial"), token=READ)
    check(r.status == 403, f"refund with a read token: {r}")
    r = api.call("POST", path_of("refundCharge", id=987654321), {"reason": "x"})
    check(r.status == 404, f"refund of an unknown charge: {r}")
    if unpaid_cid:
        r = api.call("POST", path_of("refundCharge", id=unpaid_cid), {"reason": "x"})
        check(r.status == 409 and r.json["type"].endswith("charge-not-paid"), f"{r}")
    key = {"Idempotency-Key": "refund-7d4c"}
    # billingd sends a refund at once; a slow PG keeps this one open while the others arrive.
    ws.sim.set_faults(["cancel:latency_ms=1500:1.0"])
    first = api.call("POST", path, example("refundCharge", "partial"), headers=key)
    if not check(first.status == 202 and first.json["refund"]["amount"] == 1000,
                 f"a partial refund: {first}"):
        return
    again = api.call("POST", path, example("refundCharge", "partial"), headers=key)
    check(again.status == 202 and again.json == first.json and
          again.header("Idempotent-Replayed") == "true", f"a retried refund: {again}")
    other = api.call("POST", path, example("refundCharge", "full"), headers=key)
    check(other.status == 409 and other.json["type"].endswith("idempotency-key-reused"), f"{other}")
    bad = api.call("POST", path, example("refundCharge", "full"), headers={"Idempotency-Key": ""})
    check(bad.status == 400 and bad.json["type"].endswith("invalid-idempotency-key"), f"{bad}")
    r = api.call("POST", path, example("refundCharge", "full"))
    check(r.status == 409 and r.json["type"].endswith("refund-in-progress"), f"a second one: {r}")
    ws.sim.set_faults([])
    check(ws.scalar("SELECT count(*) FROM refunds WHERE charge_id = ?", cid) == 1,
          "one refund recorded")
    r = api.call("GET", path_of("getCharge", id=cid))
    check(r.status == 200 and [x["id"] for x in r.json.get("refunds", [])] ==
          [first.json["refund"]["id"]], f"the charge shows its refund: {r}")


def billing_keys(api, sim):
    r = api.call("GET", path_of("verifyBillingKey", customer_uid="pay-card-1"))
    check(r.status == 200 and r.json["exists"] is True and r.json["card_number"], f"{r}")
    r = api.call("GET", path_of("verifyBillingKey", customer_uid="nobody-knows-me"))
    check(r.status == 404 and r.json["type"].endswith("billing-key-not-found"), f"{r}")
    r = api.call("GET", path_of("verifyBillingKey", customer_uid="a%0Ab"))
    check(r.status == 422 and r.json["type"].endswith("invalid-text"), f"{r}")
    sim.set_faults(["customer:http500_before:1.0"])
    r = api.call("GET", path_of("verifyBillingKey", customer_uid="pay-card-1"))
    check(r.status == 503 and r.json["type"].endswith("portone-unavailable") and
          r.header("Retry-After"), f"PortOne down: {r}")
    sim.set_faults([])


def bounds(port, ws):
    """Slow and idle clients are cut, connections are bounded, unknown paths and methods."""
    api = Api(port)
    r = api.call("DELETE", "/v1/subscriptions/1", documented=False)
    check(r.status == 405 and r.header("Allow") == "GET, PATCH", f"DELETE: {r}")
    r = api.call("GET", "/v2/things", documented=False)
    check(r.status == 404 and r.json["type"].endswith("no-such-endpoint"), f"/v2: {r}")
    api.close()
    # A client that sends half a header is cut after request_timeout (1.5 s).
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /v1/subscriptions HTTP/1.1\r\nHost: x\r\n")
    s.settimeout(10)
    started = time.monotonic()
    try:
        data = s.recv(100)
    except (ConnectionError, socket.timeout):
        data = b""
    check(data == b"" and time.monotonic() - started < 5, "a slow client is cut")
    s.close()
    # Oversized header.
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /v1/subscriptions HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    s.settimeout(10)
    try:
        head = s.recv(100)
    except ConnectionError:
        head = b""
    check(head.startswith(b"HTTP/1.1 431"), f"a 20 KB header: {head!r}")
    s.close()
    # max_connections: one more is answered 503 while that many are open.
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(MAX_CONNECTIONS)]
    time.sleep(0.3)
    extra = socket.create_connection(("127.0.0.1", port))
    extra.settimeout(10)
    try:
        head = extra.recv(200)
    except ConnectionError:
        head = b""
    check(head.startswith(b"HTTP/1.1 503") and b"too-many-connections" in head + extra.recv(500),
          f"the connection over the bound: {head!r}")
    extra.close()
    for h in held:
        h.close()
    time.sleep(0.3)
    # Idle keep-alive connections are closed after idle_timeout (1.5 s); a new one works.
    api = Api(port)
    check(api.call("GET", "/v1/subscriptions?limit=1").status == 200, "served again")
    sock = api.conn.sock
    time.sleep(2.5)
    sock.settimeout(5)
    try:
        closed = sock.recv(1) == b""
    except ConnectionError:
        closed = True
    check(closed, "an idle keep-alive connection is closed")
    api.close()


def unix_socket_and_credentials(sim):
    """[api] listen on a unix socket; a daemon whose PortOne credentials PortOne refuses says
    so for a billing-key check (503 portone-configuration)."""
    with Sim("--imp-key", "other_key") as wrong:
        ws = Workspace(wrong, extra_refunds=NO_CONSOLE_CHECK)
        sock = os.path.join(ws.dir, "api.sock")
        with open(ws.config_path, "a") as f:
            f.write(api_section(listen=sock))
        ws.env["BILLINGD_API_TOKENS"] = tokens_text()
        proc = start_daemon(ws)
        api = Api(unix_path=sock)
        try:
            wait_until("the unix socket", lambda: os.path.exists(sock) and
                       api.call("GET", "/v1/subscriptions").status == 200)
            r = api.call("GET", path_of("verifyBillingKey", customer_uid="pay-1"))
            check(r.status == 503 and r.json["type"].endswith("portone-configuration"), f"{r}")
        finally:
            api.close()
            stop_daemon(proc)
        return api


def tls_and_loopback_rule(sim):
    port = free_port()
    ws = Workspace(sim)
    base = open(ws.config_path).read()

    def check_config(section, env=None):
        with open(ws.config_path, "w") as f:
            f.write(base + section)
        e = dict(ws.env)
        e["BILLINGD_API_TOKENS"] = tokens_text()
        e.update(env or {})
        return subprocess.run([BILLINGD, "--config", ws.config_path, "--check-config"],
                              capture_output=True, text=True, env=e, timeout=60)

    r = check_config(f'\n[api]\nlisten = "0.0.0.0:{port}"\n')
    check(r.returncode == 78 and "loopback" in r.stderr and "tls_cert" in r.stderr,
          f"a non-loopback plaintext listener is refused: {r.returncode} {r.stderr}")
    r = check_config(f'\n[api]\nlisten = "0.0.0.0:{port}"\nallow_plaintext = true\n')
    check(r.returncode == 0, f"... unless allow_plaintext: {r.stderr}")
    r = check_config(f'\n[api]\nlisten = "127.0.0.1:{port}"\n', env={"BILLINGD_API_TOKENS": ""})
    check(r.returncode == 78 and "api_tokens" in r.stderr, f"no tokens: {r.stderr}")
    r = check_config(f'\n[api]\nlisten = "127.0.0.1:{port}"\n',
                     env={"BILLINGD_API_TOKENS": "shop write short"})
    check(r.returncode == 78 and "short" not in r.stderr, f"a short token (not shown): {r.stderr}")
    if not check(SIM_CERT and SIM_KEY, "SIM_CERT/SIM_KEY set by meson"):
        return
    r = check_config(f'\n[api]\nlisten = "0.0.0.0:{port}"\ntls_cert = "{SIM_CERT}"\n'
                     f'tls_key = "{SIM_KEY}"\n')
    check(r.returncode == 0, f"a non-loopback address with TLS: {r.stderr}")
    # Served over TLS (on loopback here).
    with open(ws.config_path, "w") as f:
        f.write(base + f'\n[api]\nlisten = "127.0.0.1:{port}"\ntls_cert = "{SIM_CERT}"\n'
                       f'tls_key = "{SIM_KEY}"\n')
    ws.env["BILLINGD_API_TOKENS"] = tokens_text()
    proc = start_daemon(ws)
    try:
        context = ssl.create_default_context(cafile=SIM_CERT)
        context.check_hostname = False

        def get():
            import http.client
            c = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
            c.request("GET", "/v1/subscriptions", headers={"Authorization": f"Bearer {WRITE}"})
            status = c.getresponse().status
            c.close()
            return status == 200
        wait_until("the TLS listener", get)
        plain = socket.create_connection(("127.0.0.1", port))
        plain.sendall(b"GET /v1/subscriptions HTTP/1.1\r\nHost: x\r\n\r\n")
        plain.settimeout(15)
        try:
            got = plain.recv(100)
        except (ConnectionError, socket.timeout):
            got = b""
        check(not got.startswith(b"HTTP/1.1 200"), f"plain HTTP on the TLS port: {got!r}")
        plain.close()
    finally:
        stop_daemon(proc)


with Sim("--seed", "16", "--prefix", "pay-=pay", "--prefix", "cust_=pay") as sim:
    port = free_port()
    ws = workspace(sim, port)
    ws.init_db()
    daemon = start_daemon(ws)
    api = Api(port)
    try:
        up = wait_until("the API", lambda: api.call("GET", "/v1/subscriptions").status == 200)
        if up:
            authentication(api)
            created = create_examples(api, ws)
            same_messages_as_billingctl(api, ws)
            idempotency(api, ws, port)
            pagination(api)
            if "monthly" in created:
                lifecycle(api, ws, created["monthly"]["id"])
                reads(api, ws, created["monthly"]["id"])
            charged = woken_by_create(api, ws, sim)
            unpaid = parked_charge(api, ws)
            billing_keys(api, sim)
            updated = updates(api, ws)
            if updated:
                consent(api, ws, updated, charged[0] if charged else None)
            if charged:
                # Last of the charging: this gateway cannot send refunds yet (unsupported is a
                # configuration error, which halts charging).
                refunds(api, ws, charged[1], unpaid)
            bounds(port, ws)
    finally:
        api.close()
        log = stop_daemon(daemon)
    check(daemon.returncode == 0, f"billingd stopped cleanly: {daemon.returncode} {log[-2000:]}")
    for name, (_, token) in TOKENS.items():
        check(token not in log, f"the token of {name} is never logged")
    check("api method=POST path=/v1/subscriptions status=201" in log,
          "requests are logged at debug (method, path, status)")
    unix_api = unix_socket_and_credentials(sim)
    tls_and_loopback_rule(sim)

    # Every documented answer of every operation was seen, and every problem type.
    statuses, types = documented_cases()
    covered = set(api.covered) | set(unix_api.covered)
    seen_types = api.problem_types | unix_api.problem_types
    missing = sorted(statuses - covered)
    check(not missing, f"documented answers never exercised: {missing}")
    # Refusals no request can provoke on purpose: a schedule that validates but has no calendar
    # (invalid-schedule), and a period whose charge billingd creates in the instant between the
    # update's checks and its insert (period-has-charge as a conflict).
    unprovokable = {("updateSubscription", 422, "invalid-schedule"),
                    ("updateSubscription", 409, "period-has-charge")}
    missing_types = sorted(types - seen_types - unprovokable)
    check(not missing_types, f"documented problem types never exercised: {missing_types}")
    check(ws.scalar("PRAGMA integrity_check") == "ok", "integrity_check")

finish("e2e_api")
