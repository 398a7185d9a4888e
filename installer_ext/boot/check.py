"""Re-validate the machine against the plan before anything is written.

Identity is address + vendor:device, never the group number (numbers change across
kernels). A device is bindable when it is still there with the planned ids, is not a
bridge, the boot VGA, a function the running host needs (host/inuse.py: a mounted
filesystem or active swap on it, the default route or a port of the management bridge
through it) or a PF with live VFs, and its IOMMU group *now* holds nothing but planned
devices, PCI-to-PCI bridges and the functions the plan chose to leave (which must still
be driverless, or vfio could not claim the group). Groups predicted at install time are
checked the same way against the real one. None of this is taken from the plan: a
plan edited by hand, or one written for another boot, gets the same checks.

Binding half a group is useless (the group is not viable for a VM) and takes host
functions away for nothing, so devices are handled in units: every planned device that
shares a real group or a plan group with another is in its unit, and one problem in a
unit skips the whole unit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from installer_ext.boot.node import VFIO, Node
from installer_ext.host.address import PCI_ADDRESS_RE
from installer_ext.host.inuse import HostUse
from installer_ext.plan.model import GroupPlan, Plan

log = logging.getLogger(__name__)

# Drivers that leave a group viable for vfio (they declare driver_managed_dma).
_VIABLE_DRIVERS = (VFIO, "pci-stub", "pcieport")


@dataclass
class Target:
    """One device the plan gives to vfio-pci, as found on this boot."""

    address: str  # where it is now (a VF's real address)
    vendor_id: str
    device_id: str
    bind_at_boot: str  # ids | address
    plan_address: str  # as the plan names it (a predicted VF address may differ)
    planned_driver: str | None = None  # host driver at install time
    pf: str | None = None
    problem: str | None = None  # why it is skipped; None while bindable
    note: str | None = None  # worth saying even when it goes well
    group: int | None = None

    @property
    def ids(self) -> str:
        return f"{self.vendor_id}:{self.device_id}"


class _Units:
    """Union-find over addresses."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, a: str) -> str:
        self.parent.setdefault(a, a)
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def host_needs(use: HostUse, address: str) -> str | None:
    """Why the running host needs `address` this boot, in one sentence, or None."""
    reasons = use.reasons(address)
    if not reasons:
        return None
    more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
    return f"the host needs it: {reasons[0]}{more}; never bound, whatever the plan says"


def _identity(node: Node, t: Target, use: HostUse) -> str | None:
    a = t.address
    if not node.exists(a):
        return "not present on this boot (removed or moved since install?)"
    vid, did = node.ids(a)
    if vid is None or did is None:
        return "vendor/device ids unreadable"
    if (vid, did) != (t.vendor_id, t.device_id):
        return f"holds {vid}:{did}, the plan expects {t.ids} (device changed since install)"
    if node.is_pci_bridge(a):
        return "is a PCI bridge; bridges are never bound"
    if node.is_bridge(a):
        return f"is a bridge (class {node.class_id(a) or 'unreadable'}); bridges are never bound"
    if node.boot_vga(a):
        return "is the boot VGA device now; binding it would take the host's console"
    needed = host_needs(use, a)
    if needed:
        return needed
    num = node.sriov_num(a)
    if num:
        return f"is an SR-IOV PF with {num} VFs; unbinding its driver would remove them"
    try:
        node.driver(a)
    except ValueError as exc:
        return str(exc)
    t.group = node.group(a)
    if t.group is None:
        return "has no IOMMU group (is the IOMMU on for it?)"
    return None


def _describe(node: Node, address: str) -> str:
    vid, did = node.ids(address)
    try:
        drv = node.driver(address)
    except ValueError:
        drv = "?"
    return f"{address} ({vid or '?'}:{did or '?'}, driver {drv or 'none'})"


def _plan_groups(plan: Plan) -> dict[str, GroupPlan]:
    out: dict[str, GroupPlan] = {}
    for g in plan.groups:
        for a in (*g.devices, *g.passthrough):
            out.setdefault(a, g)
    return out


def validate(node: Node, targets: list[Target], plan: Plan, use: HostUse) -> None:
    """Set `problem` on every target that must not be bound on this boot."""
    by_addr = {t.address: t for t in targets}
    by_plan_addr = {t.plan_address: t for t in targets}
    groups_of = _plan_groups(plan)
    units = _Units()

    for t in targets:
        units.find(t.address)
        if t.problem is None:
            t.problem = _identity(node, t, use)

    members_cache: dict[int, list[str] | None] = {}
    for t in targets:
        if t.problem is not None or t.group is None:
            continue
        g = t.group
        if g not in members_cache:
            members_cache[g] = node.group_members(g)
        members = members_cache[g]
        if members is None:
            t.problem = f"IOMMU group {g} unreadable"
            continue
        pg = groups_of.get(t.plan_address)
        left = set(pg.left) if pg else set()
        needed = next(((m, r[0]) for m in members if m not in by_addr and (r := use.reasons(m))), None)
        if needed is not None:  # said first: it is why the group can never go
            t.problem = f"IOMMU group {g} also holds {needed[0]}, which the host needs: {needed[1]}"
            continue
        for m in members:
            if m == t.address:
                continue
            if not PCI_ADDRESS_RE.match(m):
                t.problem = f"IOMMU group {g} has an entry {m!r} that is not a PCI address"
                break
            if m in by_addr:
                units.union(t.address, m)
                continue
            if node.is_pci_bridge(m):
                continue
            if m in left:
                try:
                    drv = node.driver(m)
                except ValueError:
                    drv = "?"
                if drv is None or drv in _VIABLE_DRIVERS:
                    continue
                t.problem = f"IOMMU group {g}: {m}, left as is by the plan, is now driven by {drv}"
                break
            t.problem = f"IOMMU group {g} also holds {_describe(node, m)}, which the plan does not cover"
            break
        if pg is not None and t.problem is None:
            now = sorted(members)
            if pg.predicted and set(now) != set(pg.devices):
                log.info("%s: group predicted at install %s, real group %d now %s", t.address, list(pg.devices), g, now)
            elif pg.id is not None and pg.id != g:
                log.info("%s: IOMMU group number %s at install, %d now", t.address, pg.id, g)

    # Planned group-mates stay one unit even if the real group split them.
    for t in targets:
        pg = groups_of.get(t.plan_address)
        for sib in pg.passthrough if pg else ():
            if sib in by_plan_addr:
                units.union(t.address, by_plan_addr[sib].address)

    first_problem: dict[str, Target] = {}
    for t in sorted(targets, key=lambda t: t.address):
        if t.problem is not None:
            first_problem.setdefault(units.find(t.address), t)
    for t in targets:
        bad = first_problem.get(units.find(t.address))
        if t.problem is None and bad is not None:
            t.problem = f"with its IOMMU group: {bad.address} {bad.problem}"
