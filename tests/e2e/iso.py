"""The installer ISO's boot, shared by the real-kernel suite: one guest in the ISO's state
(`intel_iommu=off`, every native driver loaded) that runs `detect --json` and renders
the suite's configs with `render --config --target`, as the install hook does on the ISO.

- test_detect_real_kernel.py reads its detect report (scenario 1, IOMMU off);
- test_scenarios.py boots configs A and B from what it rendered (hook mode);
- test_node_boot.py boots config NODE (A and B together) under systemd.

The conftest's session fixture `iso` starts it once, when the first test needs it.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import tempfile
from concurrent.futures import Future
from pathlib import Path

import pytest
import yaml

from installer_ext import grubline, paths
from installer_ext.kernel_cmdline import effective
from installer_ext.render import grubenv, manifest
from installer_ext.render.artifacts import manifest_check

from . import qemu

NIC_KEPT, NIC = "0000:00:03.0", "0000:00:04.0"  # eth0 (management), eth1
NVME = "0000:01:00.0"
VFS = ("0000:01:00.1", "0000:01:00.2")
BRIDGE = "0000:00:06.0"
E1000 = ("0000:02:01.0", "0000:02:02.0")
E1000_ID = "8086:100e"
AHCI = "0000:00:1f.2"

INSTALL = """\
install:
  mode: create
  device: /dev/sda
  managementInterface:
    interfaces:
      - name: eth0
    method: dhcp
"""
SRIOV = """\
  sriov:
    - address: "0000:01:00.0"
      numVfs: 2
      vfsToVfio: true
"""
# Scenario 2: one of the two identical e1000e NICs by address, the NVMe's two VFs.
CONFIG_A = INSTALL + f"""\
pciPassthrough:
  enabled: true
  gpuDrivers: false
  devices:
    - address: "{NIC}"
""" + SRIOV
# Scenarios 3 and 4: the e1000 behind the PCIe-to-PCI bridge; its group-mate comes along
# and, as 8086:100e is nowhere else, both are bound by id.
CONFIG_B = INSTALL + f"""\
pciPassthrough:
  enabled: true
  gpuDrivers: false
  devices:
    - address: "{E1000[0]}"
"""
# The node boot: all three ways at once (by address, by id, SR-IOV VFs).
CONFIG_NODE = INSTALL + f"""\
pciPassthrough:
  enabled: true
  gpuDrivers: false
  devices:
    - address: "{NIC}"
    - address: "{E1000[0]}"
""" + SRIOV
CONFIGS = {"a": CONFIG_A, "b": CONFIG_B, "node": CONFIG_NODE}

CONFIG_DIR = "/run/e2e-config"

# Every render in one interpreter (the CLI's main(), as `installer-ext render` runs it):
# under TCG the imports cost more than the work.
RENDER_ALL = """
import contextlib, io, os, sys
from installer_ext import cli
out = os.environ["E2E_OUT"]
for c in sys.argv[2:]:
    target = os.path.join(out, "target-" + c)
    os.makedirs(target, exist_ok=True)
    so, se = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(so), contextlib.redirect_stderr(se):
        try:
            rc = cli.main(["render", "--config", "%s/%s.yaml" % (sys.argv[1], c), "--target", target])
        except SystemExit as e:
            rc = e.code
    for ext, text in (("out", so.getvalue()), ("err", se.getvalue()), ("rc", "%s\\n" % rc)):
        with open(os.path.join(out, "render-%s.%s" % (c, ext)), "w") as f:
            f.write(text)
"""
RENDER_LINE, RENDER_FILES = qemu.python_hook(RENDER_ALL, "render_all.py", (CONFIG_DIR, *CONFIGS))

# Shell helpers for hooks. `run NAME ARGS`: installer-ext ARGS, its stdout, stderr and
# exit status in NAME.out/.err/.rc. `drivers FILE`: one line per watched function that
# exists: address, driver=..., override=... (driver_override). `net FILE`: interface
# and its PCI function.
WATCHED = (NIC_KEPT, NIC, NVME, *VFS, BRIDGE, *E1000, AHCI)
PRELUDE = f"""
t() {{ echo "$1 $(cut -d' ' -f1 /proc/uptime)" >>"$E2E_OUT/times.txt"; }}
run() {{ n=$1; shift; t "$n"; "$PYTHON" -m installer_ext "$@" >"$E2E_OUT/$n.out" 2>"$E2E_OUT/$n.err"; echo $? >"$E2E_OUT/$n.rc"; }}
drivers() {{
    for a in {' '.join(WATCHED)}; do
        d=/sys/bus/pci/devices/$a
        [ -e $d ] || continue
        drv=; [ -e $d/driver ] && drv=$(basename "$(readlink $d/driver)")
        echo "$a driver=$drv override=$(cat $d/driver_override 2>/dev/null)"
    done >"$E2E_OUT/$1"
}}
net() {{
    for n in /sys/class/net/*; do
        [ -e $n/device ] && echo "${{n##*/}} $(basename "$(readlink $n/device)")"
    done >"$E2E_OUT/$1"
}}
"""

KERNEL_GROUPS = """
for g in /sys/kernel/iommu_groups/*; do
    [ -d "$g/devices" ] || continue
    for d in "$g"/devices/*; do echo "${g##*/} ${d##*/}"; done
done >"$E2E_OUT/kernel-groups.txt"
"""

ISO_HOOK = PRELUDE + f"""
drivers drivers.txt
net net.txt
run detect detect --json
{KERNEL_GROUPS}
t render
{RENDER_LINE}
t end
"""


class Rendered:
    """A render target: the kernel args from its grubenv, its yip cloud-config, its plan."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.plan_text = (target / paths.PLAN_FILE).read_text()
        self.plan: dict = json.loads(self.plan_text)
        # The plan's arguments that the node's GRUB line has: Harvester's bootargs.cfg
        # with this grubenv (installer_ext/grubline.py).
        env = grubenv.parse((target / paths.GRUBENV_FILE).read_bytes(), str(target / paths.GRUBENV_FILE)).variables()
        line = grubline.node_line(grubline.HARVESTER_BOOTARGS, env)
        self.kernel_args: tuple[str, ...] = tuple(a for a in self.plan["kernel_args"] if effective(line, a))
        self.yip = yaml.safe_load((target / paths.YIP_FILE).read_text())

    def stage_files(self, cmdline: str) -> dict[str, str]:
        """The files the yip initramfs stage writes on a boot with this command line,
        each step's `if:` evaluated by sh against that command line and this plan (for
        the hook-mode boots; a systemd node boot runs tests/e2e/yip.py in the guest)."""
        out: dict[str, str] = {}
        for step in self.yip["stages"]["initramfs"]:
            if "if" in step and not self._applies(step["if"], cmdline):
                continue
            for f in step.get("files", ()):
                out[f["path"]] = f["content"]
        return out

    def _applies(self, cond: str, cmdline: str) -> bool:
        assert "/proc/cmdline" in cond or "skip" not in cond, f"cannot evaluate {cond!r} off the node"
        with tempfile.NamedTemporaryFile("w", suffix=".cmdline") as f:
            f.write(cmdline + "\n")
            f.flush()
            # The manifest check reads absolute /oem paths: done here on the target.
            check = manifest_check()
            if check in cond:
                if not manifest.verify(paths.Target(root=str(self.target))).complete:
                    return False
                cond = cond.replace(check, "true")
            local = cond.replace("/proc/cmdline", shlex.quote(f.name))
            local = local.replace("/oem/", shlex.quote(str(self.target / "oem")) + "/")
            return subprocess.run(["sh", "-c", local]).returncode == 0

    def driver_files(self, cmdline: str) -> dict[str, str]:
        """What of the stage a hook-mode guest needs: modprobe.d, modules-load.d, udev rules."""
        keep = ("/etc/modprobe.d/", "/etc/modules-load.d/", "/etc/udev/")
        return {p: c for p, c in self.stage_files(cmdline).items() if p.startswith(keep)}

    def modprobe_conf(self) -> str:
        return self.stage_files(" ".join(qemu.BASE_CMDLINE + self.kernel_args))["/" + paths.MODPROBE_FILE]


class IsoBoot:
    """The ISO boot, started once; `result()` waits for it, `rendered(name)` gives what
    render wrote for CONFIGS[name] (a test that needs it fails with the reason when the
    render did not happen)."""

    def __init__(self, future: Future) -> None:
        self.future = future
        self._rendered: dict[str, Rendered] = {}

    def result(self) -> qemu.BootResult:
        return self.future.result()

    def rendered(self, name: str) -> Rendered:
        if name not in self._rendered:
            r = self.result()
            try:
                r.check()
                rc = r.text(f"render-{name}.rc").strip()
                assert rc == "0", f"render of config {name} exited {rc}: {r.text(f'render-{name}.err')}"
            except AssertionError as e:
                pytest.fail(f"the ISO boot did not render config {name}: {e}", pytrace=False)
            self._rendered[name] = Rendered(r.out / f"target-{name}")
        return self._rendered[name]


def start(assets, workdir: Path) -> IsoBoot:
    files = {**{f"{CONFIG_DIR}/{name}.yaml": text for name, text in CONFIGS.items()}, **RENDER_FILES}
    return IsoBoot(qemu.start(ISO_HOOK, kernel_args=qemu.IOMMU_OFF, files=files, assets=assets, workdir=workdir))
