"""SR-IOV in the plan: the VFs a PF will get at every boot, and which go to VMs.

The PF itself stays on its host driver (its driver creates the VFs; plan/blocking.py
blocks it). Its VFs may go to vfio-pci when their addresses can be worked out and the
topology gives them groups of their own (host/groups.py vf_isolated).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from installer_ext.config.model import SriovChoice
from installer_ext.host.address import vf_address
from installer_ext.host.groups import vf_isolated
from installer_ext.host.model import HostFacts, PciFunction
from installer_ext.plan import model as pm
from installer_ext.plan import reasons as rs
from installer_ext.plan.reasons import Blocker


@dataclass
class PfPlan:
    """What one sriov entry gives: the PF's plan (None when refused), the VFs bound to
    vfio-pci at boot, and the refusals (PF or single VFs) on the way."""

    sriov: pm.SriovPlan | None
    vfs: list[pm.Passthrough] = field(default_factory=list)
    refused: list[pm.Refusal] = field(default_factory=list)


def vf_addresses(pf: PciFunction, num_vfs: int) -> list[str]:
    """The VFs `num_vfs` will give: the ones there now if the count is the same, else
    from the PF's SR-IOV offset and stride (empty when those are unknown)."""
    if pf.virtfns and len(pf.virtfns) == num_vfs:
        return list(pf.virtfns)
    if pf.sriov.offset is None or pf.sriov.stride is None:
        return []
    out = [vf_address(pf.address, pf.sriov.offset, pf.sriov.stride, n) for n in range(num_vfs)]
    return [a for a in out if a is not None]


def _vf_entry(pf: PciFunction, address: str, existing: PciFunction | None, vf_device_id: str) -> pm.Passthrough:
    return pm.Passthrough(
        address=address,
        vendor_id=pf.vendor_id or "",
        device_id=vf_device_id,
        iommu_group=existing.group if existing is not None else None,
        why=pm.WHY_SRIOV_VF,
        bind_at_boot=pm.BIND_ADDRESS,
        kind=pf.kind,
        class_id=pf.class_id,
        group_predicted=existing is None or existing.iommu_group is None,
        vf_of=pf.address,
        driver=existing.driver if existing is not None else None,
    )


def plan_pf(facts: HostFacts, pf: PciFunction, choice: SriovChoice, blocked: dict[str, tuple[Blocker, ...]]) -> PfPlan:
    """One sriov entry on a PF the planner has checked (plan/planner.py sriov_pf)."""
    vf_device_id = pf.sriov.vf_device_id or pf.device_id or ""
    vfs = vf_addresses(pf, choice.num_vfs)
    out = PfPlan(None)
    if choice.vfs_to_vfio and choice.num_vfs:
        if len(vfs) != choice.num_vfs:
            reason = "VF addresses cannot be worked out (no sriov_offset/sriov_stride)"
            return PfPlan(None, refused=[pm.Refusal(pf.address, reason, rs.REFUSE_VF_ADDRESSES)])
        if not vf_isolated(list(facts.devices), pf):
            reason = "its VFs would share an IOMMU group with the PF (no ACS above it): they cannot go to VMs"
            return PfPlan(None, refused=[pm.Refusal(pf.address, reason, rs.REFUSE_VF_GROUP)])
        for a in vfs:
            existing = facts.device(a)
            if existing is not None and existing.physfn == pf.address:
                bs = tuple(b for b in blocked.get(a, ()) if b.code != rs.BLOCK_NO_IOMMU)
                if bs:
                    out.refused.append(pm.Refusal.of(a, bs, fatal=True))
                    continue
            out.vfs.append(_vf_entry(pf, a, existing, vf_device_id))
    out.sriov = pm.SriovPlan(
        address=pf.address,
        num_vfs=choice.num_vfs,
        vfs_to_vfio=choice.vfs_to_vfio,
        vendor_id=pf.vendor_id or "",
        device_id=pf.device_id or "",
        total_vfs=pf.sriov.total_vfs,
        vf_device_id=vf_device_id,
        vfs=tuple(vfs),
    )
    return out
