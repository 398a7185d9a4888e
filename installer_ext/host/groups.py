"""IOMMU groups: as the kernel reports them, or predicted from the topology.

The prediction follows the kernel's `pci_device_group()` (drivers/iommu/iommu.c) with
ACS as it will be once the IOMMU is on (the kernel enables every ACS control bit the
capability offers, so "has an ACS capability" is what counts):

1. DMA aliases: a device behind a PCIe-to-PCI or conventional PCI bridge issues DMA
   with the bridge's requester id, so it takes the bridge's group.
2. Walking up: while the upstream port of the device's bus lacks ACS on the path to the
   root, the device joins that port's group.
3. The functions of one multifunction slot that lack ACS share a group.

Kernel quirks that declare isolation for some devices without ACS are not modelled, so
a predicted group is never smaller than the real one: safe for the planner, which
re-checks the real groups on the installed system before binding.
"""

from __future__ import annotations

import logging

from installer_ext.host import config_space as cs
from installer_ext.host.address import address_sort_key
from installer_ext.host.model import Group, PciFunction

log = logging.getLogger(__name__)


def real_groups(devices: list[PciFunction]) -> list[Group]:
    members: dict[int, list[str]] = {}
    for d in devices:
        if d.iommu_group is not None:
            members.setdefault(d.iommu_group, []).append(d.address)
    return [
        Group(gid, tuple(sorted(addrs, key=address_sort_key)))
        for gid, addrs in sorted(members.items())
    ]


def _acs_enabled(d: PciFunction) -> bool:
    """Kernel's pci_acs_enabled() with ACS as the IOMMU-on kernel would set it."""
    if d.pcie_type is None:
        return False  # conventional PCI (or unknown): a shared bus, never isolated
    t = d.pcie_type
    if t in (cs.PCIE_PCIE_BRIDGE, cs.PCIE_PCI_BRIDGE, cs.PCIE_RC_EC):
        return False
    if t in (cs.PCIE_DOWNSTREAM, cs.PCIE_ROOT_PORT):
        return bool(d.acs)
    if t in (cs.PCIE_ENDPOINT, cs.PCIE_UPSTREAM, cs.PCIE_LEGACY_ENDPOINT, cs.PCIE_RC_END):
        if d.multifunction is None:
            return False
        if not d.multifunction:
            return True
        return bool(d.acs)
    return True


def predict_groups(devices: list[PciFunction]) -> list[Group]:
    """Assign `predicted_group` to every function and return the groups.

    Group ids are given in address order, the order in which the kernel allocates them
    at boot, so on simple machines they match the numbers the installed system shows.
    """
    by_addr = {d.address: d for d in devices}
    group_of: dict[str, int] = {}
    # Slot (domain:bus:device) -> group of its first function without ACS isolation.
    open_slots: dict[str, int] = {}
    next_id = 0

    def acs_path(start: PciFunction | None) -> bool:
        node = start
        while node is not None:
            if not _acs_enabled(node):
                return False
            node = by_addr.get(node.parent) if node.parent else None
        return True

    def is_vf(d: PciFunction) -> bool:
        return d.physfn is not None

    for d in sorted(devices, key=lambda x: address_sort_key(x.address)):
        # 1. DMA alias through conventional PCI / PCIe-to-PCI bridges.
        alias = d
        node = by_addr.get(d.parent) if d.parent else None
        while node is not None:
            if node.pcie_type is None or node.pcie_type in (cs.PCIE_PCI_BRIDGE, cs.PCIE_PCIE_BRIDGE):
                alias = node
            node = by_addr.get(node.parent) if node.parent else None
        gid = group_of.get(alias.address) if alias is not d else None

        # 2. Up to the point where ACS protects against peer-to-peer.
        if gid is None:
            pdev = alias
            while pdev.parent is not None and gid is None:
                up = by_addr.get(pdev.parent)
                if up is None or acs_path(up):
                    break
                pdev = up
                gid = group_of.get(pdev.address)
            if gid is None and pdev is not d:
                gid = group_of.get(pdev.address)

            # 3. Functions of a multifunction slot without ACS.
            if gid is None and pdev.multifunction and not is_vf(pdev) and not _acs_enabled(pdev):
                gid = open_slots.get(pdev.slot)
        if gid is None:
            gid = next_id
            next_id += 1
        group_of[d.address] = gid
        d.predicted_group = gid
        if not is_vf(d) and not _acs_enabled(d):
            open_slots.setdefault(d.slot, gid)

    members: dict[int, list[str]] = {}
    for addr, gid in group_of.items():
        members.setdefault(gid, []).append(addr)
    groups = [
        Group(gid, tuple(sorted(a, key=address_sort_key)), predicted=True)
        for gid, a in sorted(members.items())
    ]
    log.debug("predicted %d groups for %d functions", len(groups), len(devices))
    return groups


def vf_isolated(devices: list[PciFunction], pf: PciFunction) -> bool:
    """Whether the VFs of `pf` get groups without the PF (so they can go to VMs while
    the PF stays on its host driver). From the real groups when VFs exist with groups,
    else from the ACS path above the PF (VFs are single-function endpoints)."""
    by_addr = {d.address: d for d in devices}
    vfs = [by_addr[a] for a in pf.virtfns if a in by_addr]
    if vfs and pf.iommu_group is not None and all(v.iommu_group is not None for v in vfs):
        vf_set = set(pf.virtfns)
        for v in vfs:
            for d in devices:
                if d.iommu_group == v.iommu_group and d.address not in vf_set:
                    return False
        return True
    node = by_addr.get(pf.parent) if pf.parent else None
    while node is not None:
        if not _acs_enabled(node):
            return False
        node = by_addr.get(node.parent) if node.parent else None
    return True
