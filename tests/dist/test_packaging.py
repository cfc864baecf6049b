"""What the unit and the package promise, held to the code they describe: the unit does not
restart on the usage and configuration exit codes, ends a crash loop, waits for the
configuration, and allows the open files of the largest configuration; one version in
meson.build, debian/changelog, NEWS and both binaries' --version."""
import os
import re
import subprocess

from harness import check, finish

ROOT = os.environ["BILLINGD_SOURCE_ROOT"]


def read(*path):
    with open(os.path.join(ROOT, *path)) as f:
        return f.read()


def unit_settings(text):
    """{(section, key): [values]} of a unit file."""
    settings, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.setdefault((section, key), []).append(value)
    return settings


unit = unit_settings(read("systemd", "billingd.service.in"))
runtime = read("daemon", "runtime.hpp")
exit_codes = {name: int(code) for name, code in
              re.findall(r"inline constexpr int (\w+) = (\d+);", runtime)}

# A restart cannot fix a bad command line or configuration.
prevent = {int(code) for v in unit.get(("Service", "RestartPreventExitStatus"), [])
           for code in v.split()}
for name in ("usage", "config"):
    check(exit_codes.get(name) in prevent,
          f"RestartPreventExitStatus names exit_code::{name} ({exit_codes.get(name)}): {prevent}")

# A crash loop leaves the unit failed: a start limit in [Unit] that restarts reach.
check(unit.get(("Service", "Restart")) == ["on-failure"], "Restart=on-failure")
burst = unit.get(("Unit", "StartLimitBurst"), ["0"])[-1]
interval = unit.get(("Unit", "StartLimitIntervalSec"), ["0"])[-1]
check(burst.isdigit() and 0 < int(burst) <= 10, f"[Unit] StartLimitBurst is set: {burst}")
check(interval not in ("0", "infinity"), f"[Unit] StartLimitIntervalSec is set: {interval}")
restart_sec = unit.get(("Service", "RestartSec"), ["100ms"])[-1]
check(restart_sec.endswith("s") and restart_sec[:-1].isdigit() and interval.endswith("min") and
      int(burst) * int(restart_sec[:-1]) < int(interval[:-3]) * 60,
      f"{burst} restarts {restart_sec} apart fit in {interval}: a quick crash loop hits the limit")

# Started only once the file ExecStart reads exists.
exec_start = unit.get(("Service", "ExecStart"), [""])[-1]
config_path = exec_start.split("--config", 1)[-1].split()[0] if "--config" in exec_start else None
check(config_path is not None and
      config_path in unit.get(("Unit", "ConditionPathExists"), []),
      f"ConditionPathExists= names the configuration ExecStart reads ({config_path})")

# Open files: PortOne requests in flight, webhook deliveries, exec hooks (4 descriptors while
# one is being started), 8 metrics connections and the daemon's reserve (open_files.hpp).
config_cpp = read("daemon", "config.cpp")
bounds = [int(b) for b in re.findall(r'r\.integer\("max_in_flight", 1, (\d+)\)', config_cpp)]
reserve = re.search(r"open_files_reserve = (\d+);", read("daemon", "open_files.hpp"))
if check(len(bounds) == 2 and reserve, f"max_in_flight bounds {bounds} and the reserve found"):
    portone, events = bounds
    needed = portone + events + 4 * events + 8 + int(reserve.group(1))
    limit = unit.get(("Service", "LimitNOFILE"), ["0"])[-1].split(":")[0]
    check(limit.isdigit() and int(limit) >= needed,
          f"LimitNOFILE={limit} covers the largest configuration ({needed})")

# One version everywhere.
version = re.search(r"project\('billingd'.*?version : '([^']+)'", read("meson.build"), re.S)
version = version.group(1) if version else None
changelog = re.match(r"billingd \(([^)]+)\)", read("debian", "changelog"))
check(changelog and changelog.group(1).split("-")[0] == version,
      f"debian/changelog's version {changelog and changelog.group(1)} is meson.build's {version}")
check(re.search(rf"^{re.escape(version or '?')} ", read("NEWS"), re.M) is not None,
      f"NEWS has an entry for {version}")
for name, env in (("billingd", "BILLINGD"), ("billingctl", "BILLINGCTL")):
    r = subprocess.run([os.environ[env], "--version"], capture_output=True, text=True, timeout=30)
    check(r.returncode == 0 and r.stdout == f"{name} {version}\n",
          f"{name} --version prints '{name} {version}': {r.returncode} {r.stdout!r}")

finish("dist_packaging")
