"""Why a function cannot go to VMs: the one place that decides it.

A function is blocked for what it is (the boot display, a bridge, an SR-IOV PF with
VFs, unreadable, no IOMMU on the host), for what the install config makes of it (the
management NIC, the install and data disks' controllers: plan/install_blockers.py),
and for what the choices ask (a PF asked for VFs, a GPU kept on the host).

A group can go to vfio only as a whole: since Linux 5.19 the IOMMU core gives a group
to vfio only when every function in it has no driver or a driver that leaves DMA to
its owner (`driver_managed_dma`: vfio-pci, pci-stub, and pcieport for PCI-to-PCI
bridges, commit "PCI: portdrv: Set driver_managed_dma", torvalds/linux
drivers/pci/pcie/portdrv.c). So a blocked function blocks its group-mates too, except
a bridge that is left alone as it is.
"""

from __future__ import annotations

from installer_ext.config.model import InstallInfo
from installer_ext.host.model import HostFacts, IommuFacts, PciFunction
from installer_ext.plan import reasons as rs
from installer_ext.plan.install_blockers import install_blockers, unknown_install
from installer_ext.plan.reasons import Blocker

Blocked = dict[str, tuple[Blocker, ...]]


def left_alone(dev: PciFunction) -> bool:
    """Group-mates that stay as they are in a viable group: PCI-to-PCI bridges and
    bridges without a driver. They are never bound and never stand in the way."""
    return dev.pci_bridge or (dev.is_bridge and dev.driver is None)


def describe(dev: PciFunction) -> str:
    """Short words for a device, used inside other reasons."""
    if dev.boot_vga:
        return "boot display"
    if dev.device_name:
        return dev.device_name
    return f"{dev.kind} {dev.ids or 'unknown'}"


def intrinsic(dev: PciFunction, iommu: IommuFacts) -> list[Blocker]:
    """What the function is, whatever the config says."""
    out: list[Blocker] = []
    if iommu.state == "absent":
        out.append(Blocker(rs.BLOCK_NO_IOMMU, "no IOMMU on this host (no DMAR or IVRS table)"))
    if dev.vendor_id is None or dev.device_id is None or dev.class_id is None:
        missing = ", ".join(u for u in dev.unknown if u in ("vendor", "device", "class", "directory")) or "identity"
        out.append(Blocker(rs.BLOCK_UNKNOWN, f"unreadable in sysfs ({missing}): cannot be checked", subject=missing))
    if dev.boot_vga:
        out.append(Blocker(rs.BLOCK_BOOT_VGA, "boot display (boot_vga): the console would go dark"))
    if dev.is_bridge:
        what = "PCI bridge" if dev.pci_bridge else "host/ISA bridge"
        out.append(Blocker(rs.BLOCK_BRIDGE, f"{what}: bridges are never bound"))
    if dev.sriov is not None and dev.sriov.num_vfs > 0:
        n = dev.sriov.num_vfs
        out.append(
            Blocker(rs.BLOCK_SRIOV_PF, f"SR-IOV physical function with {n} VFs: stays on its host driver", subject=str(n))
        )
    return out


def asked_vfs(num_vfs: int) -> Blocker:
    """A PF the choices ask VFs of: its host driver creates them, so it stays."""
    return Blocker(
        rs.BLOCK_SRIOV_PF,
        f"SR-IOV physical function, {num_vfs} VFs asked: stays on its host driver",
        subject=str(num_vfs),
    )


HOST_GPU = Blocker(rs.BLOCK_HOST_GPU, "kept on the host for containers (hostGpus)")


def _spreads(dev: PciFunction, blockers: list[Blocker]) -> Blocker | None:
    """The blocker of `dev` that also blocks its group-mates, if any: not a
    `same-group` one (only the original culprit is named), not `no-iommu` (every
    function has it already), not `bridge` on a bridge that is left alone."""
    for b in blockers:
        if b.code in (rs.BLOCK_SAME_GROUP, rs.BLOCK_NO_IOMMU):
            continue
        if b.code == rs.BLOCK_BRIDGE and left_alone(dev):
            continue
        return b
    return None


def spread(facts: HostFacts, seeds: dict[str, list[Blocker]]) -> Blocked:
    """Add `same-group` blockers to the group-mates of every spreading blocker. `seeds`
    has every function of `facts` (its group-mates included)."""
    out = {addr: list(bs) for addr, bs in seeds.items()}
    for addr, bs in seeds.items():
        dev = facts.device(addr)
        first = _spreads(dev, bs) if dev is not None else None
        if first is None:
            continue
        words = describe(dev)
        for mate in facts.group_members(dev):
            if mate.address == addr or mate.pci_bridge:
                continue  # bridges stay as they are; they need no reason of their own
            # Each culprit is visited once, so a mate gets one `same-group` blocker per culprit.
            out[mate.address].append(
                Blocker(
                    rs.BLOCK_SAME_GROUP,
                    f"same IOMMU group as {addr} ({words}: {first.code})",
                    subject=first.code,
                    tentative=first.tentative,
                    by=addr,
                )
            )
    return {addr: tuple(bs) for addr, bs in out.items() if bs}


def blocked(
    facts: HostFacts,
    install: InstallInfo,
    asked_pfs: dict[str, int],
    host_gpus: set[str],
) -> Blocked:
    """Address -> its blockers (a missing address: it can go to VMs). `asked_pfs` are
    the PFs the choices ask VFs of (address -> count), `host_gpus` the GPUs they keep on
    the host. Raises BadInput when the install config names a disk or NIC the host
    lacks."""
    seeds = {d.address: intrinsic(d, facts.iommu) for d in facts.devices}
    for found in (install_blockers(facts, install), unknown_install(facts, install)):
        for addr, bs in found.items():
            if addr in seeds:
                seeds[addr].extend(bs)
    for addr, n in asked_pfs.items():
        if n > 0 and addr in seeds and not any(b.code == rs.BLOCK_SRIOV_PF for b in seeds[addr]):
            seeds[addr].append(asked_vfs(n))
    for addr in host_gpus:
        if addr in seeds:
            seeds[addr].append(HOST_GPU)
    return spread(facts, seeds)
