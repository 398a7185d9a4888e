#!/usr/bin/env python3
"""Benchmark: `installer-ext detect --json` against `lspci -nnk` on the same 4096-function
tree (GPUs with their audio functions, SR-IOV NICs with their VFs).

    .venv/bin/python bench/detect_bench.py [--runs 7] [--functions 4096] [--keep DIR]

Prints the median wall time of each (after one warm-up run), their ratio, and the peak
memory (max RSS) of each. The goal (issue 2): detect within 1.5x lspci's wall time.
The commands run in turn within each round, so a change in the machine's load touches
them alike. (At commit 552d28b a `--workers 1|2|both` option
also timed a forked second reader against one process: docs/planner.md has what it
measured and why the fork went.)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.machines import big_host  # noqa: E402
from tests.fakesys.builder import build, expand_vfs  # noqa: E402


def run_once(cmd: list[str]) -> tuple[float, float, int]:
    """(wall s, cpu s, max RSS KiB) of one run, from the child's own rusage."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def timed(cmds: dict[str, list[str]], runs: int) -> dict[str, tuple[float, float, int]]:
    """Per command: medians of wall and cpu time, and the largest max RSS, over `runs`
    rounds after a warm-up round; each round runs every command once, in turn."""
    for cmd in cmds.values():
        run_once(cmd)
    samples: dict[str, list[tuple[float, float, int]]] = {name: [] for name in cmds}
    for _ in range(runs):
        for name, cmd in cmds.items():
            samples[name].append(run_once(cmd))
    return {
        name: (
            statistics.median(s[0] for s in got),
            statistics.median(s[1] for s in got),
            max(s[2] for s in got),
        )
        for name, got in samples.items()
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--functions", type=int, default=4096)
    p.add_argument("--keep", metavar="DIR", help="build the tree here (reused when it exists)")
    args = p.parse_args()
    lspci = shutil.which("lspci")
    if lspci is None:
        sys.stderr.write("detect_bench: lspci not found (apt-get install pciutils)\n")
        return 1
    root = args.keep or tempfile.mkdtemp(prefix="installer-ext-bench-")
    machine = big_host(args.functions)
    count = len(expand_vfs(machine.devices))
    if not os.path.isdir(os.path.join(root, "sys")):
        build(machine, root)
    exe = shutil.which("installer-ext", path=os.path.dirname(sys.executable)) or shutil.which("installer-ext")
    ours = [exe, "detect", "--root", root, "--json"] if exe else [sys.executable, "-m", "installer_ext", "detect", "--root", root, "--json"]
    theirs = [lspci, "-nnk", "-O", f"sysfs.path={root}/sys/bus/pci"]
    cmds = {"installer-ext detect --json": ours, "lspci -nnk": theirs}
    got = timed(cmds, args.runs)
    print(f"tree: {count} PCI functions at {root}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end")
    l_wall, l_cpu, _ = got["lspci -nnk"]
    for name, (wall, cpu, rss) in got.items():
        print(f"{name:<28}: median {wall * 1000:7.1f} ms wall, {cpu * 1000:7.1f} ms cpu, max RSS {rss / 1024:6.1f} MiB ({args.runs} runs)")
    for name, (wall, cpu, _) in got.items():
        if name != "lspci -nnk":
            print(f"ratio to lspci, {name:<28}: {wall / l_wall:.2f}x wall, {cpu / l_cpu:.2f}x cpu (goal: <= 1.5x wall)")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
