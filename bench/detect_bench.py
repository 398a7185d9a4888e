#!/usr/bin/env python3
"""Benchmark: `installer-ext detect --json` against `lspci -nnk` on the same 4096-function
tree (GPUs with their audio functions, SR-IOV NICs with their VFs).

    .venv/bin/python bench/detect_bench.py [--runs 7] [--functions 4096] [--keep DIR]

Prints the median wall time of each (after one warm-up run), their ratio, and the peak
memory (max RSS) of each. The goal (issue 2): detect within 1.5x lspci's wall time.
"""

from __future__ import annotations

import argparse
import os
import resource
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


def timed(cmd: list[str], runs: int) -> tuple[float, float, int]:
    """(median wall s, median cpu s, max RSS KiB) over `runs` runs after a warm-up."""
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    walls, cpus, rss = [], [], 0
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
        rss = max(rss, after.ru_maxrss)
    return statistics.median(walls), statistics.median(cpus), rss


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
    d_wall, d_cpu, d_rss = timed(ours, args.runs)
    l_wall, l_cpu, l_rss = timed(theirs, args.runs)
    print(f"tree: {count} PCI functions at {root}")
    print(f"installer-ext detect --json : median {d_wall * 1000:7.1f} ms wall, {d_cpu * 1000:7.1f} ms cpu, max RSS {d_rss / 1024:6.1f} MiB ({args.runs} runs)")
    print(f"lspci -nnk                  : median {l_wall * 1000:7.1f} ms wall, {l_cpu * 1000:7.1f} ms cpu, max RSS {l_rss / 1024:6.1f} MiB ({args.runs} runs)")
    print(f"ratio detect/lspci          : {d_wall / l_wall:.2f}x wall, {d_cpu / l_cpu:.2f}x cpu (goal: <= 1.5x wall)")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
