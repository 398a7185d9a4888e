#!/usr/bin/env python3
"""Benchmark: what the node pays at every boot to read the plan and to re-check the host.

    .venv/bin/python bench/node_bench.py [--runs 7] [--baseline SRC]

Measures, median of `--runs` (after one warm-up):
- reading plan.json (`planfile.load_plan`) as its own process, imports included, for the
  workstation's plan (3 devices) and a 16-NIC SR-IOV host's (3200 VFs);
- the same validation in-process with jsonschema alone, what the fast check avoids;
- `read_host_use` in-process on the installed workstation (mounts, swap, routes,
  management bridge);
- a whole `installer-ext bind` process on the installed workstation whose devices are
  already on vfio-pci (a second boot: nothing to write), imports included.
With `--baseline SRC` (a checkout of another revision, e.g. `git worktree add /tmp/main
main`), the process figures are measured for SRC's installer_ext too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from tests.fakekernel import grp, plan_json, pt, write_plan  # noqa: E402
from tests.fakesys.builder import build  # noqa: E402
from tests.fakesys.machines import intel_workstation_iommu_off, sriov_host, workstation_node  # noqa: E402
from tests.planning import WORKSTATION_INSTALL, plan_for  # noqa: E402


def median_s(fn, runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def process(src: str, code: str) -> tuple[float, float]:
    """(wall s, CPU s of the child) of one process that runs `code` with `src` first on
    sys.path."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", f"import sys; sys.path.insert(0, {src!r}); {code}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{code}: exit {os.waitstatus_to_exitcode(status)}: {proc.stderr.read().decode()[-300:]}")
    proc.stderr.close()
    return wall, usage.ru_utime + usage.ru_stime


def compare(sources: list[tuple[str, str]], code: str, runs: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) per source, the sources' runs interleaved so that a change in
    the machine's load hits them alike."""
    for _, src in sources:
        process(src, code)
    got: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in sources}
    for _ in range(runs):
        for label, src in sources:
            got[label].append(process(src, code))
    return {label: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for label, v in got.items()}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--baseline", metavar="SRC", help="another checkout to compare the process figures with")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="node-bench-")

    iso = build(intel_workstation_iommu_off(), os.path.join(tmp, "iso"))
    small = plan_for(iso, {"enabled": True, "devices": [{"address": "0000:01:00.0"}, {"address": "0000:03:00.0"}]},
                     WORKSTATION_INSTALL).to_json()
    host = build(sriov_host(16, 200), os.path.join(tmp, "sriov"))
    big = plan_for(host, {"enabled": True, "sriov": [
        {"address": f"0000:{0x10 + i:02x}:00.0", "numVfs": 200, "vfsToVfio": True} for i in range(16)]}).to_json()
    paths = {}
    for name, plan in (("workstation (3 devices)", small), (f"sriov host ({len(big['passthrough'])} VFs)", big)):
        paths[name] = os.path.join(tmp, f"{len(plan['passthrough'])}.json")
        with open(paths[name], "w") as f:
            json.dump(plan, f)

    m = workstation_node()
    for d in m.devices:
        if d.address in ("0000:01:00.0", "0000:01:00.1"):
            d.driver = "vfio-pci"
    node = build(m, os.path.join(tmp, "node"))
    write_plan(node, plan_json(
        passthrough=[pt("0000:01:00.0", "10de:2206", 1, driver="nvidia"), pt("0000:01:00.1", "10de:1aef", 1)],
        groups=[grp(["0000:00:01.0", "0000:01:00.0", "0000:01:00.1"], ["0000:01:00.0", "0000:01:00.1"],
                    ["0000:00:01.0"], 1)],
    ))

    sources = [("this tree", REPO)] + ([("baseline", os.path.abspath(args.baseline))] if args.baseline else [])
    print(f"median of {args.runs} runs, after one warm-up; python {sys.version.split()[0]}")
    figures = [(f"read plan.json, {name}", f"from installer_ext.plan.planfile import load_plan; load_plan({path!r})")
               for name, path in paths.items()]
    figures.append(("`bind` on the installed workstation, all already bound",
                    f"from installer_ext.cli import main; sys.exit(main(['bind', '--root', {node!r}]))"))
    for what, code in figures:
        for label, (wall, cpu) in compare(sources, code, args.runs).items():
            print(f"{what}, own process, {label}: wall {wall * 1000:.1f} ms, CPU {cpu * 1000:.1f} ms")

    from installer_ext.host.inuse import read_host_use
    from installer_ext.plan import planfile

    t = median_s(lambda: read_host_use(node), args.runs)
    print(f"read_host_use, installed workstation, in-process: {t * 1000:.2f} ms")
    with open(paths[f"sriov host ({len(big['passthrough'])} VFs)"]) as f:
        doc = json.load(f)
    t = median_s(lambda: planfile._fast_check()(doc), args.runs)
    print(f"fast schema check, {len(big['passthrough'])} VFs, in-process: {t * 1000:.1f} ms")
    t = median_s(lambda: list(planfile._validator().iter_errors(doc)), max(1, args.runs // 2))
    print(f"jsonschema validation, {len(big['passthrough'])} VFs, in-process: {t * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
