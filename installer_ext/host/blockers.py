"""Why a function cannot be given to vfio-pci: intrinsic reasons and group spreading.

A group is viable for VFIO only when every function in it is bound to vfio-pci, has
no driver, or is a PCI-to-PCI bridge (the kernel lets bridges stay as they are). So a
blocked function blocks its group-mates too, except a blocked PCI-to-PCI bridge, which
is never bound but never stands in the way either.
"""

from __future__ import annotations

from installer_ext.host import model as m
from installer_ext.host.model import Blocker, IommuFacts, PciFunction


def describe(dev: PciFunction) -> str:
    """Short words for a device, used inside other reasons."""
    if dev.boot_vga:
        return "boot display"
    if dev.device_name:
        return dev.device_name
    return f"{dev.kind} {dev.ids or 'unknown'}"


def intrinsic(dev: PciFunction, iommu: IommuFacts) -> list[Blocker]:
    out: list[Blocker] = []
    if iommu.state == "absent":
        out.append(Blocker(m.BLOCK_NO_IOMMU, "no IOMMU on this host (no DMAR or IVRS table)"))
    if dev.vendor_id is None or dev.device_id is None or dev.class_id is None:
        missing = ", ".join(u for u in dev.unknown if u in ("vendor", "device", "class", "directory"))
        out.append(Blocker(m.BLOCK_UNKNOWN, f"unreadable in sysfs ({missing or 'identity'}): cannot be checked"))
    if dev.boot_vga:
        out.append(Blocker(m.BLOCK_BOOT_VGA, "boot display (boot_vga): the console would go dark"))
    if dev.is_bridge:
        what = "PCI bridge" if dev.pci_bridge else "host/ISA bridge"
        out.append(Blocker(m.BLOCK_BRIDGE, f"{what}: bridges are never bound"))
    if dev.sriov is not None and dev.sriov.num_vfs > 0:
        out.append(
            Blocker(
                m.BLOCK_SRIOV_PF,
                f"SR-IOV physical function with {dev.sriov.num_vfs} VFs: stays on its host driver",
            )
        )
    return out


def spreads_to_group(dev: PciFunction, blockers: list[Blocker]) -> bool:
    """Whether `dev`, blocked for `blockers`, also blocks its group-mates."""
    if not blockers:
        return False
    if all(b.code == m.BLOCK_SAME_GROUP for b in blockers):
        return False  # only the original culprit is named
    if all(b.code == m.BLOCK_BRIDGE for b in blockers):
        # A PCI-to-PCI bridge is allowed in a viable group; so is a driverless one.
        return not (dev.pci_bridge or dev.driver is None)
    if all(b.code == m.BLOCK_NO_IOMMU for b in blockers):
        return False  # every device has it already
    return True


def spread(
    devices: list[PciFunction], seeds: dict[str, list[Blocker]], group_members
) -> dict[str, list[Blocker]]:
    """Add `same-group` blockers for the group-mates of every spreading blocker.

    `group_members(dev)` returns the functions of dev's (real or predicted) group.
    """
    out = {addr: list(bs) for addr, bs in seeds.items()}
    by_addr = {d.address: d for d in devices}
    for addr, bs in seeds.items():
        dev = by_addr.get(addr)
        if dev is None or not spreads_to_group(dev, bs):
            continue
        words = describe(dev)
        first = next(b for b in bs if b.code not in (m.BLOCK_SAME_GROUP, m.BLOCK_NO_IOMMU))
        for mate in group_members(dev):
            if mate.address == addr:
                continue
            if mate.pci_bridge:
                continue  # bridges stay as they are; they need no reason of their own
            reason = f"same IOMMU group as {addr} ({words}: {first.code})"
            lst = out.setdefault(mate.address, [])
            if not any(b.code == m.BLOCK_SAME_GROUP and b.by == addr for b in lst):
                lst.append(Blocker(m.BLOCK_SAME_GROUP, reason, by=addr))
    return out
