"""SR-IOV on the node: create the planned number of VFs on each PF.

VF counts do not survive a reboot, so this runs every boot. Order matters:
`sriov_drivers_autoprobe` 0 first when the VFs go to vfio-pci (the host's VF driver then
never sees them); a non-zero count is changed through 0 (the kernel answers EBUSY
otherwise); never above `sriov_totalvfs`. The PF must stay on its host driver: only that
driver can create VFs (ENOENT without one). The VFs' addresses are read from the PF's
`virtfnN` links, not assumed from the plan's prediction.

Once first boot handed a PF to Harvester's pcidevices controller (its SRIOVNetworkDevice
asks for the VFs: boot/handover.py records it), the controller owns
`sriov_numvfs`: it writes the count its object asks for, straight, without going
through 0 (harvester/pcidevices pkg/controller/sriovdevice/sriovdevice_controller.go
ensureDeviceIsConfigured / ensureDeviceIsDisabled), so a count written by the binder at
boot would only fight it (EBUSY, or VFs set back to the object's count). For such a PF
the binder writes no `sriov_numvfs`; it still turns `sriov_drivers_autoprobe` off when
the VFs go to vfio-pci, so the VFs the controller creates are not grabbed by the host's
VF driver before the controller binds the claimed ones to vfio-pci.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from installer_ext.boot.node import Node
from installer_ext.boot.record import FAILED, SKIPPED, SRIOV_SET, SRIOV_UNCHANGED, SriovResult
from installer_ext.plan.model import SriovPlan

log = logging.getLogger(__name__)


@dataclass
class SriovOutcome:
    result: SriovResult
    vfs: list[str] | None  # real VF addresses by index, None when unknown


def _read_vfs(node: Node, pf: str, count: int) -> list[str] | None:
    vfs = [node.virtfn(pf, i) for i in range(count)]
    return None if any(v is None for v in vfs) else [v for v in vfs if v is not None]


def current_vfs(node: Node, pf: str) -> list[str] | None:
    """The VFs the PF has now (read only), None when it has no readable count."""
    if not node.exists(pf):
        return None
    num = node.sriov_num(pf)
    return None if num is None else _read_vfs(node, pf, num)


def _precheck(node: Node, s: SriovPlan) -> str | None:
    a = s.address
    if not node.exists(a):
        return "PF not present on this boot"
    if s.vendor_id and s.device_id:
        vid, did = node.ids(a)
        if (vid, did) != (s.vendor_id, s.device_id):
            return f"holds {vid}:{did}, the plan expects {s.vendor_id}:{s.device_id} (device changed since install)"
    total = node.sriov_total(a)
    if total is None or node.sriov_num(a) is None:
        return "no SR-IOV capability (sriov_totalvfs/sriov_numvfs missing)"
    if s.num_vfs > total:
        return f"num_vfs {s.num_vfs} is above sriov_totalvfs {total}"
    return None


def configure(node: Node, s: SriovPlan, apply: bool, controller: str | None = None) -> SriovOutcome:
    """Bring the PF's VF count to the plan's. With `apply` False (a run for one address)
    nothing is written: the count is only read. With `controller` (the name of the
    SRIOVNetworkDevice the PF was handed to) the count is left to the controller."""
    a = s.address
    problem = _precheck(node, s)
    if problem is not None:
        return SriovOutcome(SriovResult(a, s.num_vfs, SKIPPED, problem), None)
    cur = node.sriov_num(a)
    if controller is not None:
        return _leave_to_controller(node, s, apply, controller, cur)
    if cur == s.num_vfs:
        vfs = _read_vfs(node, a, cur)
        if vfs is None:
            return SriovOutcome(SriovResult(a, s.num_vfs, FAILED, f"{cur} VFs but virtfn links missing"), None)
        return SriovOutcome(SriovResult(a, s.num_vfs, SRIOV_UNCHANGED, _moved(s, vfs)), vfs)
    if not apply:
        return SriovOutcome(SriovResult(a, s.num_vfs, SKIPPED, f"{cur} VFs now; the full bind run sets {s.num_vfs}"), None)
    try:
        driver = node.driver(a)
    except ValueError as exc:
        return SriovOutcome(SriovResult(a, s.num_vfs, SKIPPED, str(exc)), None)
    if driver is None:
        return SriovOutcome(SriovResult(a, s.num_vfs, SKIPPED, "PF has no driver; only its host driver can create VFs"), None)

    io = node.io
    step = ""
    try:
        if s.vfs_to_vfio and node.sriov_autoprobe(a) != 0:
            step = "sriov_drivers_autoprobe"
            io.write(node.dev(a, step), "0")
        if cur:
            step = "sriov_numvfs (0 first)"
            io.write(node.dev(a, "sriov_numvfs"), "0")
        if s.num_vfs:
            step = "sriov_numvfs"
            io.write(node.dev(a, "sriov_numvfs"), str(s.num_vfs))
    except OSError as exc:
        return SriovOutcome(SriovResult(a, s.num_vfs, FAILED, f"writing {step}: {exc.strerror or exc}"), None)
    now = node.sriov_num(a)
    vfs = _read_vfs(node, a, s.num_vfs) if now == s.num_vfs else None
    if vfs is None:
        return SriovOutcome(
            SriovResult(a, s.num_vfs, FAILED, f"sriov_numvfs reads {now} after writing {s.num_vfs}, or virtfn links missing"),
            None,
        )
    log.info("%s: %d VFs created (was %d)", a, s.num_vfs, cur)
    return SriovOutcome(SriovResult(a, s.num_vfs, SRIOV_SET, _moved(s, vfs)), vfs)


def _leave_to_controller(node: Node, s: SriovPlan, apply: bool, controller: str, cur: int | None) -> SriovOutcome:
    a = s.address
    note = f"sriov_numvfs is the pcidevices controller's now (SRIOVNetworkDevice {controller or '?'}); {cur} VFs"
    if apply and s.vfs_to_vfio and node.sriov_autoprobe(a) != 0:
        try:
            node.io.write(node.dev(a, "sriov_drivers_autoprobe"), "0")
        except OSError as exc:
            return SriovOutcome(SriovResult(a, s.num_vfs, FAILED, f"writing sriov_drivers_autoprobe: {exc.strerror or exc}"),
                                None)
    return SriovOutcome(SriovResult(a, s.num_vfs, SRIOV_UNCHANGED, note), None)


def _moved(s: SriovPlan, vfs: list[str]) -> str | None:
    """A note when the VFs are not where the plan predicted them."""
    if s.vfs and list(s.vfs) != vfs[: len(s.vfs)]:
        return f"VFs at {', '.join(vfs)} (the plan predicted {', '.join(s.vfs)})"
    return None
