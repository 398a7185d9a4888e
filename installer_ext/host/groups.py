"""IOMMU groups: as the kernel reports them, or predicted from the topology.

The prediction follows the kernel's `pci_device_group()` (torvalds/linux,
drivers/iommu/iommu.c) with ACS as it will be once the IOMMU is on (the kernel enables
every ACS control bit the capability offers, so "has an ACS capability" is what counts),
taking the functions in address order, parents before children, as the kernel adds them:

1. DMA aliases (`pci_for_each_dma_alias()`, drivers/pci/search.c): a device behind a
   PCIe-to-PCI or conventional PCI bridge issues DMA with the bridge's requester id,
   so it takes the bridge's group.
2. Walking up (`pci_acs_path_enabled()`, drivers/pci/pci.c): while the upstream port
   of the device's bus lacks ACS on the path to the root, the device joins that port's
   group.
3. The functions of one multifunction slot that lack ACS share a group
   (`get_pci_function_alias_group()`). "Multifunction" is the kernel's flag, not the
   header byte alone: `pci_scan_slot()` (drivers/pci/probe.c) sets it on every function
   found after the first of a slot, whatever its own header says; the SR-IOV code
   clears it on VFs (`pci_iov_add_virtfn()`, drivers/pci/iov.c).

Kernel quirks are not modelled: the ones that declare isolation without ACS can only
make the real groups smaller than predicted (safe); the DMA alias quirks
(`pci_add_dma_alias()`) can make them larger, which the binder's check of the real
groups on the installed system catches before anything is bound.
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


def kernel_multifunction(d: PciFunction) -> bool | None:
    """The kernel's `pci_dev->multifunction`: the header's bit for the first function
    `pci_scan_slot()` finds, always set for the ones after it, never for a VF.

    Any function but x:00.0 counts as found after the first: exact for a slot scanned
    8 functions at a time (function > 0), and with ARI, where one scan from devfn 0
    finds functions at any devfn, every devfn > 0 is after the first too. None when
    the header could not be read (x:00.0 only)."""
    if d.physfn is not None:
        return False
    if not d.address.endswith(":00.0"):
        return True
    return d.multifunction


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
        multifunction = kernel_multifunction(d)
        if multifunction is None:
            return False
        if not multifunction:
            return True
        return bool(d.acs)
    return True


class _Prediction:
    """pci_device_group() for each function in address order (parents first)."""

    def __init__(self, devices: list[PciFunction]) -> None:
        self.by_addr = {d.address: d for d in devices}
        self.group_of: dict[str, int] = {}
        # Slot (domain:bus:device) -> group of its first function without ACS isolation.
        self.open_slots: dict[str, int] = {}
        self.next_id = 0

    def up(self, d: PciFunction) -> PciFunction | None:
        return self.by_addr.get(d.parent) if d.parent else None

    def acs_path(self, start: PciFunction) -> bool:
        """pci_acs_path_enabled(start, NULL): ACS at every bridge up to the root bus."""
        node: PciFunction | None = start
        while node is not None:
            if not _acs_enabled(node):
                return False
            node = self.up(node)
        return True

    def dma_alias(self, d: PciFunction) -> PciFunction:
        """The topmost conventional PCI or PCIe-to-PCI bridge above `d` (its requests
        carry that bridge's id), else `d` itself: pci_for_each_dma_alias()."""
        alias = d
        node = self.up(d)
        while node is not None:
            if node.pcie_type is None or node.pcie_type in (cs.PCIE_PCI_BRIDGE, cs.PCIE_PCIE_BRIDGE):
                alias = node
            node = self.up(node)
        return alias

    def group(self, d: PciFunction) -> int:
        alias = self.dma_alias(d)
        if alias is not d and alias.address in self.group_of:
            return self.group_of[alias.address]
        # Up to the point where ACS protects against peer-to-peer.
        pdev = alias
        while pdev.parent is not None:
            above = self.up(pdev)
            if above is None or self.acs_path(above):
                break
            pdev = above
            if pdev.address in self.group_of:
                return self.group_of[pdev.address]
        # Functions of a multifunction slot without ACS.
        if kernel_multifunction(pdev) and not _acs_enabled(pdev) and pdev.slot in self.open_slots:
            return self.open_slots[pdev.slot]
        self.next_id += 1
        return self.next_id - 1

    def run(self) -> dict[str, int]:
        for d in sorted(self.by_addr.values(), key=lambda x: address_sort_key(x.address)):
            gid = self.group_of[d.address] = self.group(d)
            if d.physfn is None and not _acs_enabled(d):
                self.open_slots.setdefault(d.slot, gid)
        return self.group_of


def predict_groups(devices: list[PciFunction]) -> tuple[dict[str, int], list[Group]]:
    """(address -> predicted group, the groups) for every function.

    Group ids are given in address order, the order in which the kernel allocates them
    at boot, so on simple machines they match the numbers the installed system shows.
    """
    group_of = _Prediction(devices).run()
    members: dict[int, list[str]] = {}
    for addr, gid in group_of.items():
        members.setdefault(gid, []).append(addr)
    groups = [
        Group(gid, tuple(sorted(a, key=address_sort_key)), predicted=True)
        for gid, a in sorted(members.items())
    ]
    log.debug("predicted %d groups for %d functions", len(groups), len(devices))
    return group_of, groups


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
