"""Turn the plan's passthrough list into the devices to handle on this boot.

A VF's identity is (PF, index), not its address: the plan predicted the address from
the PF's offset/stride, the kernel decides it. VFs of a planned PF are therefore looked
up through the PF's `virtfnN` links; when `vfs_to_vfio` is set, every VF of the PF is a
target even if the plan did not list it.
"""

from __future__ import annotations

import logging

from installer_ext.boot.check import Target
from installer_ext.boot.node import Node
from installer_ext.plan.model import BIND_ADDRESS, Plan

log = logging.getLogger(__name__)


def build(node: Node, plan: Plan, vfs_of: dict[str, list[str] | None], sriov_reason: dict[str, str]) -> list[Target]:
    """Targets for every planned device. `vfs_of[pf]` holds the real VF addresses of each
    planned PF (None when unknown: `sriov_reason[pf]` says why)."""
    sriov = {s.address: s for s in plan.sriov}
    targets: list[Target] = []
    taken: dict[str, list[int]] = {}
    for p in plan.passthrough:
        t = Target(p.address, p.vendor_id, p.device_id, p.bind_at_boot, p.address, p.driver, pf=p.vf_of)
        targets.append(t)
        s = sriov.get(p.vf_of) if p.vf_of else None
        if s is None:
            continue
        vfs = vfs_of.get(s.address)
        if vfs is None:
            t.problem = f"VF of {s.address}, whose SR-IOV is not set: {sriov_reason.get(s.address, 'unknown')}"
            continue
        if p.address in s.vfs:
            index = s.vfs.index(p.address)
        elif p.address in vfs:
            index = vfs.index(p.address)
        else:
            t.problem = f"not a VF of {s.address} on this boot (its VFs: {', '.join(vfs) or 'none'})"
            continue
        if index >= len(vfs):
            t.problem = f"VF {index} of {s.address}, which has {len(vfs)} VFs"
            continue
        taken.setdefault(s.address, []).append(index)
        if vfs[index] != p.address:
            t.address = vfs[index]
            t.note = f"VF {index} of {s.address} is at {vfs[index]}, the plan predicted {p.address}"
    for s in plan.sriov:
        vfs = vfs_of.get(s.address)
        if not s.vfs_to_vfio or not vfs:
            continue
        vendor = s.vendor_id or node.ids(s.address)[0]
        device = s.vf_device_id or node.sriov_vf_device(s.address)
        for index, vf in enumerate(vfs):
            if index in taken.get(s.address, ()):
                continue
            t = Target(vf, vendor or "", device or "", BIND_ADDRESS, vf, None, pf=s.address)
            if not vendor or not device:
                t.problem = f"VF {index} of {s.address}: VF vendor/device unknown"
            targets.append(t)
    seen: set[str] = set()
    for t in targets:
        if t.address in seen and t.problem is None:
            t.problem = "listed twice (a predicted VF address collides with another device)"
        seen.add(t.address)
    return targets
