"""billingctl's command line: help texts, usage errors (64) and configuration errors (78)."""
import os

from ctl_support import Ctl, expect_exit
from harness import check, finish

COMMANDS = [
    ["subscription", "add"], ["subscription", "list"], ["subscription", "show"],
    ["subscription", "pause"], ["subscription", "resume"], ["subscription", "cancel"],
    ["customer", "verify"], ["charges"], ["attempts"], ["events"], ["due"], ["parked"],
    ["in-doubt"], ["charge", "retry"], ["charge", "resolve"],
]


def every_command_has_help_with_an_example(ctl):
    r = ctl.run("--help", database=False)
    expect_exit(r, 0, "--help")
    check("Exit codes" in r.stdout and "78" in r.stdout, "top-level help lists the exit codes")
    for cmd in COMMANDS:
        r = ctl.run(*cmd, "--help", database=False)
        if expect_exit(r, 0, f"{cmd} --help"):
            check("Example" in r.stdout, f"{cmd} --help has an example: {r.stdout}")
            check(len(r.stdout.splitlines()) > 3, f"{cmd} --help has a description")


def bad_command_lines_exit_64(ctl):
    ctl.add()  # a database, so that no error below is about a missing one
    cases = [
        [],
        ["frobnicate"],
        ["subscription"],
        ["subscription", "add", "--customer-uid", "c", "--name", "n"],  # no --amount
        ["subscription", "add", "--customer-uid", "c", "--name", "n", "--amount", "abc"],
        ["subscription", "add", "--customer-uid", "c", "--name", "n", "--amount", "1",
         "--anchor", "2024-01-01", "--trial-days", "3"],
        ["subscription", "add", "--customer-uid", "c", "--name", "n", "--amount", "1",
         "--no-such-option"],
        ["subscription", "show"],
        ["subscription", "show", "one"],
        ["subscription", "cancel", "1", "2"],
        ["charges"],
        ["attempts", "x"],
        ["due", "--as-of", "yesterday"],
        ["charge", "resolve", "1"],
        ["charge", "resolve", "1", "--paid"],
        ["charge", "resolve", "1", "--give-up"],
        ["charge", "resolve", "1", "--paid", "--imp-uid", "imp_1", "--give-up", "--reason", "x"],
        ["charge", "resolve", "1", "--give-up", "--reason", "x", "--check"],
        ["charge", "resolve", "1", "--imp-uid", "imp_1"],
        ["customer"],
        ["customer", "verify"],
        ["--actor", "", "parked"],
    ]
    for args in cases:
        r = ctl.run(*args)
        expect_exit(r, 64, f"billingctl {' '.join(args)}")
    check(ctl.row("SELECT count(*) AS n FROM subscriptions")["n"] == 1,
          "usage errors change nothing")


def global_options_work_after_the_command(ctl):
    r = ctl.run("subscription", "list", "--json")
    expect_exit(r, 0, "subscription list --json")
    check(r.stdout.lstrip().startswith("["), f"--json after the command: {r.stdout[:40]!r}")


def configuration_errors_exit_78(ctl):
    missing = os.path.join(ctl.dir, "nope.toml")
    expect_exit(ctl.run("--config", missing, "parked", database=False), 78, "missing config",
                "nope.toml")
    bad = os.path.join(ctl.dir, "bad.toml")
    with open(bad, "w") as f:
        f.write('database = "x.db"\n[portone]\nbase_url = "http://example.com"\n')
    expect_exit(ctl.run("--config", bad, "parked", database=False), 78, "bad base_url")
    broken = os.path.join(ctl.dir, "broken.toml")
    with open(broken, "w") as f:
        f.write("database = \n")
    expect_exit(ctl.run("--config", broken, "parked", database=False), 78, "broken TOML")
    expect_exit(ctl.run("--database", os.path.join(ctl.dir, "typo.db"), "parked",
                        database=False), 78, "missing database", "no such database")
    check(not os.path.exists(os.path.join(ctl.dir, "typo.db")),
          "a read command does not create a database")
    good = os.path.join(ctl.dir, "good.toml")
    with open(good, "w") as f:
        f.write(f'database = "{ctl.db_path}"\n')
    expect_exit(ctl.run("--config", good, "parked", database=False), 0,
                "--config alone finds the database")
    # PortOne commands need credentials: none in the environment -> 78, secret not echoed.
    r = ctl.run("--config", good, "customer", "verify", "cust_1", database=False)
    expect_exit(r, 78, "customer verify without credentials", "BILLINGD_PORTONE_IMP_KEY")
    r = ctl.run("customer", "verify", "cust_1")  # --database only: default config missing
    expect_exit(r, 78, "customer verify with --database only")


ctl = Ctl()
every_command_has_help_with_an_example(ctl)
bad_command_lines_exit_64(ctl)
global_options_work_after_the_command(ctl)
configuration_errors_exit_78(ctl)
finish("billingctl usage")
