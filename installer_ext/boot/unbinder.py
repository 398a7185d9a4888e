"""`installer-ext unbind`: give every device of the plan back to its host driver, for
good: the plan is marked given back (boot/givenback.py) and later boots leave the devices
with the host until `installer-ext bind --again`. With --address, one device, until the
next boot.

For each planned device (VFs found through their PF's `virtfnN` links) that is still
the planned vendor:device: unbind it from vfio-pci, reprobe it for the driver recorded
at its first bind (else the install-time driver from the plan, else whatever native
driver matches), clear `driver_override`, and check the result. No group checks: giving
a device back to the host is always allowed. Idempotent: a device not on vfio-pci and
without our override is left alone. VF counts are left as they are.

A device in use by a VM cannot be given back: vfio-pci's unbind waits in the kernel
until the VM releases it (it asks QEMU to unplug it). Stop the VMs first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from installer_ext.boot import driver, givenback, sriov, targets
from installer_ext.boot.lock import run_lock
from installer_ext.boot.node import VFIO, Node
from installer_ext.boot.options import Options
from installer_ext.boot.record import FAILED, SKIPPED, DeviceResult, Record
from installer_ext.plan.planfile import read_plan_file


RELEASED = "released"
ALREADY_RELEASED = "already-released"


@dataclass
class UnbindResult:
    devices: list[DeviceResult] = field(default_factory=list)
    message: str = ""
    writes: int = 0
    mark: str | None = None  # the given-back mark written (a run without --address)
    mark_problem: str | None = None  # why it could not be

    @property
    def ok(self) -> bool:
        return self.mark_problem is None and all(d.status in (RELEASED, ALREADY_RELEASED) for d in self.devices)

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, "devices": [d.to_json() for d in sorted(self.devices, key=lambda d: d.address)]}


def _line(d: DeviceResult) -> str:
    head = f"{d.address} [{d.vendor_id}:{d.device_id}]"
    now = f"on {d.driver}" if d.driver else "without a driver"
    if d.status == RELEASED:
        text = f"{head}: given back, now {now}"
    elif d.status == ALREADY_RELEASED:
        text = f"{head}: not on {VFIO} (now {now}), nothing to do"
    else:
        text = f"{head}: {d.status}"
    return text + (f": {d.reason}" if d.reason else "")


def unbind(opts: Options) -> UnbindResult:
    """One unbind run. Raises BadInput for a bad plan (nothing touched).

    Without --address the plan is marked given back first (boot/givenback.py), so that
    a crash half-way still leaves the devices with the host at the next boot."""
    pf = read_plan_file(opts.plan_file())
    plan = pf.plan
    node = Node(opts.root, opts.io)
    result = UnbindResult()
    with run_lock(opts.root, opts.clock):
        if opts.address is None:
            try:
                result.mark = givenback.write(opts.root, pf.digest)
            except OSError as exc:
                result.mark_problem = f"{givenback.path_under(opts.root)}: {exc.strerror or exc}"
        before = len(opts.io.writes)
        vfs_of = {s.address: sriov.current_vfs(node, s.address) for s in plan.sriov}
        tlist = targets.build(node, plan, vfs_of, {s.address: "no VFs now" for s in plan.sriov})
        if opts.address is not None:
            tlist = [t for t in tlist if t.address == opts.address]
        record = Record(opts.root)
        waiter = opts.make_waiter(node)
        modprobe = opts.make_modprobe()
        waiter.start()
        try:
            result.devices = [_release(node, t, record, waiter, modprobe, opts.timeout) for t in tlist]
        finally:
            waiter.close()
        result.writes = len(opts.io.writes) - before
    for d in sorted(result.devices, key=lambda d: d.address):
        opts.say(_line(d))  # stdout only: the journal keeps stdout and stderr both
    n = {k: sum(1 for d in result.devices if d.status == k) for k in (RELEASED, ALREADY_RELEASED, SKIPPED, FAILED)}
    result.message = (
        f"unbind: {n[RELEASED]} given back, {n[ALREADY_RELEASED]} already off {VFIO}, "
        f"{n[SKIPPED]} skipped, {n[FAILED]} failed; "
        + (f"{result.writes} sysfs writes" if result.writes else "nothing changed")
        + "; " + _how_long(result, opts.address)
    )
    return result


def _how_long(result: UnbindResult, address: str | None) -> str:
    if address is not None:
        return "until the next boot (`installer-ext unbind` without --address gives the plan back for good)"
    if result.mark_problem is not None:
        return f"until the next boot only: the given-back mark could not be written ({result.mark_problem})"
    return f"for good: the host keeps them at every boot ({result.mark}); `installer-ext bind --again` takes them back"


def _release(node: Node, t, record: Record, waiter: driver.Waiter, modprobe, timeout: float) -> DeviceResult:
    prev = record.get(t.address, t.vendor_id, t.device_id)
    previous = prev.driver if prev else (t.planned_driver if t.planned_driver != VFIO else None)
    r = DeviceResult(t.address, t.vendor_id, t.device_id, SKIPPED, None, node.current_driver(t.address), previous)
    if t.problem is None and not node.exists(t.address):
        t.problem = "not present on this boot"
    if t.problem is None:
        vid, did = node.ids(t.address)
        if (vid, did) != (t.vendor_id, t.device_id):
            t.problem = f"holds {vid}:{did}, the plan expects {t.ids}; not touched"
    if t.problem is not None:
        r.reason = t.problem
        return r
    try:
        out = driver.release(node, t.address, previous, waiter, timeout, modprobe)
    except ValueError as exc:  # a driver link that names no driver
        out = driver.Outcome(False, False, str(exc), None)
    r.driver = out.driver
    r.reason = out.reason
    r.status = (RELEASED if out.changed else ALREADY_RELEASED) if out.ok else FAILED
    return r
