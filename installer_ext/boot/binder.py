"""`installer-ext bind`: every boot, give the planned devices to vfio-pci.

Order of a run: the rescue switch on the kernel command line; the plan (strictly
validated); the lock; the given-back mark (boot/givenback.py: nothing is touched while
`unbind` gave this plan back; `--again` removes the mark); IOMMU on; SR-IOV counts;
every device re-validated against the plan and against what the running host needs
(boot/check.py); the previous drivers recorded; vfio-pci loaded when needed; each
bindable device bound; the per-boot status written. A device that cannot be handled is
skipped (or failed) and reported; the others go on. Nothing is written for a device
that is already on vfio-pci.
"""

from __future__ import annotations

from dataclasses import dataclass

from installer_ext import paths
from installer_ext.boot import check, driver, givenback, handover, sriov, targets
from installer_ext.boot.check import Target
from installer_ext.boot.lock import run_lock
from installer_ext.boot.node import VFIO, Node
from installer_ext.boot.options import Options
from installer_ext.boot.record import (
    ALREADY_BOUND,
    BOUND,
    FAILED,
    GIVEN_BACK,
    SKIPPED,
    BindStatus,
    DeviceResult,
    Record,
    SriovResult,
    read_status,
    write_status,
)
from installer_ext.errors import EXIT_ERROR, EXIT_OK, EXIT_REFUSED, ExtError
from installer_ext.host.inuse import read_host_use
from installer_ext.plan.model import BIND_IDS, Plan
from installer_ext.plan.planfile import read_plan_file


@dataclass
class Result:
    status: BindStatus
    message: str  # the summary line
    writes: int  # sysfs writes of this run
    ok: bool = True  # every device and VF count of this run as planned (exit 0)
    failed: bool = False  # a write or a wait went wrong (exit 1)

    @property
    def exit_code(self) -> int:
        """0 all as planned; 1 something failed; 3 nothing failed, but the re-check
        refused a device or a VF count (the safety policy, at boot)."""
        if self.ok:
            return EXIT_OK
        return EXIT_ERROR if self.failed else EXIT_REFUSED


def _line(d: DeviceResult) -> str:
    head = f"{d.address} [{d.vendor_id}:{d.device_id}]"
    if d.status == BOUND:
        was = f" (was {d.previous_driver})" if d.previous_driver else ""
        text = f"{head}: bound to {VFIO}{was}"
    elif d.status == ALREADY_BOUND:
        text = f"{head}: already on {VFIO}, nothing to do"
    elif d.status == GIVEN_BACK:
        text = f"{head}: given back, on {d.driver or 'no driver'}"
    else:
        text = f"{head}: {d.status}"
    return text + (f": {d.reason}" if d.reason else "")


def _sriov_line(s: SriovResult) -> str:
    if s.status == "unchanged" and s.reason and s.reason.startswith("sriov_numvfs is the pcidevices controller's"):
        return f"{s.address}: SR-IOV left to Harvester: {s.reason}"
    text = {
        "set": f"{s.address}: SR-IOV set to {s.num_vfs} VFs",
        "unchanged": f"{s.address}: SR-IOV already {s.num_vfs} VFs, nothing to do",
    }.get(s.status, f"{s.address}: SR-IOV {s.num_vfs} VFs {s.status}")
    return text + (f": {s.reason}" if s.reason else "")


def _skip_all(node: Node, tlist: list[Target], reason: str) -> list[DeviceResult]:
    return [DeviceResult(t.address, t.vendor_id, t.device_id, SKIPPED, reason, node.current_driver(t.address)) for t in tlist]


def bind(opts: Options) -> Result:
    """One bind run. Raises BadInput for a bad plan or address (nothing touched)."""
    node = Node(opts.root, opts.io)
    if paths.SKIP_ARG in node.cmdline():
        status = BindStatus(skipped=True, skip_reason=f"{paths.SKIP_ARG} on the kernel command line")
        with run_lock(opts.root, opts.clock):
            write_status(opts.root, status)
            if opts.again and _clear_mark(opts.root):
                opts.say(f"bind --again: {givenback.path_under(opts.root)} removed; the devices are bound from the next boot")
        msg = f"bind: skipped for this boot ({paths.SKIP_ARG} on the kernel command line); nothing touched"
        return Result(status, msg, 0, ok=True)

    pf = read_plan_file(opts.plan_file())
    with run_lock(opts.root, opts.clock):
        mark = givenback.read(opts.root)
        if mark is not None and not opts.again and mark.applies_to(pf.digest):
            return _given_back(opts, node, pf.plan, mark)
        if mark is not None and _clear_mark(opts.root):
            opts.say(
                f"bind --again: {mark.path} removed; the plan's devices are bound, and at every boot again"
                if opts.again else
                f"bind: {mark.path} gave back an earlier plan ({mark.when}) and plan.json changed since: removed"
            )
        elif opts.again:
            opts.say("bind --again: nothing was given back")
        return _bind_locked(opts, node, pf.plan)


def _clear_mark(root: str) -> bool:
    try:
        return givenback.clear(root)
    except OSError as exc:
        raise ExtError(f"{givenback.path_under(root)}: cannot remove it: {exc.strerror or exc}") from None


def _given_back(opts: Options, node: Node, plan: Plan, mark: givenback.Mark) -> Result:
    """`unbind` gave this plan back: touch nothing, say so for each device."""
    record = Record(opts.root)
    status = BindStatus(given_back={"at": mark.at, "file": mark.path})
    why = f"{mark.path} {mark.problem}" if mark.problem else f"by `installer-ext unbind` {mark.when}"
    for p in plan.passthrough:
        if opts.address is not None and p.address != opts.address:
            continue
        prev = record.get(p.address, p.vendor_id, p.device_id)
        status.devices.append(DeviceResult(
            p.address, p.vendor_id, p.device_id, GIVEN_BACK, None, node.current_driver(p.address),
            prev.driver if prev else None,
        ))
    for d in sorted(status.devices, key=lambda d: d.address):
        opts.say(_line(d))
    write_status(opts.root, _merge(opts.root, status) if opts.address is not None else status)
    msg = f"bind: given back {why}; nothing touched (`installer-ext bind --again` takes them back)"
    return Result(status, msg, 0, ok=True)


def _bind_locked(opts: Options, node: Node, plan: Plan) -> Result:
    writes_before = len(opts.io.writes)
    status = BindStatus()
    if not plan.enabled or (not plan.passthrough and not plan.sriov):
        write_status(opts.root, status)
        return Result(status, "bind: the plan passes no device through; nothing to do", 0, ok=True)

    if not node.iommu_on():
        reason = "IOMMU is off on this boot (no groups under /sys/kernel/iommu_groups; intel_iommu=on missing?)"
        plain = targets.build(node, plan, {}, {s.address: reason for s in plan.sriov})
        status.devices = _skip_all(node, plain, reason)
        status.sriov = [SriovResult(s.address, s.num_vfs, SKIPPED, reason) for s in plan.sriov]
        return _finish(opts, status, writes_before)

    # SR-IOV first: the VFs to bind exist only once their PF has them. A PF first boot
    # handed to the pcidevices controller is the controller's: it sets the count and
    # binds the claimed VFs, so they are not ours to bind (boot/handover.py).
    handed_over = handover.read_record(opts.root)
    handed = {a: v.get("object") or "" for a, v in handed_over.sriov.items()}
    vfs_of: dict[str, list[str] | None] = {}
    why: dict[str, str] = {}
    for s in plan.sriov:
        out = sriov.configure(node, s, apply=opts.address is None, controller=handed.get(s.address))
        vfs_of[s.address] = out.vfs
        why[s.address] = out.result.reason or out.result.status
        status.sriov.append(out.result)

    tlist = [t for t in targets.build(node, plan, vfs_of, why) if t.pf not in handed]
    check.validate(node, tlist, plan, read_host_use(opts.root))
    if opts.address is not None:
        tlist = [t for t in tlist if t.address == opts.address]
        if not tlist:
            return Result(status, f"bind: {opts.address} is not in the plan; nothing to do", 0)

    record = Record(opts.root)
    todo = [t for t in tlist if t.problem is None]
    for t in todo:
        record.remember(t.address, t.vendor_id, t.device_id, node.current_driver(t.address), t.planned_driver)
    record_problem = None
    try:
        record.save()  # before the first unbind: a crash mid-run must not lose it
    except OSError as exc:  # said in each device's line
        record_problem = f"previous driver not recorded ({record.path}: {exc.strerror or exc})"

    need = [t for t in todo if node.current_driver(t.address) != VFIO]
    waiter = opts.make_waiter(node)
    modprobe = opts.make_modprobe()
    vfio_problem = driver.ensure_driver_loaded(node, waiter, modprobe, opts.timeout) if need else None
    if need:
        waiter.start()
    try:
        for t in tlist:
            status.devices.append(_one(node, t, record, waiter, opts.timeout, vfio_problem, record_problem))
    finally:
        waiter.close()
    # A claimed device is the controller's: once vfio-pci holds it again, the override
    # the udev rule set must go, or Harvester's "disable" cannot give it back to its
    # host driver (boot/handover.py).
    claimed = [d.address for d in status.devices if d.address in handed_over.devices and d.driver == VFIO]
    if claimed:
        handover.release_overrides(opts.root, claimed, io=opts.io)

    if opts.address is not None:
        status.sriov = []  # only read in a run for one address
        return _finish(opts, _merge(opts.root, status), writes_before, shown=status)
    return _finish(opts, status, writes_before)


def _one(node: Node, t: Target, record: Record, waiter: driver.Waiter, timeout: float,
         vfio_problem: str | None, record_problem: str | None) -> DeviceResult:
    prev = record.get(t.address, t.vendor_id, t.device_id)
    r = DeviceResult(t.address, t.vendor_id, t.device_id, SKIPPED, t.problem, node.current_driver(t.address),
                     prev.driver if prev else None)
    if t.problem is not None:
        return r
    notes = [n for n in (t.note, record_problem) if n]
    if r.driver != VFIO and vfio_problem is not None:
        r.status, r.reason = FAILED, vfio_problem
        return r
    was = r.driver
    out = driver.bind(node, t.address, waiter, timeout)
    r.driver = out.driver
    if not out.ok:
        r.status = FAILED
        notes.insert(0, out.reason or "failed")
    elif out.changed:
        r.status = BOUND
        if t.bind_at_boot == BIND_IDS:
            notes.insert(0, f"vfio-pci.ids did not claim it at boot ({was or 'no driver'} had it); bound by address")
    else:
        r.status = ALREADY_BOUND
    r.reason = "; ".join(notes) or None
    return r


def _merge(root: str, status: BindStatus) -> BindStatus:
    """A run for one address updates its entries in this boot's status, keeping the rest."""
    old = read_status(root)
    if old is None or old.skipped:
        return status
    mine = {d.address for d in status.devices}
    merged = BindStatus(old.skipped, old.skip_reason, list(old.devices), list(old.sriov), status.given_back)
    merged.devices = [d for d in old.devices if d.address not in mine] + status.devices
    return merged


def _finish(opts: Options, status: BindStatus, writes_before: int, shown: BindStatus | None = None) -> Result:
    """Say one line per device of this run (`shown`), write `status` for the boot.

    The lines go to standard output only, not also through logging: the unit's stdout
    and stderr both land in the journal, which would show every line twice."""
    shown = shown or status
    for s in shown.sriov:
        opts.say(_sriov_line(s))
    for d in sorted(shown.devices, key=lambda d: d.address):
        opts.say(_line(d))
    write_status(opts.root, status)
    writes = len(opts.io.writes) - writes_before
    counts = {k: sum(1 for d in shown.devices if d.status == k) for k in (BOUND, ALREADY_BOUND, SKIPPED, FAILED)}
    msg = (
        f"bind: {counts[BOUND]} bound, {counts[ALREADY_BOUND]} already bound, "
        f"{counts[SKIPPED]} skipped, {counts[FAILED]} failed; "
        + (f"{writes} sysfs writes" if writes else "nothing changed")
    )
    failed = any(d.status == FAILED for d in shown.devices) or any(x.status == FAILED for x in shown.sriov)
    return Result(status, msg, writes, ok=shown.ok, failed=failed)
