"""Figures: what the every-boot kernel-args keeper costs a boot.

    .venv/bin/python -m bench.kernel_args_bench [--runs 21]

Renders the bundled example machine's plan into a fresh target (with harv-install's
grubenv edit), lays out a booted node (its /proc/cmdline built from that grubenv,
bootargs.cfg and grub.cfg as GRUB builds it: tests/harvester_boot.py), then runs the
keeper as the yip boot step runs it, as its own process, N times: the first run of a
boot (no status under /run) and a later one. Prints the wall times (median, max) and
the modules the keeper imports that a boot would not need otherwise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from tests.harvester_boot import BOOTARGS_V14, boot_cmdline, harv_install, node_root, reboot

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = """\
install: {device: /dev/sda, dataDisk: /dev/nvme0n1, managementInterface: {interfaces: [{name: eno1}]}}
pciPassthrough:
  enabled: true
  devices: [{address: "0000:01:00.0"}]
  extraKernelArgs: [video=efifb:off]
"""
HEAVY = ("yaml", "jinja2", "jsonschema", "urwid", "pyudev", "ssl", "http.client")


def keeper(plan: str, grubenv: str, root: str) -> float:
    t0 = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-m", "installer_ext", "kernel-args", "--plan", plan, "--grubenv", grubenv, "--root", root],
        cwd=REPO, capture_output=True, text=True,
    )
    wall = time.monotonic() - t0
    if p.returncode != 0 or "all 3 of the plan" not in p.stdout:
        raise SystemExit(f"keeper failed: {p.returncode} {p.stdout} {p.stderr}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=21)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        target, root = os.path.join(tmp, "target"), os.path.join(tmp, "node")
        os.makedirs(os.path.join(target, "oem"))
        cfg = os.path.join(tmp, "c.yaml")
        with open(cfg, "w") as f:
            f.write(CONFIG)
        subprocess.run(
            [sys.executable, "-m", "installer_ext", "render", "--config", cfg, "--root", os.path.join(REPO, "examples/workstation"), "--target", target],
            cwd=REPO, check=True, capture_output=True,
        )
        harv_install(os.path.join(target, "oem"))
        grubenv = os.path.join(target, "oem", "grubenv")
        plan = os.path.join(target, "oem", "installer-ext", "plan.json")
        node_root(root, boot_cmdline(grubenv, BOOTARGS_V14), BOOTARGS_V14)
        first, later = [], []
        for _ in range(args.runs):
            reboot(root)
            first.append(keeper(plan, grubenv, root))
            later.append(keeper(plan, grubenv, root))
        probe = subprocess.run(
            [sys.executable, "-c",
             "import sys, installer_ext.cli as c; c.main(sys.argv[1:]); print(' '.join(sorted(m for m in sys.modules)))",
             "kernel-args", "--plan", plan, "--grubenv", grubenv, "--root", root],
            cwd=REPO, capture_output=True, text=True, check=True,
        )
        modules = set(probe.stdout.split()[-1000:])
    for name, xs in (("first run of a boot", first), ("later run of a boot", later)):
        print(f"{name}: median {statistics.median(xs) * 1000:.1f} ms, max {max(xs) * 1000:.1f} ms ({len(xs)} runs)")
    print("heavy modules imported:", ", ".join(m for m in HEAVY if m in modules) or "none")


if __name__ == "__main__":
    main()
