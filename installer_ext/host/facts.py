"""Gather every host fact under a root into one `HostFacts` snapshot."""

from __future__ import annotations

import dataclasses
import logging
import os

from installer_ext.host import groups, links, pci
from installer_ext.host.cpu import read_cpu
from installer_ext.host.iommu import read_iommu
from installer_ext.host.model import BlockDevice, Group, HostFacts, IommuFacts, NetInterface, PciFunction
from installer_ext.host.pciids import PciIds, udev_names
from installer_ext.host.sysfs import SysRoot

log = logging.getLogger(__name__)


def _namer(sr: SysRoot, addresses: list[str], ids: PciIds | None) -> pci.Namer | None:
    """How functions get their names: the pci.ids database, else on a live system
    without hwdata udev's hwdb, else none (the ids stand in)."""
    if ids is not None:

        def from_ids(address: str, vendor: str | None, device: str | None) -> tuple[str | None, str | None]:
            if vendor is None:
                return None, None
            return ids.vendor(vendor), (ids.device(vendor, device) if device else None)

        return from_ids
    if sr.root != "/":
        return None
    table = udev_names(addresses)
    return lambda address, vendor, device: table.get(address, (None, None))


def _groups(
    devices: list[PciFunction], iommu: IommuFacts, problems: list[str]
) -> tuple[dict[str, int], list[Group]]:
    """(address -> predicted group, the groups): the kernel's groups when the IOMMU is
    on, predicted ones when it is only available (off in this kernel), none without."""
    if iommu.state == "enabled":
        missing = [d.address for d in devices if d.iommu_group is None]
        if missing:
            more = " ..." if len(missing) > 8 else ""
            problems.append(f"IOMMU on but no group for {', '.join(missing[:8])}{more}")
        return {}, groups.real_groups(devices)
    if iommu.state == "available":
        return groups.predict_groups(devices)
    return {}, []


def _users(net: list[NetInterface], block: list[BlockDevice]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """PCI function -> its network interfaces, and -> its whole disks (partitions follow
    their disk)."""
    ifaces: dict[str, list[str]] = {}
    for n in net:
        if n.address:
            ifaces.setdefault(n.address, []).append(n.name)
    disks: dict[str, list[str]] = {}
    for b in block:
        if b.disk is None:
            for c in b.controllers:
                disks.setdefault(c, []).append(b.name)
    return ifaces, disks


def _with_relations(
    devices: list[PciFunction],
    predicted: dict[str, int],
    ifaces: dict[str, list[str]],
    disks: dict[str, list[str]],
) -> list[PciFunction]:
    """The functions with what only the whole host tells: VFs of each PF, predicted
    group, network interfaces, disks. Rebuilt (they are frozen) only where one is set."""
    vfs = pci.virtfns(devices)
    out = []
    for d in devices:
        a = d.address
        extra: dict[str, object] = {}
        if a in vfs:
            extra["virtfns"] = vfs[a]
        if a in predicted:
            extra["predicted_group"] = predicted[a]
        if a in ifaces:
            extra["net_interfaces"] = tuple(ifaces[a])
        if a in disks:
            extra["block_devices"] = tuple(disks[a])
        out.append(dataclasses.replace(d, **extra) if extra else d)
    return out


def _driver_modules(sr: SysRoot, devices: list[PciFunction]) -> dict[str, str]:
    out = {}
    for drv in sorted({d.driver for d in devices if d.driver}):
        link = sr.readlink(os.path.join(sr.sys, "bus", "pci", "drivers", drv, "module"))
        if link:
            out[drv] = link.rstrip("/").rsplit("/", 1)[-1]
    return out


def gather(root: str | os.PathLike = "/", names: bool = True, ids: PciIds | None = None) -> HostFacts:
    """Read the machine under `root`. Never raises for a broken tree: what cannot be
    read is reported in `problems` and in each device's `unknown`."""
    sr = SysRoot(root)
    problems: list[str] = []
    cpu = read_cpu(sr)
    iommu = read_iommu(sr)
    addresses = pci.list_addresses(sr, problems)
    namer = _namer(sr, addresses, ids if ids is not None else PciIds.load()) if names else None
    want_config = iommu.state == "available"  # the groups will be predicted
    devices = [pci.read_function(sr, a, want_config, namer) for a in addresses]
    predicted, group_list = _groups(devices, iommu, problems)
    net = links.read_net(sr)
    block = links.read_block(sr)
    devices = _with_relations(devices, predicted, *_users(net, block))
    cmdline_text = sr.read_text(os.path.join(sr.proc, "cmdline"), 8192) or ""
    facts = HostFacts(
        root=sr.root,
        cpu=cpu,
        iommu=iommu,
        devices=tuple(devices),
        groups=tuple(group_list),
        groups_predicted=want_config,
        net=tuple(net),
        block=tuple(block),
        cmdline=tuple(cmdline_text.split()),
        disk_aliases=links.read_disk_aliases(sr),
        driver_modules=_driver_modules(sr, devices),
        problems=tuple(problems),
    )
    log.info(
        "host: %s cpu, IOMMU %s, %d functions, %d groups%s",
        cpu.vendor,
        iommu.state,
        len(devices),
        len(group_list),
        " (predicted)" if want_config else "",
    )
    return facts
