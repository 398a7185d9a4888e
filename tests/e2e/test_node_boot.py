"""The node side on a real boot (issue 13): systemd, udev, modprobe.d and our units.

The suite's ISO boot (tests/e2e/iso.py) renders config NODE (the twin e1000e 00:04.0 by
address, the e1000 pair behind the PCIe-to-PCI bridge by id, the NVMe's two VFs to
vfio-pci) with `render --target`, as the install hook does. Then the same Debian kernel
boots this machine's root (read-only 9p, tmpfs overlay) with systemd as PID 1 and
systemd-udevd loading the drivers, the IOMMU on, and the same emulated devices
(tests/e2e/init.sh, init="systemd"):

- the render target is laid into the root as it is (/oem/...), plus what the units'
  ExecStart= runs that render did not write (tests/e2e/node.py) and an enabled stand-in
  for rke2-server.service;
- before systemd starts, in a chroot of that root, tests/e2e/yip.py applies the rendered
  yip file's initramfs stage (`if`, `files`, `systemctl enable`), where and when
  elemental runs it on a node;
- once the system is up, tests/e2e/node_probe.py waits for the state and records what
  systemd, udev, the kernel and the binder report (node.json).

Three boots: `first` (the kernel arguments render wrote), `rescue` (the same plus
`installer_ext.skip=1`, beside `first`), and `second` (what of `first` survives a reboot
on a Harvester node, /oem, /usr/local/lib/installer-ext and /etc/systemd, booted again
as the node's next boot).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from installer_ext import paths
from installer_ext.plan.model import BIND_ADDRESS, BIND_IDS

from . import iso as iso_mod
from . import node, qemu
from .iso import AHCI, E1000, E1000_ID, NIC, NIC_KEPT, NVME, VFS
from .node_probe import API_WAIT, PERSIST_DONE, restart_loop_bound

SKIP = paths.SKIP_ARG
BIND = paths.BIND_UNIT
FIRSTBOOT = paths.FIRSTBOOT_UNIT
INSTANCE = re.compile(r"installer-ext-bind@(.+)\.service$")

# The first-boot unit's deadline in the time-scaled run (seconds); how long a start under
# TCG may take before the program's first line (Python and its imports from the 9p root:
# 17-28 s measured on a loaded 2-core machine); how long the program may take from its
# first line to its exit on top of its deadline (status written, exit: 0.7-0.9 s measured).
FIRSTBOOT_DEADLINE = 2.0
START_SLACK = 60.0
END_SLACK = 6.0
# The longest the time-scaled first boot is watched in all: its 8 attempts at up to 30 s
# each end well within it; it only caps a watch that went wrong (node_probe.firstboot_cycle).
FIRSTBOOT_WINDOW = 400.0

PREPARE = f'"$PYTHON" -m tests.e2e.yip --stage initramfs --report "$E2E_OUT/yip.json" /{paths.YIP_FILE}'


def probe(firstboot: str, cycle: float | None = None) -> str:
    extra = (f" --firstboot-cycle {cycle:g} --firstboot-window {FIRSTBOOT_WINDOW:g} --start-slack {START_SLACK:g}"
             if cycle else "")
    return f'"$PYTHON" -m tests.e2e.node_probe --out "$E2E_OUT" --firstboot {firstboot}{extra}\n'


class Nodes:
    """`first` and `rescue` start when the ISO boot has rendered config NODE; `second`
    starts as soon as `first` has copied out what survives a reboot (before its
    time-scaled first boot), from that copy."""

    def __init__(self, iso: iso_mod.IsoBoot, assets, tmp) -> None:
        self.iso, self.assets, self.tmp = iso, assets, tmp
        self.futures: dict[str, Future] = {}
        self.second_started = threading.Event()
        self.second_failure: str | None = None
        self.start_failure: str | None = None

    def boot(self, name: str, files: dict, kernel_args, hook: str, workdir: Path | None = None,
             hook_timeout: int = 420) -> Future:
        return qemu.start(hook, kernel_args=kernel_args, files=files, init="systemd", prepare=PREPARE,
                          assets=self.assets, workdir=workdir or self.tmp.mktemp(f"node-{name}"),
                          hook_timeout=hook_timeout, boot_timeout=200)

    def start(self) -> None:
        r = self.rendered = self.iso.rendered("node")
        files = {**node.tree_files(r.target), **node.program_files(node.unit_commands(r.yip), r.target),
                 **node.cluster_standin()}
        first_dir = self.tmp.mktemp("node-first")
        self.futures["first"] = self.boot("first", files, r.kernel_args, probe("waiting", FIRSTBOOT_DEADLINE),
                                          first_dir, hook_timeout=240 + int(FIRSTBOOT_WINDOW))
        self.futures["rescue"] = self.boot("rescue", files, (*r.kernel_args, SKIP), probe("skipped"))
        threading.Thread(target=self._start_second, args=(first_dir,), daemon=True, name="node-second").start()

    def _start_second(self, first_dir: Path) -> None:
        try:
            out, first = first_dir / "out", self.futures["first"]
            while not (out / PERSIST_DONE).is_file() and not first.done():
                time.sleep(1)
            persist = out / "persist"
            if not (out / PERSIST_DONE).is_file() or not (persist / paths.PLAN_FILE).is_file():
                raise AssertionError(f"the first boot copied out nothing to boot again (hook rc {first.result().rc})")
            files = {**node.tree_files(persist), **node.cluster_standin()}
            self.futures["second"] = self.boot("second", files, self.rendered.kernel_args, probe("waiting"))
        except BaseException as e:  # noqa: BLE001 - reported by the tests that need it
            self.second_failure = f"{type(e).__name__}: {e}"
        finally:
            self.second_started.set()

    def result(self, name: str) -> qemu.BootResult:
        if self.start_failure:
            pytest.fail(f"the node boots did not all start: {self.start_failure}", pytrace=False)
        if not self.futures:
            self.rendered = self.iso.rendered("node")  # fails with the reason
            pytest.fail(f"the node boots never started: {self.start_failure}", pytrace=False)
        if name == "second":
            self.second_started.wait()
            if self.second_failure:
                pytest.fail(f"the second boot never started: {self.second_failure}", pytrace=False)
        return self.futures[name].result()


@pytest.fixture(scope="module")
def nodes(iso, e2e_assets, e2e_kmod, e2e_systemd, tmp_path_factory) -> Nodes:
    n = Nodes(iso, e2e_assets, tmp_path_factory)
    try:
        n.start()
    except BaseException as e:  # noqa: BLE001 - each test fails with the reason
        n.start_failure = f"{type(e).__name__}: {e}"
    return n


# -- reading what the guest reported ---------------------------------------------------


class Report:
    def __init__(self, r: qemu.BootResult) -> None:
        r.check()
        self.boot = r
        self.d: dict[str, Any] = r.json("node.json")
        assert not self.d["timeouts"], f"the node never reached: {self.d['timeouts']}\n{r.diagnostics()}"
        self.yip: dict[str, Any] = r.json("yip.json")

    def unit(self, name: str) -> dict[str, str]:
        return self.d["units"][name]

    def mono(self, unit: str, prop: str) -> int:
        return int(self.unit(unit)[prop] or 0)

    def driver(self, addr: str) -> str:
        return self.d["pci"][addr]["driver"]

    def program_lines(self, unit: str) -> list[str]:
        """What the unit's own processes wrote to the journal."""
        return [e["msg"] for e in self.d["journal"] if e["unit"] == unit and not e["pid1"]]

    def started_instances(self) -> set[str]:
        """The installer-ext-bind@ADDR units systemd started this boot (only udev's
        SYSTEMD_WANTS starts them)."""
        out = set()
        for e in self.d["journal"]:
            m = INSTANCE.match(e["unit"] or "")
            if e["pid1"] and m and (e["msg"] or "").startswith("Starting "):
                out.add(m.group(1))
        return out

    def instance_results(self) -> dict[str, str]:
        out = {}
        for e in self.d["journal"]:
            m = INSTANCE.match(e["unit"] or "")
            if e["pid1"] and m:
                if "Deactivated successfully" in e["msg"] or e["msg"].startswith("Finished "):
                    out.setdefault(m.group(1), "success")
                if "Failed" in e["msg"]:
                    out[m.group(1)] = e["msg"]
        return out

    def dmesg(self) -> str:
        p = self.boot.job / "dmesg.txt"
        return p.read_text(errors="replace") if p.is_file() else ""

    def diag(self) -> str:
        return self.boot.diagnostics(30)


@pytest.fixture(scope="module")
def first(nodes) -> Report:
    return Report(nodes.result("first"))


@pytest.fixture(scope="module")
def rescue(nodes) -> Report:
    return Report(nodes.result("rescue"))


@pytest.fixture(scope="module")
def second(nodes) -> Report:
    return Report(nodes.result("second"))


def planned(nodes, how: str | None = None) -> list[str]:
    return [p["address"] for p in nodes.rendered.plan["passthrough"] if how is None or p["bind_at_boot"] == how]


# -- the node's files, as yip would write them -----------------------------------------


def test_the_yip_stage_wrote_the_node_files_and_enabled_the_units(first, nodes):
    y = nodes.rendered.yip
    steps = y["stages"]["initramfs"]
    want_files = {f["path"]: f["content"] for s in steps for f in s.get("files", ())}
    want_enabled = [u for s in steps for u in (s.get("systemctl") or {}).get("enable", ())]
    assert first.yip["error"] is None, first.boot.prepare_log()
    assert all(s["applied"] for s in first.yip["steps"]), first.yip["steps"]
    assert sorted(f for s in first.yip["steps"] for f in s["files"]) == sorted(want_files)
    assert [u for s in first.yip["steps"] for u in s["enabled"]] == want_enabled
    assert {BIND, FIRSTBOOT} <= set(want_enabled)
    assert set(want_enabled) <= set(first.d["enabled"]), first.d["enabled"]
    for path in first.d["files"]:
        assert first.d["files"][path] == want_files[path].strip(), path
    # what the stand-in leaves out is only what yip runs later, after systemd is up
    assert all(line.startswith("boot/") for line in first.yip["left_out"]), first.yip["left_out"]


def test_the_kernel_took_the_rendered_args_and_the_iommu_is_on(first, nodes):
    d = first.dmesg()
    line = next((l for l in d.splitlines() if "Command line:" in l), "")
    for a in nodes.rendered.kernel_args:
        assert a in line.split(), f"{a} not on the guest's command line: {line}"
    assert "DMAR: IOMMU enabled" in d and "DMAR-IR: Enabled IRQ remapping" in d, first.diag()
    # systemd sees a virtual machine, not this machine's container
    assert first.d["virt"] in ("qemu", "kvm"), first.d["virt"]


# -- bound by id, by address, SR-IOV -----------------------------------------------------


def test_bound_by_id_before_the_binder_starts(first, nodes):
    """The softdep and the modprobe.d options won the race against e1000: vfio-pci held
    the pair when the binder looked, and nothing bound them at runtime."""
    assert set(planned(nodes, BIND_IDS)) == set(E1000)
    assert f"options vfio_pci ids={E1000_ID}" in first.d["modprobe_c"], first.d["modprobe_c"]
    assert "softdep e1000 pre: vfio-pci" in first.d["modprobe_c"], first.d["modprobe_c"]
    status = {x["address"]: x for x in first.d["bind_status"]["devices"]}
    for a in E1000:
        assert (status[a]["status"], status[a]["reason"]) == ("already-bound", None), status[a]
        assert first.driver(a) == "vfio-pci"
        assert first.d["pci"][a]["override"] == "(null)", "bound at runtime by address"
    d = first.dmesg()
    assert f"vfio_pci: add [{E1000_ID}[" in d
    assert not re.search(r"e1000 0000:02:0[12]\.0", d), "e1000 probed the pair"
    assert not set(E1000) & first.started_instances()


def test_bound_by_address_exactly_the_planned_twin(first, nodes):
    """The udev rule fired for the planned functions only (its SYSTEMD_WANTS started one
    installer-ext-bind@ unit for each); the twin keeps e1000e and its interface."""
    by_address = set(planned(nodes, BIND_ADDRESS))
    assert by_address == {NIC, *VFS}
    assert first.driver(NIC) == "vfio-pci"
    assert first.driver(NIC_KEPT) == "e1000e" and first.d["pci"][NIC_KEPT]["net"], first.d["pci"][NIC_KEPT]
    assert first.started_instances() == by_address, first.diag()
    assert first.instance_results() == {a: "success" for a in by_address}


def test_sriov_vfs_exist_and_every_bound_group_is_viable(first, nodes):
    assert first.d["pci"][NVME]["numvfs"] == "2" and first.driver(NVME) == "nvme"
    assert [first.driver(v) for v in VFS] == ["vfio-pci", "vfio-pci"]
    assert first.d["bind_status"]["sriov"] == [{"address": NVME, "num_vfs": 2, "status": "set", "reason": None}]
    results = {v["address"]: v for v in first.d["vfio"]} if isinstance(first.d["vfio"], list) else first.d["vfio"]
    assert set(results) == set(planned(nodes)), results
    for addr, v in results.items():
        assert v["ok"], f"VFIO check failed for {addr}: {v['steps'][-1]}"
    assert results[E1000[0]]["group_devices"] == {"0000:00:06.0": None, E1000[0]: "vfio-pci", E1000[1]: "vfio-pci"}
    assert results[NIC]["group_devices"] == {NIC: "vfio-pci"}


def test_everything_else_stays_on_its_host_driver(first):
    assert (first.driver(NIC_KEPT), first.driver(AHCI)) == ("e1000e", "ahci")


# -- order, failures, journal ----------------------------------------------------------


def test_bind_finishes_before_the_cluster_starts(first):
    bound = first.mono(BIND, "ActiveEnterTimestampMonotonic")
    assert first.unit(BIND)["Result"] == "success" and bound > 0, first.unit(BIND)
    rke2 = first.mono("rke2-server.service", "ExecMainStartTimestampMonotonic")
    assert 0 < bound <= rke2, (bound, rke2)
    assert first.d["ordered"]["rke2-server.service"], "systemd does not order rke2-server after the binder"


def test_bind_finishes_before_network_online(first):
    """The NICs given to VMs leave the host before the network is configured: systemd
    must order the binder before network-online.target, not leave it to timing."""
    bound = first.mono(BIND, "ActiveEnterTimestampMonotonic")
    online = first.mono("network-online.target", "ActiveEnterTimestampMonotonic")
    ordered = first.d["ordered"]["network-online.target"]
    assert ordered and 0 < bound <= online, (
        f"network-online.target was reached at {online / 1e6:.1f}s, the binder finished at {bound / 1e6:.1f}s; "
        f"no After= chain leads from network-online.target to {BIND} "
        f"(network-online.target: After={first.unit('network-online.target')['After']}; "
        f"the bind unit: Before={first.unit(BIND)['Before']})"
    )


def test_no_unit_of_ours_failed(first):
    failed = [l for l in first.d["failed"] if l.strip()]
    assert not [l for l in failed if "installer-ext" in l], failed
    assert first.unit(BIND)["ActiveState"] == "active"


def test_the_binders_journal_has_one_line_per_device(first, nodes):
    lines = first.program_lines(BIND)
    for addr in planned(nodes):
        mine = [l for l in lines if addr in l]
        assert len(mine) == 1, f"{addr}: {mine}\n" + "\n".join(lines)
    assert len([l for l in lines if NVME in l]) == 1, lines  # the SR-IOV line
    for addr, results in first.d["pci"].items():
        if addr not in planned(nodes) and addr != NVME:
            assert not [l for l in lines if addr in l], addr


# -- first boot with no API server -------------------------------------------------------


def test_first_boot_waits_for_the_api_server_with_progress_lines(first):
    s = first.unit(FIRSTBOOT)
    assert (s["ActiveState"], s["SubState"]) == ("activating", "start"), s
    assert first.mono(FIRSTBOOT, "InactiveExitTimestampMonotonic") >= first.mono(BIND, "ActiveEnterTimestampMonotonic")
    waits = [l for l in first.program_lines(FIRSTBOOT) if API_WAIT in l]
    assert len(waits) >= 2, first.program_lines(FIRSTBOOT)
    assert all(paths.DEFAULT_KUBECONFIG in l for l in waits), waits


END_OF_RUN = re.compile(r"Main process exited|Failed with result '([a-z-]+)'|Deactivated successfully")


def test_first_boot_ends_within_its_deadline_with_a_clear_status(first):
    """The same unit, time-scaled (node_probe.timescale_dropin): it must end by itself
    near its deadline, with the program's reason in the journal and systemd's result.
    Read from the journal: between two polls of `systemctl show` a scaled RestartSec=
    is too short to see."""
    c = first.d["firstboot_cycle"]
    assert c["start_rc"] == 0, c["start_err"]
    ends = [i for i, e in enumerate(c["journal"])
            if e["pid1"] and e["t"] >= c["start_us"] and END_OF_RUN.search(e["msg"] or "")]
    assert ends, f"the first run never ended within {c['window']}s: {c['samples']}\n{c['journal']}"
    end = c["journal"][ends[0]]
    # Timed from the program's first line: what comes before it is the interpreter
    # starting under TCG, which says nothing about the program's deadline.
    own = [e for e in c["journal"][:ends[0]] if not e["pid1"] and e["t"] >= c["start_us"]]
    assert own, f"the first run wrote nothing before it ended: {c['journal'][:ends[0] + 1]}"
    started = (own[0]["t"] - c["start_us"]) / 1e6
    assert started <= START_SLACK, f"its first line came {started:.1f}s after the start"
    took = (end["t"] - own[0]["t"]) / 1e6
    assert took <= c["target_deadline"] + END_SLACK, \
        f"ran {took:.1f}s after its first line for a {c['target_deadline']}s deadline"
    results = [m.group(1) for e in c["journal"][ends[0]:] if e["pid1"]
               for m in [END_OF_RUN.search(e["msg"] or "")] if m and m.group(1)]
    assert "timeout" not in results[:1], "systemd killed it at TimeoutStartSec=: the program kept no deadline"
    lines = [e["msg"] for e in c["journal"][:ends[0]] if not e["pid1"]]
    assert lines and "API server" in lines[-1] and paths.DEFAULT_KUBECONFIG in lines[-1], lines


def test_first_boot_restart_policy_does_not_loop_for_ever(first):
    c = first.d["firstboot_cycle"]
    deadline = c["default_deadline"]
    if "--deadline" in c["argv"]:
        deadline = float(c["argv"][c["argv"].index("--deadline") + 1])
    why = restart_loop_bound(c["real"], deadline)
    last = [e["msg"] for e in c["journal"] if not e["pid1"]][-2:]
    seen = (f"time-scaled run: {c['outcome']} after {c['elapsed']}s and {c['nrestarts']} restarts; "
            f"its last lines: {last}")
    assert c["outcome"] == "ended" or why is None, f"{why}\n{seen}"


# -- rescue ------------------------------------------------------------------------------


def test_rescue_leaves_every_device_on_its_host_driver(rescue):
    """`installer_ext.skip=1`: nothing goes to vfio-pci, not even the id-bound pair (this
    failed while render put `vfio-pci.ids=` on the kernel line, which the rescue switch
    cannot take off: kmod handed the ids from /proc/cmdline to vfio-pci)."""
    drivers = {a: rescue.driver(a) for a in (NIC_KEPT, NIC, NVME, *E1000, AHCI)}
    assert drivers == {NIC_KEPT: "e1000e", NIC: "e1000e", NVME: "nvme", E1000[0]: "e1000", E1000[1]: "e1000",
                       AHCI: "ahci"}, rescue.diag()
    assert rescue.d["pci"][NVME]["numvfs"] == "0" and not set(VFS) & set(rescue.d["pci"])
    assert all(p["override"] == "(null)" for p in rescue.d["pci"].values())
    assert rescue.d["pci"][NIC]["net"] and rescue.d["pci"][NIC_KEPT]["net"]


def test_rescue_the_udev_rule_and_modprobe_options_change_nothing(rescue, nodes):
    steps = nodes.rendered.yip["stages"]["initramfs"]
    name = next(s["name"] for s in steps if any(f["path"] == "/" + paths.MODPROBE_FILE for f in s.get("files", ())))
    by_name = {s["name"]: s for s in rescue.yip["steps"]}
    assert by_name[name]["applied"] is False and by_name[name]["if_rc"] not in (0, None), by_name
    assert rescue.d["files"] == {f: None for f in rescue.d["files"]}
    ours = [l for l in rescue.d["modprobe_c"] if l.startswith("options vfio_pci") or l.startswith("softdep e1000")]
    assert not ours, rescue.d["modprobe_c"]
    assert rescue.started_instances() == set()
    assert not [a for a, p in rescue.d["pci"].items() if "SYSTEMD_WANTS" in p["udev"]]


def test_rescue_the_status_says_the_boot_was_skipped(rescue):
    st = rescue.d["bind_status"]
    assert st["skipped"] is True and SKIP in st["skip_reason"], st
    assert st["devices"] == [] and st["sriov"] == []
    assert rescue.unit(BIND)["Result"] == "success"
    assert any("skipped for this boot" in l for l in rescue.program_lines(BIND)), rescue.program_lines(BIND)


def test_rescue_first_boot_waits_for_a_normal_boot(rescue):
    s = rescue.unit(FIRSTBOOT)
    assert (s["ConditionResult"], s["ActiveState"]) == ("no", "inactive"), s
    assert not [l for l in rescue.d["failed"] if "installer-ext" in l]


# -- the next boot of the same root ------------------------------------------------------


def _state(r: Report) -> dict[str, tuple]:
    return {a: (p["driver"], p["override"], p["numvfs"]) for a, p in r.d["pci"].items()}


def _digests(r: Report, skip: str) -> dict[str, str]:
    top = r.boot.out / "persist"
    return {str(p.relative_to(top)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(top.rglob("*")) if p.is_file() and not str(p.relative_to(top)).startswith(skip)}


def test_second_boot_ends_in_the_same_state(first, second):
    assert _state(second) == _state(first), second.diag()
    assert second.d["files"] == first.d["files"]
    assert not [l for l in second.d["failed"] if "installer-ext" in l]
    statuses = {x["address"]: x["status"] for x in second.d["bind_status"]["devices"]}
    assert set(statuses.values()) <= {"bound", "already-bound"}, statuses
    assert [statuses[a] for a in E1000] == ["already-bound", "already-bound"]


def test_second_boot_keeps_the_drivers_the_devices_had_before(first, second):
    assert second.d["bind_record"] == first.d["bind_record"]
    prev = lambda r: {x["address"]: x["previous_driver"] for x in r.d["bind_status"]["devices"]}  # noqa: E731
    assert prev(second) == prev(first)
    assert prev(first)[NIC] == "e1000e"


def test_second_boot_changes_no_persistent_file(first, second):
    """Apart from first boot's own records (it ran again: still no API server)."""
    skip = paths.FIRSTBOOT_STATE_DIR
    assert _digests(second, skip) == _digests(first, skip)
