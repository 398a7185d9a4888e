"""Gather every host fact under a root into one `HostFacts` snapshot."""

from __future__ import annotations

import logging
import os

from installer_ext.host import blockers, groups, links, pci
from installer_ext.host.cpu import read_cpu
from installer_ext.host.iommu import read_iommu
from installer_ext.host.model import HostFacts
from installer_ext.host.pciids import PciIds, udev_names
from installer_ext.host.sysfs import SysRoot

log = logging.getLogger(__name__)


def _name_devices(facts: HostFacts, ids: PciIds | None) -> None:
    if ids is None:
        if facts.root != "/":
            return
        # A live system without hwdata: udev's hwdb has the names.
        names = udev_names(d.address for d in facts.devices)
        for d in facts.devices:
            d.vendor_name, d.device_name = names.get(d.address, (None, None))
        return
    for d in facts.devices:
        if d.vendor_id:
            d.vendor_name = ids.vendor(d.vendor_id)
            if d.device_id:
                d.device_name = ids.device(d.vendor_id, d.device_id)


def gather(
    root: str | os.PathLike = "/", names: bool = True, ids: PciIds | None = None, workers: int = 1
) -> HostFacts:
    """Read the machine under `root`. Never raises for a broken tree: what cannot be
    read is reported in `problems` and in each device's `unknown`. `workers` > 1 reads
    a big host with a forked helper process: single-threaded callers only."""
    sr = SysRoot(root)
    problems: list[str] = []
    cpu = read_cpu(sr)
    iommu = read_iommu(sr)
    predict = iommu.state == "available"
    devices = pci.scan(sr, want_config=predict, problems=problems, workers=workers)

    if iommu.state == "enabled":
        group_list = groups.real_groups(devices)
        missing = [d.address for d in devices if d.iommu_group is None]
        if missing:
            problems.append(f"IOMMU on but no group for {', '.join(missing[:8])}" + (" ..." if len(missing) > 8 else ""))
    elif predict:
        group_list = groups.predict_groups(devices)
    else:
        group_list = []

    net = links.read_net(sr)
    block = links.read_block(sr)
    for_dev: dict[str, list[str]] = {}
    for n in net:
        if n.address:
            for_dev.setdefault(n.address, []).append(n.name)
    blk_dev: dict[str, list[str]] = {}
    for b in block:
        if b.disk is None:  # whole disks only; partitions follow their disk
            for c in b.controllers:
                blk_dev.setdefault(c, []).append(b.name)
    for d in devices:
        d.net_interfaces = tuple(for_dev.get(d.address, ()))
        d.block_devices = tuple(blk_dev.get(d.address, ()))

    driver_modules = {}
    for drv in sorted({d.driver for d in devices if d.driver}):
        link = sr.readlink(os.path.join(sr.sys, "bus", "pci", "drivers", drv, "module"))
        if link:
            driver_modules[drv] = link.rstrip("/").rsplit("/", 1)[-1]

    cmdline_text = sr.read_text(os.path.join(sr.proc, "cmdline"), 8192) or ""
    facts = HostFacts(
        root=sr.root,
        cpu=cpu,
        iommu=iommu,
        devices=devices,
        groups=group_list,
        groups_predicted=predict,
        net=net,
        block=block,
        cmdline=tuple(cmdline_text.split()),
        disk_aliases=links.read_disk_aliases(sr),
        driver_modules=driver_modules,
        problems=problems,
    )
    if names:
        _name_devices(facts, ids if ids is not None else PciIds.load())

    seeds = {d.address: blockers.intrinsic(d, iommu) for d in devices}
    for addr, bs in blockers.spread(devices, seeds, facts.group_members).items():
        facts.device(addr).blockers = bs
    log.info(
        "host: %s cpu, IOMMU %s, %d functions, %d groups%s",
        cpu.vendor,
        iommu.state,
        len(devices),
        len(group_list),
        " (predicted)" if predict else "",
    )
    return facts
