"""What a booted node reports, from inside the QEMU guest (systemd as PID 1).

Run by the hook of a node boot (tests/e2e/test_node_boot.py) with the project
interpreter, from the checkout: `"$PYTHON" -m tests.e2e.node_probe --out "$E2E_OUT" ...`
(the standard library and installer_ext's paths and first-boot defaults). It waits, with deadlines, for the state the test
reads (udev's queue empty, the bind units done, first boot either waiting for the API
server or skipped by its condition), then writes one JSON document, `node.json`:

- `units`: properties of our units, the cluster's stand-in, the network targets (as
  `systemctl show` gives them), `failed`: `systemctl --failed`,
  `ordered`: the chain of After= orderings that makes systemd start network-online.target
  and rke2-server.service only after the bind unit (None: nothing does);
- `pci`: for every PCI function: driver, driver_override, network interfaces, udev's
  properties (`SYSTEMD_WANTS`, `TAGS`), sriov_numvfs;
- `journal`: each of our units' journal lines (monotonic µs, message);
- `files`: the node's /etc files we write, `modprobe_c`: kmod's view of them;
- `bind_status`, `bind_record`: what the binder wrote;
- `vfio`: tests/e2e/vfio_check.py on every function the plan passes through that is on
  vfio-pci;
- `firstboot_cycle` (--firstboot-cycle): the first-boot unit run again with its times
  divided by the same factor (see `firstboot_cycle`);
- `waited`: how long each wait took, and `timeouts`: the waits that ran out.

It also copies what of the node survives a reboot (/oem, /usr/local/lib/installer-ext,
/etc/systemd: see PERSISTENT) to OUT/persist/, for a second boot of the same root.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from typing import Any, Callable

from installer_ext import paths

OUR_UNITS = (paths.BIND_UNIT, paths.FIRSTBOOT_UNIT)
OTHER_UNITS = (
    "rke2-server.service", "network-pre.target", "network.target", "network-online.target",
    "systemd-udev-trigger.service", "systemd-modules-load.service", "multi-user.target",
)
PROPS = (
    "Id", "LoadState", "ActiveState", "SubState", "Result", "UnitFileState", "ConditionResult",
    "ConditionTimestampMonotonic", "ExecMainStatus", "ExecMainCode", "NRestarts", "StatusText",
    "InactiveExitTimestampMonotonic", "ActiveEnterTimestampMonotonic", "ExecMainStartTimestampMonotonic",
    "ExecMainExitTimestampMonotonic", "Restart", "RestartUSec", "StartLimitIntervalUSec", "StartLimitBurst",
    "TimeoutStartUSec", "After", "Before", "Wants", "WantedBy", "FragmentPath", "DropInPaths",
)
NODE_FILES = tuple("/" + f for f in (paths.MODPROBE_FILE, paths.MODULES_LOAD_FILE, paths.UDEV_RULE_FILE))
# What survives a reboot of a Harvester node, of what we write: COS_OEM (/oem), our state
# on COS_PERSISTENT (/usr/local), and /etc/systemd, which Harvester bind-mounts from
# /usr/local/.ros-state at the initramfs stage (harvester/harvester-installer
# package/harvester-os/files/system/oem/00_ros-rootfs.yaml, DIRS "etc/systemd"); the
# rest of /etc is rebuilt every boot.
PERSISTENT = ("/oem", "/" + os.path.dirname(paths.BIND_RECORD_FILE), "/etc/systemd")
BIND_STATUS = "/" + paths.BIND_STATUS_FILE
BIND_RECORD = "/" + paths.BIND_RECORD_FILE
FIRSTBOOT = paths.FIRSTBOOT_UNIT
API_WAIT = "waiting for the API server"
DROPIN = "/run/systemd/system/installer-ext-firstboot.service.d/50-e2e-timescale.conf"
MAX_RESTARTS = 12  # a time-scaled first boot restarted this often is taken to loop (it allows 8 attempts)

_t0 = time.monotonic()


def enabled_units() -> list[str]:
    """Every unit enabled under /etc/systemd/system, whatever its target
    (multi-user.target.wants, timers.target.wants, ...)."""
    top = "/etc/systemd/system"
    return sorted({u for d in os.listdir(top) if d.endswith(".wants") for u in os.listdir(os.path.join(top, d))})


def run(*cmd: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def show(unit: str, props: tuple[str, ...] = PROPS) -> dict[str, str]:
    """`systemctl show` of one unit ("" for the manager itself)."""
    p = run("systemctl", "show", *([unit] if unit else []), *(f"--property={x}" for x in props))
    out = {}
    for line in p.stdout.splitlines():
        k, _, v = line.partition("=")
        out[k] = v
    return out


def show_many(units: list[str], props: tuple[str, ...] = PROPS) -> dict[str, dict[str, str]]:
    """`systemctl show` of several units in one call (blocks in the given order)."""
    p = run("systemctl", "show", *units, *(f"--property={x}" for x in props))
    blocks = [b for b in p.stdout.split("\n\n")]
    out = {}
    for unit, block in zip(units, blocks):
        d = {}
        for line in block.splitlines():
            k, _, v = line.partition("=")
            d[k] = v
        out[unit] = d
    return out


def ordered_after(later: str, first: str) -> list[str] | None:
    """The chain of After= orderings by which systemd starts `later` only once `first`
    is done (`later`, ..., `first`), or None. systemd's After= of a unit includes the
    other units' Before= toward it. Breadth first, one `systemctl show` per level
    (`systemctl list-dependencies --after --all` took ~20 s under TCG)."""
    parent: dict[str, str | None] = {later: None}
    frontier = [later]
    while frontier:
        props = show_many(frontier, ("After",))
        nxt = []
        for u in frontier:
            for dep in props.get(u, {}).get("After", "").split():
                if dep in parent:
                    continue
                parent[dep] = u
                if dep == first:
                    chain = [dep]
                    while parent[chain[-1]] is not None:
                        chain.append(parent[chain[-1]])  # type: ignore[arg-type]
                    return chain[::-1]
                nxt.append(dep)
        frontier = nxt
    return None


def our_units() -> list[str]:
    p = run("systemctl", "list-units", "--all", "--plain", "--no-legend", "--no-pager", "installer-ext*")
    return sorted({line.split()[0] for line in p.stdout.splitlines() if line.strip()} | set(OUR_UNITS))


def jobs() -> list[str]:
    p = run("systemctl", "list-jobs", "--plain", "--no-legend", "--no-pager")
    return [line.split()[1] for line in p.stdout.splitlines() if len(line.split()) > 1]


def journal(pattern: str, cursor: str | None = None) -> list[dict[str, Any]]:
    """This boot's journal entries for the units matching `pattern` (a unit or a glob):
    monotonic µs, message, the unit (`_SYSTEMD_UNIT` for its processes, `UNIT` for
    systemd's own lines about it) and whether systemd (PID 1) wrote it."""
    cmd = ["journalctl", "-b", "--no-pager", "-o", "json", "-u", pattern]
    if cursor:
        cmd += ["--after-cursor", cursor]
    out = []
    for line in run(*cmd).stdout.splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        msg = e.get("MESSAGE")
        if isinstance(msg, list):  # non-UTF-8 bytes
            msg = bytes(msg).decode(errors="replace")
        pid1 = e.get("_PID") == "1"
        out.append({"t": int(e.get("__MONOTONIC_TIMESTAMP", 0)), "msg": msg, "pid1": pid1,
                    "unit": e.get("UNIT") if pid1 else e.get("_SYSTEMD_UNIT")})
    return out


def journal_cursor() -> str | None:
    p = run("journalctl", "-b", "-n", "0", "--show-cursor", "--no-pager")
    m = re.search(r"-- cursor: (\S+)", p.stdout)
    return m.group(1) if m else None


def wait_for(name: str, pred: Callable[[], bool], timeout: float, waited: dict, timeouts: list, interval: float = 0.5) -> bool:
    start = time.monotonic()
    while True:
        if pred():
            waited[name] = round(time.monotonic() - start, 2)
            return True
        if time.monotonic() - start > timeout:
            waited[name] = round(time.monotonic() - start, 2)
            timeouts.append(name)
            return False
        time.sleep(interval)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


UDEV_KEYS = ("SYSTEMD_WANTS", "TAGS", "CURRENT_TAGS", "DRIVER", "ID_NET_NAME_PATH")


def udev_db() -> dict[str, dict[str, str]]:
    """{PCI address: the properties above} from udev's database (one `udevadm info
    --export-db`): what udev recorded for each function's last event (a bind or unbind
    event replaces the properties of the add event)."""
    out: dict[str, dict[str, str]] = {}
    for block in run("udevadm", "info", "--export-db").stdout.split("\n\n"):
        path, props = None, {}
        for line in block.splitlines():
            if line.startswith("P: "):
                path = line[3:]
            elif line.startswith("E: "):
                k, _, v = line[3:].partition("=")
                if k in UDEV_KEYS:
                    props[k] = v
        if path and "/pci" in path:
            out[os.path.basename(path)] = props
    return out


def pci() -> dict[str, dict[str, Any]]:
    """Every PCI function's driver, driver_override, interfaces, sriov_numvfs, udev's
    properties."""
    out = {}
    udev = udev_db()
    base = "/sys/bus/pci/devices"
    for addr in sorted(os.listdir(base)):
        d = os.path.join(base, addr)
        link = os.path.join(d, "driver")
        drv = os.path.basename(os.readlink(link)) if os.path.islink(link) else ""
        try:
            net = sorted(os.listdir(os.path.join(d, "net")))
        except OSError:
            net = []
        out[addr] = {"driver": drv, "override": _read(os.path.join(d, "driver_override")), "net": net,
                     "udev": udev.get(addr, {}), "numvfs": _read(os.path.join(d, "sriov_numvfs"))}
    return out


def settled_bind() -> bool:
    """No job queued for a bind unit, none of them starting."""
    if any(j.startswith("installer-ext-bind") for j in jobs()):
        return False
    for u in our_units():
        if u.startswith("installer-ext-bind") and show(u, ("ActiveState",))["ActiveState"] in ("activating", "deactivating"):
            return False
    return True


def firstboot_decided(expect: str) -> Callable[[], bool]:
    def pred() -> bool:
        s = show(FIRSTBOOT, ("ActiveState", "ConditionTimestampMonotonic", "ConditionResult"))
        if expect == "skipped":
            return s["ConditionTimestampMonotonic"] not in ("", "0")
        lines = [e for e in journal(FIRSTBOOT) if not e["pid1"] and API_WAIT in (e["msg"] or "")]
        return len(lines) >= 2 or s["ActiveState"] in ("failed", "inactive", "active") and s["ConditionTimestampMonotonic"] not in ("", "0")
    return pred


# -- the first-boot unit, time-scaled ----------------------------------------------------

_SPAN = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")
_UNITS_US = {
    "": 1_000_000, "s": 1_000_000, "sec": 1_000_000, "second": 1_000_000, "seconds": 1_000_000,
    "us": 1, "usec": 1, "µs": 1, "ms": 1000, "msec": 1000,
    "m": 60_000_000, "min": 60_000_000, "minute": 60_000_000, "minutes": 60_000_000,
    "h": 3_600_000_000, "hr": 3_600_000_000, "hour": 3_600_000_000, "hours": 3_600_000_000,
    "d": 86_400_000_000, "day": 86_400_000_000, "days": 86_400_000_000,
    "w": 604_800_000_000, "week": 604_800_000_000, "weeks": 604_800_000_000,
}


def span_us(text: str) -> int | None:
    """A systemd time span (systemd.time(7): `90`, `1min 30s`, `500ms`, `infinity`) in
    microseconds; None for infinity."""
    text = text.strip()
    if text in ("infinity", ""):
        return None
    total, pos = 0, 0
    for m in _SPAN.finditer(text):
        if text[pos:m.start()].strip():
            raise ValueError(f"not a time span: {text!r}")
        if m.group(2) not in _UNITS_US:
            raise ValueError(f"unknown time unit in {text!r}")
        total += int(float(m.group(1)) * _UNITS_US[m.group(2)])
        pos = m.end()
    if text[pos:].strip():
        raise ValueError(f"not a time span: {text!r}")
    return total


def scaled(us: int | None, factor: float) -> str:
    return "infinity" if us is None else f"{max(1, int(us / factor))}us"


def timescale_dropin(argv: list[str], default_deadline: float, target_deadline: float, props: dict[str, str],
                     start_slack: float = 0.0) -> tuple[str, float]:
    """The drop-in that runs the unit with every time divided by one factor: the
    program's --deadline (its default when the unit passes none), RestartSec=,
    TimeoutStartSec=, StartLimitIntervalSec= (0, no rate limit, stays 0).
    StartLimitBurst= and Restart= stay as they are. TimeoutStartSec= also gets
    `start_slack` seconds: starting Python under TCG takes seconds, which a scaled
    timeout would not leave (on a node it is a small part of 30 minutes).
    Returns (drop-in text, factor)."""
    argv = list(argv)
    deadline = default_deadline
    if "--deadline" in argv:
        i = argv.index("--deadline")
        deadline = float(argv[i + 1])
        del argv[i:i + 2]
    factor = deadline / target_deadline
    argv += ["--deadline", f"{target_deadline:g}"]
    interval = span_us(props["StartLimitIntervalUSec"])
    text = (
        "# e2e: the unit's times divided by %g (tests/e2e/node_probe.py timescale_dropin)\n"
        "[Unit]\n"
        "StartLimitIntervalSec=%s\n"
        "[Service]\n"
        "ExecStart=\n"
        "ExecStart=%s\n"
        "RestartSec=%s\n"
        "TimeoutStartSec=%s\n"
    ) % (
        factor,
        "0" if interval == 0 else scaled(interval, factor),
        " ".join(shlex.quote(a) for a in argv),
        scaled(span_us(props["RestartUSec"]), factor),
        _plus(scaled(span_us(props["TimeoutStartUSec"]), factor), start_slack),
    )
    return text, factor


def _plus(span: str, seconds: float) -> str:
    return span if span == "infinity" else f"{int(span[:-2]) + int(seconds * 1e6)}us"


def unit_execstart(path: str) -> list[str]:
    """argv of the (last) ExecStart= of a unit file."""
    argv: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("ExecStart="):
                value = line.split("=", 1)[1].strip()
                argv = shlex.split(value) if value else []
    if argv:
        argv[0] = argv[0].lstrip("@-:+!|")
    return argv


def firstboot_cycle(target_deadline: float, window: float, start_slack: float) -> dict[str, Any]:
    """Run the first-boot unit once more with its times divided by one factor, so that
    the program's deadline is `target_deadline` seconds, and watch what systemd reports
    until the unit has ended for good (failed or inactive, nothing queued, for twice its
    scaled RestartSec: "ended"), or systemd restarted it MAX_RESTARTS times
    ("restarting"), or one run went on past its scaled TimeoutStartSec= without systemd
    ending it ("stalled"), or `window` seconds passed in all ("window"). However the
    restarts are bounded (systemd's start limit, the program counting its attempts and a
    condition that stops the unit, an exit status that prevents a restart), the unit
    must end by itself; when it does not, the test still accepts a bound that systemd's
    start limit alone guarantees (`restart_loop_bound`).

    The watch is paced by the runs, not by the clock: each run spends most of its time
    starting Python under TCG (20-30 s a run on a 2-core machine, 10-15 s of it CPU, for
    a 2 s deadline), so a fixed window of 150 s cut off a design that needs 8 attempts
    (CI, 2026-12-01: 5 restarts seen). `window` only caps a watch that went wrong."""
    from installer_ext.firstboot.options import Options  # the program's own default

    real = show(FIRSTBOOT)
    argv = unit_execstart(real["FragmentPath"])
    default = Options(root="/", plan="", kubeconfig="", state_dir="").deadline
    dropin, factor = timescale_dropin(argv, default, target_deadline, real, start_slack)
    run("systemctl", "stop", FIRSTBOOT)
    os.makedirs(os.path.dirname(DROPIN), exist_ok=True)
    with open(DROPIN, "w", encoding="utf-8") as f:
        f.write(dropin)
    run("systemctl", "daemon-reload")
    run("systemctl", "reset-failed", FIRSTBOOT)
    cursor = journal_cursor()
    scaled_props = show(FIRSTBOOT)
    restart_s = (span_us(scaled_props["RestartUSec"]) or 0) / 1e6
    hold = max(2 * restart_s, 1.5)
    timeout_us = span_us(scaled_props["TimeoutStartUSec"])
    # One run, start to end, as long as systemd lets it (infinity: the whole window).
    run_limit = window if timeout_us is None else timeout_us / 1e6 + hold + 10.0
    start = time.monotonic()  # CLOCK_MONOTONIC, as the journal's __MONOTONIC_TIMESTAMP
    p = run("systemctl", "start", "--no-block", FIRSTBOOT)
    samples: list[dict[str, Any]] = []
    settled_since: float | None = None
    changed = start
    outcome = "window"
    while time.monotonic() - start < window:
        s = show(FIRSTBOOT, ("ActiveState", "SubState", "Result", "NRestarts", "ExecMainStatus", "ExecMainCode"))
        s["t"] = round(time.monotonic() - start, 2)
        if not samples or any(samples[-1][k] != s[k] for k in s if k != "t"):
            samples.append(s)
            changed = time.monotonic()
        if s["NRestarts"].isdigit() and int(s["NRestarts"]) >= MAX_RESTARTS:
            outcome = "restarting"
            break
        if time.monotonic() - changed > run_limit:
            outcome = "stalled"
            break
        final = s["ActiveState"] in ("failed", "inactive", "active") and s["SubState"] != "auto-restart" \
            and FIRSTBOOT not in jobs()
        if final:
            settled_since = settled_since if settled_since is not None else time.monotonic()
            if time.monotonic() - settled_since >= hold:
                outcome = "ended"
                break
        else:
            settled_since = None
        time.sleep(0.25)
    return {
        "dropin": dropin, "factor": factor, "target_deadline": target_deadline, "default_deadline": default,
        "argv": argv, "window": window, "start_slack": start_slack, "start_us": int(start * 1e6), "start_rc": p.returncode, "start_err": p.stderr.strip(),
        "outcome": outcome, "elapsed": round(time.monotonic() - start, 2), "run_limit": run_limit, "samples": samples,
        "nrestarts": show(FIRSTBOOT, ("NRestarts",)).get("NRestarts"),
        "real": {k: real.get(k) for k in ("Restart", "RestartUSec", "TimeoutStartUSec", "StartLimitIntervalUSec",
                                          "StartLimitBurst")},
        "scaled": {k: scaled_props.get(k) for k in ("Restart", "RestartUSec", "TimeoutStartUSec",
                                                    "StartLimitIntervalUSec", "StartLimitBurst")},
        "journal": journal(FIRSTBOOT, cursor),
    }


def restart_loop_bound(real: dict[str, str], deadline_s: float) -> str | None:
    """None when systemd stops restarting a unit whose every run fails after
    `deadline_s`; else why it never does. systemd.unit(5): a start is refused once
    more than StartLimitBurst= starts fall within StartLimitIntervalSec= (0: no limit);
    runs start at least deadline + RestartSec= apart."""
    if real["Restart"] in ("no", ""):
        return None
    interval = span_us(real["StartLimitIntervalUSec"])
    if interval is None:  # infinity: the burst is never forgotten
        return None
    burst = int(real["StartLimitBurst"])
    period = deadline_s * 1e6 + (span_us(real["RestartUSec"]) or 0)
    if interval > 0 and burst * period < interval:
        return None
    return (f"Restart={real['Restart']} every {period / 1e6:g}s (deadline {deadline_s:g}s + "
            f"RestartSec={real['RestartUSec']}), and StartLimitBurst={burst} starts never fall within "
            f"StartLimitIntervalSec={real['StartLimitIntervalUSec']}: systemd restarts it for ever")


# -- collect ---------------------------------------------------------------------------


def vfio(plan_path: str, state: dict[str, dict[str, Any]]) -> Any:
    with open(plan_path, encoding="utf-8") as f:
        plan = json.load(f)
    addrs = [p["address"] for p in plan.get("passthrough", []) if state.get(p["address"], {}).get("driver") == "vfio-pci"]
    if not addrs:
        return []
    p = run(sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "vfio_check.py"), *addrs)
    try:
        data = json.loads(p.stdout)
    except ValueError:
        return {"error": p.stderr.strip() or p.stdout.strip(), "rc": p.returncode}
    return data if isinstance(data, list) else [data]


PERSIST_DONE = "persist.done"


def snapshot(out: str) -> None:
    """OUT/persist/ (then OUT/persist.done): the test starts the next boot of the same
    root from it while this one goes on."""
    for top in PERSISTENT:
        if os.path.isdir(top):
            shutil.copytree(top, os.path.join(out, "persist", top.lstrip("/")), symlinks=True, dirs_exist_ok=True)
    with open(os.path.join(out, PERSIST_DONE), "w", encoding="utf-8") as f:
        f.write("ok\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--plan", default="/" + paths.PLAN_FILE)
    ap.add_argument("--firstboot", choices=("waiting", "skipped"), required=True,
                    help="what first boot should be doing: waiting for the API server, or skipped by its condition")
    ap.add_argument("--firstboot-cycle", type=float, metavar="DEADLINE",
                    help="then run it again, time-scaled so its deadline is DEADLINE seconds")
    ap.add_argument("--firstboot-window", type=float, default=60.0)
    ap.add_argument("--start-slack", type=float, default=20.0,
                    help="seconds added to the scaled TimeoutStartSec= for starting Python under TCG")
    ap.add_argument("--timeout", type=float, default=150.0)
    args = ap.parse_args(argv)

    waited: dict[str, float] = {}
    timeouts: list[str] = []
    phases: dict[str, float] = {}
    last = [time.monotonic()]

    def phase(name: str) -> None:
        now = time.monotonic()
        phases[name] = round(now - last[0], 2)
        last[0] = now

    end = time.monotonic() + args.timeout
    left = lambda: max(1.0, end - time.monotonic())  # noqa: E731
    wait_for("rke2-server started", lambda: show("rke2-server.service", ("ActiveState",))["ActiveState"] == "active",
             left(), waited, timeouts)
    wait_for("bind units settled", settled_bind, left(), waited, timeouts)
    p = run("udevadm", "settle", f"--timeout={int(left())}", timeout=left() + 5)
    waited["udev settled"] = p.returncode
    wait_for("bind units settled after udev", settled_bind, left(), waited, timeouts)
    wait_for(f"first boot {args.firstboot}", firstboot_decided(args.firstboot), left(), waited, timeouts)
    phase("waits")

    timed: dict[str, float] = {}

    def timed_(name: str, fn: Callable[[], Any]) -> Any:
        t = time.monotonic()
        try:
            return fn()
        finally:
            timed[name] = round(time.monotonic() - t, 2)

    doc: dict[str, Any] = {
        "uptime_at_probe": _read("/proc/uptime"),
        "probe_s": round(time.monotonic() - _t0, 2),
        "units": timed_("units", lambda: show_many([*our_units(), *OTHER_UNITS])),
        "failed": timed_("failed", lambda: run("systemctl", "list-units", "--failed", "--plain", "--no-legend",
                                                "--no-pager").stdout.split("\n")),
        "ordered": timed_("ordered", lambda: {
            u: ordered_after(u, paths.BIND_UNIT) for u in ("network-online.target", "rke2-server.service")}),
        "pci": timed_("pci", pci),
        "journal": timed_("journal", lambda: journal("installer-ext*")),
        "files": {f: _read(f) for f in NODE_FILES},
        "enabled": enabled_units(),
        "modprobe_c": timed_("modprobe -c", lambda: [l for l in run("modprobe", "-c").stdout.splitlines()
                                                     if re.match(r"(options|softdep) (vfio|e1000)", l)]),
        "bind_status": json.loads(_read(BIND_STATUS) or "null"),
        "bind_record": json.loads(_read(BIND_RECORD) or "null"),
        "manager": show("", ("UserspaceTimestampMonotonic", "FinishTimestampMonotonic")),
        "virt": timed_("virt", lambda: run("systemd-detect-virt").stdout.strip()),
        "phases": phases,
        "collect_timing": timed,
        "waited": waited,
        "timeouts": timeouts,
    }
    state = doc["pci"]
    phase("collect")
    doc["vfio"] = vfio(args.plan, state) if os.path.isfile(args.plan) else []
    phase("vfio check")
    snapshot(args.out)
    if args.firstboot_cycle:
        doc["firstboot_cycle"] = firstboot_cycle(args.firstboot_cycle, args.firstboot_window, args.start_slack)
        phase("firstboot cycle")
    with open(os.path.join(args.out, "node.json"), "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
