"""Scenarios 2, 3 and 4 of issue 7, and the rescue switch: the whole product path on a
real kernel. config -> `render` -> the rendered kernel args and modprobe.d boot the
node -> `bind` on the node -> what the guest kernel reports.

Four boots, two at a time (one per core):

- `iso`: the installer ISO's state (`intel_iommu=off`, every native driver loaded).
  `render --config --target` runs there against `/` for configs A and B, as the
  install hook does on the ISO. Its grubenv, yip cloud-config and plan.json come back.
- `a` (scenario 2, config A: the management NIC eth0, one of the two identical e1000e
  NICs by address, the NVMe's two VFs to vfio-pci): boots with A's rendered kernel args
  and the rendered modprobe.d, kmod; `plan` in the guest, `bind` with the rendered
  plan at /oem/installer-ext/plan.json, `detect --json`, the VFIO check.
- `b` (scenarios 3 and 4, config B: the e1000 02:01.0 behind the PCIe-to-PCI bridge by
  address; the planner takes its group-mate 02:02.0 and, as 8086:100e is nowhere else,
  binds both by id): boots with B's rendered kernel args and modprobe.d, kmod, and
  the drivers in the harness's order (e1000 before vfio-pci), so only what render wrote
  (`softdep e1000 pre: vfio-pci`, `options vfio-pci ids=`) can give the pair to
  vfio-pci. The drivers are recorded first thing in the hook; then `bind`
  must find nothing to do, and the group must be viable.
- `rescue` (config A+B rendered on this machine against the recorded IOMMU-off tree
  of the same machine, so it can boot beside `iso`): the rendered kernel args plus
  `installer_ext.skip=1`. The yip stage that writes modprobe.d and the udev rule is
  left out (its `if:` says so on a rescue boot). `bind` must do nothing and record
  skipped=true, and the id-bound pair must stay on e1000 as the rescue stage promises
  (see test_rescue_boot_leaves_the_id_bound_group_on_its_host_driver).

Every assertion reads what the guest wrote to $E2E_OUT (or the guest's dmesg), never
QEMU's exit status.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tempfile
from concurrent.futures import Future
from pathlib import Path

import pytest
import yaml

from installer_ext import paths
from installer_ext.render import grubenv

from . import qemu

NIC_KEPT, NIC = "0000:00:03.0", "0000:00:04.0"  # eth0 (management), eth1
NVME = "0000:01:00.0"
VFS = ("0000:01:00.1", "0000:01:00.2")
BRIDGE = "0000:00:06.0"
E1000 = ("0000:02:01.0", "0000:02:02.0")
E1000_ID = "8086:100e"
AHCI = "0000:00:1f.2"
WATCHED = (NIC_KEPT, NIC, NVME, *VFS, BRIDGE, *E1000, AHCI)

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
CONFIG_A = INSTALL + f"""\
pciPassthrough:
  enabled: true
  gpuDrivers: false
  devices:
    - address: "{NIC}"
""" + SRIOV
CONFIG_B = INSTALL + f"""\
pciPassthrough:
  enabled: true
  gpuDrivers: false
  devices:
    - address: "{E1000[0]}"
"""
CONFIG_RESCUE = INSTALL + f"""\
pciPassthrough:
  enabled: true
  gpuDrivers: false
  devices:
    - address: "{NIC}"
    - address: "{E1000[0]}"
""" + SRIOV

CONFIG_DIR = "/run/e2e-config"
PLAN_ON_NODE = "/" + paths.PLAN_FILE
SKIP = paths.SKIP_ARG

# Shell helpers for every hook. `run NAME ARGS`: installer-ext ARGS, its stdout, stderr
# and exit status in NAME.out/.err/.rc. `drivers FILE`: one line per watched function
# that exists: address, driver=..., override=... (driver_override).
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

# kmod's view of the configuration (modprobe.d and the kernel command line).
MODPROBE_CONFIG = """
/sbin/modprobe -c 2>"$E2E_OUT/modprobe-c.err" | grep -E '^(options|softdep) (vfio|e1000)' >"$E2E_OUT/modprobe-c.txt"
/sbin/modprobe --show-depends e1000 >"$E2E_OUT/e1000-deps.txt" 2>&1
"""

# Both renders in one interpreter (the CLI's main(), as `installer-ext render` runs it):
# under TCG the imports cost more than the work.
RENDER_BOTH = """
import contextlib, io, os, sys
from installer_ext import cli
out = os.environ["E2E_OUT"]
for c in ("a", "b"):
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
RENDER_LINE, RENDER_FILES = qemu.python_hook(RENDER_BOTH, "render_both.py", (CONFIG_DIR,))

ISO_HOOK = PRELUDE + f"""
drivers drivers.txt
net net.txt
t render
{RENDER_LINE}
t end
"""

HOOK_A = PRELUDE + f"""
drivers drivers-start.txt
net net.txt
{MODPROBE_CONFIG}
run plan plan --config {CONFIG_DIR}/a.yaml --json
run bind bind
cp /run/installer-ext/bind-status.json "$E2E_OUT/status.json"
cat /sys/bus/pci/devices/{NVME}/sriov_numvfs >"$E2E_OUT/numvfs.txt"
drivers drivers-bound.txt
run detect detect --json
{KERNEL_GROUPS}
t vfio
"$PYTHON" tests/e2e/vfio_check.py {NIC} {' '.join(VFS)} >"$E2E_OUT/vfio.json" 2>"$E2E_OUT/vfio.err"
echo $? >"$E2E_OUT/vfio.rc"
t end
"""

HOOK_B = PRELUDE + f"""
drivers drivers-start.txt
[ -d /sys/module/e1000 ] && echo loaded >"$E2E_OUT/e1000-module.txt"
{MODPROBE_CONFIG}
run bind bind
cp /run/installer-ext/bind-status.json "$E2E_OUT/status.json"
drivers drivers-after.txt
{KERNEL_GROUPS}
t vfio
"$PYTHON" tests/e2e/vfio_check.py {' '.join(E1000)} >"$E2E_OUT/vfio.json" 2>"$E2E_OUT/vfio.err"
echo $? >"$E2E_OUT/vfio.rc"
t end
"""

HOOK_RESCUE = PRELUDE + f"""
drivers drivers-start.txt
ls /etc/modprobe.d >"$E2E_OUT/modprobe-d.txt"
{MODPROBE_CONFIG}
run bind bind
cp /run/installer-ext/bind-status.json "$E2E_OUT/status.json"
cat /sys/bus/pci/devices/{NVME}/sriov_numvfs >"$E2E_OUT/numvfs.txt"
drivers drivers-after.txt
t end
"""


# -- what render wrote -----------------------------------------------------------------


class Rendered:
    """A render target: the kernel args from its grubenv, the node's /etc files from
    its yip cloud-config (initramfs stage), its plan."""

    def __init__(self, target: Path) -> None:
        self.target = target
        env = dict(grubenv.parse((target / paths.GRUBENV_FILE).read_bytes(), str(target / paths.GRUBENV_FILE)))
        self.kernel_args: tuple[str, ...] = tuple(env[grubenv.KERNEL_ARGS_VAR].split())
        self.plan: dict = json.loads((target / paths.PLAN_FILE).read_text())
        self.plan_text = (target / paths.PLAN_FILE).read_text()
        self.yip = yaml.safe_load((target / paths.YIP_FILE).read_text())

    def stage_files(self, cmdline: str) -> dict[str, str]:
        """The files the yip initramfs stage writes on a boot with this command line,
        each step's `if:` evaluated by sh against that command line and this plan."""
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
            local = cond.replace("/proc/cmdline", shlex.quote(f.name))
            local = local.replace(PLAN_ON_NODE, shlex.quote(str(self.target / paths.PLAN_FILE)))
            return subprocess.run(["sh", "-c", local]).returncode == 0

    def driver_files(self, cmdline: str) -> dict[str, str]:
        """What of the stage a guest needs: modprobe.d, modules-load.d, udev rules."""
        keep = ("/etc/modprobe.d/", "/etc/modules-load.d/", "/etc/udev/")
        return {p: c for p, c in self.stage_files(cmdline).items() if p.startswith(keep)}

    def modprobe_conf(self) -> str:
        return self.stage_files(" ".join(qemu.BASE_CMDLINE + self.kernel_args))["/" + paths.MODPROBE_FILE]


def boot_drivers(kernel_args) -> tuple[str, ...]:
    """The harness's driver order, with the modules `rd.driver.pre=` names first: what
    dracut does with that argument (it loads them before udev starts)."""
    pre = [m for a in kernel_args if a.startswith("rd.driver.pre=") for m in a.split("=", 1)[1].split(",") if m]
    return (*pre, *(d for d in qemu.DEFAULT_DRIVERS if d not in pre))


def node_cmdline(args) -> str:
    return " ".join((*qemu.BASE_CMDLINE, *args))


# -- the boots -------------------------------------------------------------------------


class Guests:
    """The module's boots. `iso` and `rescue` start at once; `a` and `b` when `iso`
    has rendered their files. Each test waits only for the boot it reads."""

    def __init__(self, assets, tmp) -> None:
        self.assets = assets
        self.tmp = tmp
        self.futures: dict[str, Future] = {}
        self.rendered: dict[str, Rendered] = {}
        self.failure: str | None = None

    def start(self, name: str, hook: str, **kw) -> None:
        self.futures[name] = qemu.start(hook, assets=self.assets, workdir=self.tmp.mktemp(f"scn-{name}"), **kw)

    def result(self, name: str) -> qemu.BootResult:
        if name not in self.futures:
            pytest.fail(f"boot {name} never started: {self.failure}", pytrace=False)
        return self.futures[name].result()


def render_on_host(config: str, root: str, tmp: Path) -> Rendered:
    """`render` on this machine against `root`, a recorded tree of the guest."""
    (tmp / "config.yaml").write_text(config)
    target = tmp / "target"
    target.mkdir()
    p = subprocess.run(
        [sys.executable, "-m", "installer_ext", "render", "--config", str(tmp / "config.yaml"),
         "--root", root, "--target", str(target)],
        cwd=qemu.REPO, capture_output=True, text=True,
    )
    assert p.returncode == 0, f"render on the host failed ({p.returncode}): {p.stderr}"
    return Rendered(target)


@pytest.fixture(scope="module")
def guests(e2e_assets, e2e_kmod, real_kernel, tmp_path_factory) -> Guests:
    g = Guests(e2e_assets, tmp_path_factory)
    configs = {f"{CONFIG_DIR}/a.yaml": CONFIG_A, f"{CONFIG_DIR}/b.yaml": CONFIG_B}
    g.start("iso", ISO_HOOK, kernel_args=qemu.IOMMU_OFF, files={**configs, **RENDER_FILES})

    rescue = render_on_host(CONFIG_RESCUE, real_kernel("off"), tmp_path_factory.mktemp("render-rescue"))
    g.rendered["rescue"] = rescue
    args = (*rescue.kernel_args, SKIP)
    g.start(
        "rescue", HOOK_RESCUE, kernel_args=args, modprobe="kmod", drivers=boot_drivers(args),
        files={PLAN_ON_NODE: rescue.plan_text, **rescue.driver_files(node_cmdline(args))},
    )

    iso = g.result("iso")
    try:
        iso.check()
        for c in ("a", "b"):
            rc = iso.text(f"render-{c}.rc").strip()
            assert rc == "0", f"render of config {c.upper()} exited {rc}: {iso.text(f'render-{c}.err')}"
            g.rendered[c] = Rendered(iso.out / f"target-{c}")
    except AssertionError as e:
        g.failure = f"the ISO boot did not render: {e}"
        return g

    a = g.rendered["a"]
    g.start(
        "a", HOOK_A, kernel_args=a.kernel_args, modprobe="kmod", drivers=boot_drivers(a.kernel_args),
        files={PLAN_ON_NODE: a.plan_text, f"{CONFIG_DIR}/a.yaml": CONFIG_A,
               **a.driver_files(node_cmdline(a.kernel_args))},
    )
    b = g.rendered["b"]
    # The harness's order (e1000 before vfio-pci), not rd.driver.pre's: only the
    # rendered modprobe.d can put vfio-pci first here.
    g.start(
        "b", HOOK_B, kernel_args=b.kernel_args, modprobe="kmod", drivers=qemu.DEFAULT_DRIVERS,
        files={PLAN_ON_NODE: b.plan_text, **b.driver_files(node_cmdline(b.kernel_args))},
    )
    return g


# -- helpers over results --------------------------------------------------------------


def drivers(r: qemu.BootResult, name: str) -> dict[str, str]:
    """address -> driver name ('' for none) from a `drivers` file."""
    out = {}
    for line in r.text(name).splitlines():
        addr, *kv = line.split()
        fields = dict(x.split("=", 1) for x in kv)
        out[addr] = fields["driver"]
    return out


def overrides(r: qemu.BootResult, name: str) -> dict[str, str]:
    out = {}
    for line in r.text(name).splitlines():
        addr, *kv = line.split()
        out[addr] = dict(x.split("=", 1) for x in kv)["override"]
    return out


def step(r: qemu.BootResult, name: str) -> tuple[int, str]:
    r.check()
    return int(r.text(f"{name}.rc")), r.text(f"{name}.out") + r.text(f"{name}.err")


def dmesg(r: qemu.BootResult) -> str:
    p = r.job / "dmesg.txt"
    return p.read_text(errors="replace") if p.is_file() else ""


def kernel_groups(r: qemu.BootResult) -> dict[int, set[str]]:
    groups: dict[int, set[str]] = {}
    for line in r.text("kernel-groups.txt").splitlines():
        gid, addr = line.split()
        groups.setdefault(int(gid), set()).add(addr)
    return groups


def unknown_params(r: qemu.BootResult) -> str:
    """The kernel's 'Unknown kernel command line parameters' line, if any."""
    m = re.search(r"Unknown kernel command line parameters \"([^\"]*)\"", dmesg(r))
    return m.group(1) if m else ""


def vfio_results(r: qemu.BootResult) -> dict[str, dict]:
    data = r.json("vfio.json")
    return {v["address"]: v for v in (data if isinstance(data, list) else [data])}


def assert_kernel_took_the_args(r: qemu.BootResult, args) -> None:
    """Every arg on the guest kernel's command line, none of them unknown to it."""
    d = dmesg(r)
    assert d, f"no dmesg from the guest\n{r.diagnostics()}"
    line = next((l for l in d.splitlines() if "Command line:" in l), "")
    for a in args:
        assert a in line.split(), f"{a} not on the guest's command line: {line}"
    unknown = set(args) & set(unknown_params(r).split())
    assert not unknown, f"the kernel does not know {unknown}"


# -- the ISO boot: render --------------------------------------------------------------


def test_render_on_the_installer_iso(guests):
    """The files the boots below use, as render wrote them on the ISO (IOMMU off)."""
    iso = guests.result("iso").check()
    net = dict(l.split() for l in iso.text("net.txt").splitlines())
    assert (net["eth0"], net["eth1"]) == (NIC_KEPT, NIC), net  # eth0: the management NIC
    a, b = guests.rendered["a"], guests.rendered["b"]
    assert a.kernel_args == ("intel_iommu=on", "iommu=pt")
    assert [(p["address"], p["why"], p["bind_at_boot"]) for p in a.plan["passthrough"]] == [
        (NIC, "selected", "address"), (VFS[0], "sriov-vf", "address"), (VFS[1], "sriov-vf", "address")]
    # The ids go to modprobe.d, not the kernel line, so that a rescue boot can drop them.
    assert b.kernel_args == ("intel_iommu=on", "iommu=pt")
    assert [(p["address"], p["why"], p["bind_at_boot"]) for p in b.plan["passthrough"]] == [
        (E1000[0], "selected", "ids"), (E1000[1], "same-group", "ids")]
    assert [(g["passthrough"], g["left"]) for g in b.plan["groups"]] == [(list(E1000), [BRIDGE])]
    # the recorded IOMMU-off tree the rescue boot was rendered from decides the same
    assert guests.rendered["rescue"].kernel_args == b.kernel_args
    conf = b.modprobe_conf()
    assert f"options vfio-pci ids={E1000_ID}" in conf.splitlines(), conf
    assert "softdep e1000 pre: vfio-pci" in conf.splitlines(), conf


# -- scenario 2 ------------------------------------------------------------------------


def test_s2_kernel_takes_the_rendered_args_and_modprobe_conf(guests):
    r = guests.result("a").check()
    args = guests.rendered["a"].kernel_args
    assert_kernel_took_the_args(r, args)
    d = dmesg(r)
    assert "DMAR: IOMMU enabled" in d and "DMAR-IR: Enabled IRQ remapping" in d, r.diagnostics()
    assert r.text("modprobe-c.err") == "", f"kmod complained about the rendered modprobe.d: {r.text('modprobe-c.err')}"


def test_s2_detect_reports_the_kernels_groups(guests):
    r = guests.result("a")
    rc, out = step(r, "detect")
    assert rc == 0, out
    det = json.loads(r.text("detect.out"))
    assert det["iommu"]["state"] == "enabled" and det["iommu"]["interrupt_remapping"] is True
    assert det["groups_predicted"] is False
    kernel = kernel_groups(r)
    assert {g["id"]: set(g["devices"]) for g in det["groups"]} == kernel
    assert set(VFS) <= set().union(*kernel.values())
    devices = {x["address"]: x for x in det["devices"]}
    assert devices[NIC]["driver"] == "vfio-pci" and devices[NIC_KEPT]["driver"] == "e1000e"


def test_s2_plan_on_the_node_agrees_with_the_iso(guests):
    """`plan` against the installed system (real groups) decides what the ISO did."""
    r = guests.result("a")
    rc, out = step(r, "plan")
    assert rc == 0, out
    node = json.loads(r.text("plan.out"))
    iso = guests.rendered["a"].plan
    pick = lambda p: [(x["address"], x["why"], x["bind_at_boot"]) for x in p["passthrough"]]  # noqa: E731
    assert pick(node) == pick(iso)
    assert node["kernel_args"] == iso["kernel_args"] and node["vfio_ids"] == iso["vfio_ids"] == []
    assert node["host"]["groups_predicted"] is False and iso["host"]["groups_predicted"] is True


def test_s2_bind_takes_exactly_the_selected_twin_and_the_vfs(guests):
    r = guests.result("a")
    start = drivers(r, "drivers-start.txt")
    assert start[NIC_KEPT] == start[NIC] == "e1000e" and start[NVME] == "nvme", start
    assert not set(VFS) & set(start), "VFs before bind"
    assert dict(l.split() for l in r.text("net.txt").splitlines())["eth0"] == NIC_KEPT
    rc, out = step(r, "bind")
    assert rc == 0, f"{out}\n{r.diagnostics()}"
    assert r.text("numvfs.txt").strip() == "2"
    after = drivers(r, "drivers-bound.txt")
    assert after == {
        NIC_KEPT: "e1000e", NIC: "vfio-pci", NVME: "nvme", VFS[0]: "vfio-pci", VFS[1]: "vfio-pci",
        BRIDGE: "", E1000[0]: "e1000", E1000[1]: "e1000", AHCI: "ahci",
    }, out
    st = r.json("status.json")
    assert st["skipped"] is False
    assert st["sriov"] == [{"address": NVME, "num_vfs": 2, "status": "set", "reason": None}]
    assert {d["address"]: (d["status"], d["driver"]) for d in st["devices"]} == {
        NIC: ("bound", "vfio-pci"), VFS[0]: ("bound", "vfio-pci"), VFS[1]: ("bound", "vfio-pci")}


def test_s2_every_bound_group_passes_the_vfio_check(guests):
    r = guests.result("a").check()
    results = vfio_results(r)
    assert set(results) == {NIC, *VFS}
    for addr, v in results.items():
        assert v["ok"], f"VFIO check failed for {addr}: {v['steps'][-1]}"
        assert v["group_devices"] == {addr: "vfio-pci"}, v
    assert r.text("vfio.rc").strip() == "0"


# -- scenarios 3 and 4 -----------------------------------------------------------------


def test_s3_ids_device_is_on_vfio_pci_when_the_node_starts(guests):
    r = guests.result("b").check()
    assert_kernel_took_the_args(r, guests.rendered["b"].kernel_args)
    start = drivers(r, "drivers-start.txt")
    assert start[E1000[0]] == start[E1000[1]] == "vfio-pci", f"{start}\n{r.diagnostics()}"
    # no runtime bind by address happened: no driver_override was set
    assert all(overrides(r, "drivers-start.txt")[a] == "(null)" for a in E1000)
    assert start[NIC_KEPT] == start[NIC] == "e1000e" and start[BRIDGE] == ""
    # e1000 was loaded (before vfio-pci, by the harness) and still lost the pair
    assert r.text("e1000-module.txt").strip() == "loaded"
    assert f"vfio_pci: add [{E1000_ID}[" in dmesg(r)
    # kmod read the rendered file: vfio-pci comes before e1000
    kmod = r.text("modprobe-c.txt")
    assert f"options vfio_pci ids={E1000_ID}" in kmod and "softdep e1000 pre: vfio-pci" in kmod, kmod
    assert r.text("modprobe-c.err") == ""


def test_s3_bind_finds_nothing_to_do(guests):
    r = guests.result("b")
    rc, out = step(r, "bind")
    assert rc == 0, out
    assert "0 bound, 2 already bound, 0 skipped, 0 failed; nothing changed" in out, out
    st = r.json("status.json")
    assert {d["address"]: (d["status"], d["reason"]) for d in st["devices"]} == {
        E1000[0]: ("already-bound", None), E1000[1]: ("already-bound", None)}


def test_s4_the_whole_shared_group_is_bound_and_viable(guests):
    r = guests.result("b").check()
    groups = kernel_groups(r)
    shared = next(g for g in groups.values() if E1000[0] in g)
    assert shared == {BRIDGE, *E1000}, groups
    after = drivers(r, "drivers-after.txt")
    assert (after[E1000[0]], after[E1000[1]], after[BRIDGE]) == ("vfio-pci", "vfio-pci", "")
    assert overrides(r, "drivers-after.txt")[BRIDGE] == "(null)", "the bridge was touched"
    results = vfio_results(r)
    for addr in E1000:
        v = results[addr]
        assert v["ok"], f"VFIO check failed for {addr}: {v['steps'][-1]}"
        assert v["group_devices"] == {BRIDGE: None, E1000[0]: "vfio-pci", E1000[1]: "vfio-pci"}, v
    assert r.text("vfio.rc").strip() == "0"


# -- rescue ----------------------------------------------------------------------------


def test_rescue_switch_turns_the_binder_off(guests):
    r = guests.result("rescue")
    rescue = guests.rendered["rescue"]
    args = (*rescue.kernel_args, SKIP)
    assert_kernel_took_the_args(r, args)
    # the yip stage that writes modprobe.d and the udev rule is off on a rescue boot
    assert rescue.driver_files(node_cmdline(args)) == {}
    assert "/" + paths.MODPROBE_FILE in rescue.driver_files(node_cmdline(rescue.kernel_args))
    rc, out = step(r, "bind")
    assert rc == 0 and "skipped for this boot" in out, out
    st = r.json("status.json")
    assert st["skipped"] is True and SKIP in st["skip_reason"] and st["devices"] == [] and st["sriov"] == []
    assert drivers(r, "drivers-after.txt") == drivers(r, "drivers-start.txt")
    assert r.text("numvfs.txt").strip() == "0"
    assert drivers(r, "drivers-after.txt")[NIC] == "e1000e"
    assert all(v == "(null)" for v in overrides(r, "drivers-after.txt").values())


def test_rescue_boot_leaves_the_id_bound_group_on_its_host_driver(guests):
    """A rescue boot binds nothing: the yip stage leaves out modprobe.d and the udev
    rule "(not on a rescue boot)", the first-boot unit skips it because "nothing was
    bound", and the binder records skipped with no devices.

    This failed while render put `vfio-pci.ids=8086:100e rd.driver.pre=vfio-pci` on the
    kernel line (Debian's 6.1.0-56, kmod 30): kmod handed vfio-pci the ids from
    /proc/cmdline and the pair went to vfio-pci on the rescue boot, since
    `installer_ext.skip=1` cannot take a token off the line. The ids now live only in
    modprobe.d, which the rescue boot leaves out.
    """
    r = guests.result("rescue").check()
    start = drivers(r, "drivers-start.txt")
    assert "installer-ext-vfio.conf" not in r.text("modprobe-d.txt").split()
    evidence = (
        f"drivers when the hook started: {start}\n"
        f"kmod's options (no modprobe.d file; from /proc/cmdline): {r.text('modprobe-c.txt').strip()}\n"
        + "\n".join(l for l in dmesg(r).splitlines() if "Command line:" in l or "vfio_pci: add" in l)
    )
    assert (start[E1000[0]], start[E1000[1]]) == ("e1000", "e1000"), evidence
