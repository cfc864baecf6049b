"""billingctl customer verify and charge resolve --check against portone-sim."""
import json
import time
import urllib.request

from ctl_support import Ctl, expect_exit
from harness import Sim, Workspace, check, finish


def pay_at_sim(sim, customer_uid, merchant_uid, amount):
    """Charges through the simulator's PortOne API directly; returns the imp_uid."""
    def call(path, body, token=None):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = token
        req = urllib.request.Request(sim.base_url + path, data=json.dumps(body).encode(),
                                     method="POST", headers=headers)
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read().decode())
    token = call("/users/getToken", {"imp_key": "sim_key", "imp_secret": "sim_secret"})
    token = token["response"]["access_token"]
    paid = call("/subscribe/payments/again", {"customer_uid": customer_uid,
                                              "merchant_uid": merchant_uid, "amount": amount,
                                              "name": "Pro plan"}, token)
    check(paid["code"] == 0 and paid["response"]["status"] == "paid", f"sim paid: {paid}")
    return paid["response"]["imp_uid"]


def ctl_for(ws):
    ctl = Ctl()
    ctl.db_path = ws.db_path
    ctl.env = ws.env
    return ctl


def customer_verify(ctl, ws, down):
    # Creates the database the config names, in the config's merchant_uid namespace.
    r = ctl.run("--config", ws.config_path, "subscription", "add", "--customer-uid", "cust_1",
                "--amount", 9900, "--name", "Pro plan")
    expect_exit(r, 0, "add through the configuration")
    r = ctl.run("--config", ws.config_path, "customer", "verify", "cust_1")
    if expect_exit(r, 0, "verify a registered customer"):
        check("BC카드" in r.stdout and "kakaopay" in r.stdout, f"card and pg: {r.stdout}")
    out = ctl.json("--config", ws.config_path, "customer", "verify", "cust_2")
    if out:
        check(out["exists"] is True and out["card_number"] and out["pg_provider"] == "kakaopay",
              f"verify --json: {out}")
        check(set(out) == {"customer_uid", "exists", "card_name", "card_number", "pg_provider"},
              "stable keys")
    r = ctl.run("--csv", "--config", ws.config_path, "customer", "verify", "cust_2")
    lines = r.stdout.splitlines()
    check(r.returncode == 0 and len(lines) == 2 and
          lines[0] == "customer_uid,exists,card_name,card_number,pg_provider" and
          lines[1].startswith("cust_2,true,"), f"verify --csv: {r.stdout!r}")
    r = ctl.run("--config", ws.config_path, "customer", "verify", "stranger_1")
    expect_exit(r, 65, "verify an unregistered customer", "no billing key")
    r = ctl.run("--config", down.config_path, "customer", "verify", "cust_1")
    expect_exit(r, 69, "verify while PortOne is unreachable")
    check("sim_secret" not in r.stderr + r.stdout, "the secret never appears in output")
    bad = dict(ws.env)
    bad["BILLINGD_PORTONE_IMP_SECRET"] = "wrong_secret"
    r = ctl.run("--config", ws.config_path, "customer", "verify", "cust_1", env=bad)
    expect_exit(r, 78, "wrong credentials are a configuration error", "credentials")
    check("wrong_secret" not in r.stderr + r.stdout, "a wrong secret is not echoed")


def resolve_with_check(ctl, ws, down, sim):
    sid = ctl.add(amount=9900)
    uid = f"{ws.prefix}-s{sid}-p0"
    imp = pay_at_sim(sim, "cust_1", uid, 9900)
    cid = ctl.add_charge(sid, 0, "parked", merchant_uid=uid, park_reason="still in doubt")

    r = ctl.run("--config", ws.config_path, "charge", "resolve", cid, "--paid", "--imp-uid",
                "imp_wrong", "--check")
    expect_exit(r, 65, "--check with another imp_uid", imp)
    check(ctl.charge(cid)["state"] == "parked", "refused: still parked")
    r = ctl.run("--config", down.config_path, "charge", "resolve", cid, "--paid", "--imp-uid",
                imp, "--check")
    expect_exit(r, 69, "--check while PortOne is unreachable")
    check(ctl.charge(cid)["state"] == "parked", "unreachable: still parked")

    res = ctl.json("--config", ws.config_path, "charge", "resolve", cid, "--paid", "--imp-uid",
                   imp, "--check")
    c = ctl.charge(cid)
    check(c["state"] == "paid" and c["imp_uid"] == imp, f"--check confirmed: {c}")
    check(res is not None and res["charge"]["imp_uid"] == imp, "resolve --json")
    check(ctl.subscription(sid)["next_period"] == 1, "subscription advanced")
    lookups = ctl.rows("SELECT * FROM attempts WHERE charge_id = ? AND kind = 'lookup'", cid)
    check(len(lookups) >= 2 and any(a["phase"] == "answer" and a["outcome"] == "paid"
                                    for a in lookups), f"the lookups are journaled: {lookups}")

    # PortOne paid a different amount than the charge asked: refused.
    sid2 = ctl.add(amount=5000)
    uid2 = f"{ws.prefix}-s{sid2}-p0"
    imp2 = pay_at_sim(sim, "cust_1", uid2, 9900)
    cid2 = ctl.add_charge(sid2, 0, "parked", amount=5000, merchant_uid=uid2)
    r = ctl.run("--config", ws.config_path, "charge", "resolve", cid2, "--paid", "--imp-uid",
                imp2, "--check")
    expect_exit(r, 65, "--check with a different amount", "amount 9900 != asked 5000")
    check(ctl.charge(cid2)["state"] == "parked", "amount mismatch: still parked")

    # Nothing at PortOne under that merchant_uid: refused.
    sid3 = ctl.add()
    cid3 = ctl.add_charge(sid3, 0, "unknown", merchant_uid=f"{ws.prefix}-s{sid3}-p0",
                          next_action_at=int(time.time()) + 600)
    r = ctl.run("--config", ws.config_path, "charge", "resolve", cid3, "--paid", "--imp-uid",
                "imp_1", "--check")
    expect_exit(r, 65, "--check without a payment at PortOne", "no payment")
    check(ctl.charge(cid3)["state"] == "unknown", "not found: unchanged")


with Sim("--prefix", "cust_=pay") as sim:
    ws = Workspace(sim)
    down = Workspace(sim, base_url="http://127.0.0.1:1")
    down.prefix = ws.prefix  # the same database's namespace; PortOne unreachable
    down.write_config(base_url="http://127.0.0.1:1")
    ctl = ctl_for(ws)
    customer_verify(ctl, ws, down)
    resolve_with_check(ctl, ws, down, sim)
finish("billingctl portone")
