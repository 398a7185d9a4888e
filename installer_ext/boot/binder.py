"""`installer-ext bind`: every boot, give the planned devices to vfio-pci.

Order of a run: the rescue switch on the kernel command line; the plan (strictly
validated); the lock; IOMMU on; SR-IOV counts; every device re-validated against the
plan (identity, group); the previous drivers recorded; vfio-pci loaded when needed;
each bindable device bound; the per-boot status written. A device that cannot be
handled is skipped (or failed) and reported; the others go on. Nothing is written for
a device that is already on vfio-pci.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from installer_ext import paths
from installer_ext.boot import check, driver, sriov, targets
from installer_ext.boot.check import Target
from installer_ext.boot.lock import run_lock
from installer_ext.boot.node import VFIO, Node
from installer_ext.boot.options import Options
from installer_ext.boot.record import (
    ALREADY_BOUND,
    BOUND,
    FAILED,
    SKIPPED,
    BindStatus,
    DeviceResult,
    Record,
    SriovResult,
    read_status,
    write_status,
)
from installer_ext.plan.model import BIND_IDS, Plan
from installer_ext.plan.planfile import load_plan

log = logging.getLogger(__name__)

@dataclass
class Result:
    status: BindStatus
    message: str  # the summary line
    writes: int  # sysfs writes of this run
    ok: bool = True  # every device and VF count of this run as planned (exit 0)


def _line(d: DeviceResult) -> str:
    head = f"{d.address} [{d.vendor_id}:{d.device_id}]"
    if d.status == BOUND:
        was = f" (was {d.previous_driver})" if d.previous_driver else ""
        text = f"{head}: bound to {VFIO}{was}"
    elif d.status == ALREADY_BOUND:
        text = f"{head}: already on {VFIO}, nothing to do"
    else:
        text = f"{head}: {d.status}"
    return text + (f": {d.reason}" if d.reason else "")


def _sriov_line(s: SriovResult) -> str:
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
        msg = f"bind: skipped for this boot ({paths.SKIP_ARG} on the kernel command line); nothing touched"
        log.warning("%s", msg)
        return Result(status, msg, 0, ok=True)

    plan = load_plan(opts.plan_file())
    with run_lock(opts.root, opts.clock):
        return _bind_locked(opts, node, plan)


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

    # SR-IOV first: the VFs to bind exist only once their PF has them.
    vfs_of: dict[str, list[str] | None] = {}
    why: dict[str, str] = {}
    for s in plan.sriov:
        out = sriov.configure(node, s, apply=opts.address is None)
        vfs_of[s.address] = out.vfs
        why[s.address] = out.result.reason or out.result.status
        status.sriov.append(out.result)

    tlist = targets.build(node, plan, vfs_of, why)
    check.validate(node, tlist, plan)
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
    except OSError as exc:
        record_problem = f"previous driver not recorded ({record.path}: {exc.strerror or exc})"
        log.warning("%s", record_problem)

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
    merged = BindStatus(old.skipped, old.skip_reason, list(old.devices), list(old.sriov))
    merged.devices = [d for d in old.devices if d.address not in mine] + status.devices
    return merged


def _finish(opts: Options, status: BindStatus, writes_before: int, shown: BindStatus | None = None) -> Result:
    """Say one line per device of this run (`shown`), write `status` for the boot."""
    shown = shown or status
    for s in shown.sriov:
        opts.say(_sriov_line(s))
        log.info("%s", _sriov_line(s))
    for d in sorted(shown.devices, key=lambda d: d.address):
        line = _line(d)
        opts.say(line)
        (log.info if d.status in (BOUND, ALREADY_BOUND) else log.warning)("%s", line)
    write_status(opts.root, status)
    writes = len(opts.io.writes) - writes_before
    counts = {k: sum(1 for d in shown.devices if d.status == k) for k in (BOUND, ALREADY_BOUND, SKIPPED, FAILED)}
    msg = (
        f"bind: {counts[BOUND]} bound, {counts[ALREADY_BOUND]} already bound, "
        f"{counts[SKIPPED]} skipped, {counts[FAILED]} failed; "
        + (f"{writes} sysfs writes" if writes else "nothing changed")
    )
    return Result(status, msg, writes, ok=shown.ok)
