"""Scenarios 2, 3 and 4 of issue 7: the whole product path on a real kernel, with a hook
run from the initramfs (no systemd; test_node_boot.py boots the node under systemd).
config -> `render` -> the rendered kernel args and modprobe.d boot the node -> `bind`
on the node -> what the guest kernel reports.

Three boots: the suite's ISO boot (tests/e2e/iso.py, session-wide: `intel_iommu=off`,
every native driver loaded, `render --config --target` for configs A and B as the install
hook does on the ISO), then `a` and `b`, side by side:

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

The rescue switch (`installer_ext.skip=1`) is proved under systemd, with the udev rule
and the units, in test_node_boot.py.

Every assertion reads what the guest wrote to $E2E_OUT (or the guest's dmesg), never
QEMU's exit status.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import Future

import pytest

from installer_ext import paths

from . import iso as iso_mod
from . import qemu
from .iso import AHCI, BRIDGE, E1000, E1000_ID, KERNEL_GROUPS, NIC, NIC_KEPT, NVME, PRELUDE, VFS

CONFIG_DIR = iso_mod.CONFIG_DIR
PLAN_ON_NODE = "/" + paths.PLAN_FILE

# kmod's view of the configuration (modprobe.d and the kernel command line).
MODPROBE_CONFIG = """
/sbin/modprobe -c 2>"$E2E_OUT/modprobe-c.err" | grep -E '^(options|softdep) (vfio|e1000)' >"$E2E_OUT/modprobe-c.txt"
/sbin/modprobe --show-depends e1000 >"$E2E_OUT/e1000-deps.txt" 2>&1
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

# -- the boots ---------------------------------------------------------------------


def boot_drivers(kernel_args) -> tuple[str, ...]:
    """The harness's driver order, with the modules `rd.driver.pre=` names first: what
    dracut does with that argument (it loads them before udev starts)."""
    pre = [m for a in kernel_args if a.startswith("rd.driver.pre=") for m in a.split("=", 1)[1].split(",") if m]
    return (*pre, *(d for d in qemu.DEFAULT_DRIVERS if d not in pre))


def node_cmdline(args) -> str:
    return " ".join((*qemu.BASE_CMDLINE, *args))


class Guests:
    """The module's boots: `a` and `b` start when the ISO boot has rendered their files.
    Each test waits only for the boot it reads."""

    def __init__(self, iso: iso_mod.IsoBoot, assets, tmp) -> None:
        self.iso = iso
        self.assets = assets
        self.tmp = tmp
        self.futures: dict[str, Future] = {}

    def start(self, name: str, hook: str, **kw) -> None:
        self.futures[name] = qemu.start(hook, assets=self.assets, workdir=self.tmp.mktemp(f"scn-{name}"), **kw)

    def rendered(self, name: str) -> iso_mod.Rendered:
        return self.iso.rendered(name)

    def result(self, name: str) -> qemu.BootResult:
        if name == "iso":
            return self.iso.result()
        if name not in self.futures:
            self.rendered(name)  # fails with the reason the boot could not start
            pytest.fail(f"boot {name} never started", pytrace=False)
        return self.futures[name].result()


@pytest.fixture(scope="module")
def guests(iso, e2e_assets, e2e_kmod, tmp_path_factory) -> Guests:
    g = Guests(iso, e2e_assets, tmp_path_factory)
    try:
        a, b = iso.rendered("a"), iso.rendered("b")
    except BaseException:  # pytest.fail: each test says why through result()
        return g
    g.start(
        "a", HOOK_A, kernel_args=a.kernel_args, modprobe="kmod", drivers=boot_drivers(a.kernel_args),
        files={PLAN_ON_NODE: a.plan_text, f"{CONFIG_DIR}/a.yaml": iso_mod.CONFIG_A,
               **a.driver_files(node_cmdline(a.kernel_args))},
    )
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
    a, b = guests.rendered("a"), guests.rendered("b")
    assert a.kernel_args == ("intel_iommu=on", "iommu=pt")
    assert [(p["address"], p["why"], p["bind_at_boot"]) for p in a.plan["passthrough"]] == [
        (NIC, "selected", "address"), (VFS[0], "sriov-vf", "address"), (VFS[1], "sriov-vf", "address")]
    # The ids go to modprobe.d, not the kernel line, so that a rescue boot can drop them.
    assert b.kernel_args == ("intel_iommu=on", "iommu=pt")
    assert [(p["address"], p["why"], p["bind_at_boot"]) for p in b.plan["passthrough"]] == [
        (E1000[0], "selected", "ids"), (E1000[1], "same-group", "ids")]
    assert [(g["passthrough"], g["left"]) for g in b.plan["groups"]] == [(list(E1000), [BRIDGE])]
    conf = b.modprobe_conf()
    assert f"options vfio-pci ids={E1000_ID}" in conf.splitlines(), conf
    assert "softdep e1000 pre: vfio-pci" in conf.splitlines(), conf


# -- scenario 2 ------------------------------------------------------------------------


def test_s2_kernel_takes_the_rendered_args_and_modprobe_conf(guests):
    r = guests.result("a").check()
    args = guests.rendered("a").kernel_args
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
    iso = guests.rendered("a").plan
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
    assert_kernel_took_the_args(r, guests.rendered("b").kernel_args)
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
