"""Blockers that come from the install config: the management NIC(s) and the
controllers of the install and data disks, resolved through the host's own links."""

from __future__ import annotations

from installer_ext.config.model import InstallInfo
from installer_ext.errors import BadInput
from installer_ext.host.model import HostFacts
from installer_ext.plan import reasons as rs
from installer_ext.plan.reasons import Blocker


def _disk_name(facts: HostFacts, device: str, path: str) -> str:
    """`/dev/sda`, `/dev/sda2`, `/dev/disk/by-id/...` -> the whole disk's name."""
    if device in facts.disk_aliases:
        name = facts.disk_aliases[device]
    elif device.startswith("/dev/") and "/" not in device[5:]:
        name = device[5:]
    else:
        known = ", ".join(sorted(f"/dev/{b.name}" for b in facts.block if b.disk is None)) or "none"
        raise BadInput(f"{path}: {device!r} is not a disk this host knows (disks: {known})")
    by_name = {b.name: b for b in facts.block}
    blk = by_name.get(name)
    if blk is None:
        known = ", ".join(sorted(f"/dev/{b.name}" for b in facts.block if b.disk is None)) or "none"
        raise BadInput(f"{path}: no disk {device} on this host (disks: {known})")
    while blk.disk is not None and blk.disk in by_name:
        blk = by_name[blk.disk]
    return blk.name


def install_blockers(facts: HostFacts, install: InstallInfo) -> dict[str, list[Blocker]]:
    """Address -> blockers for the management NICs and the disks' controllers."""
    out: dict[str, list[Blocker]] = {}

    def add(address: str, blocker: Blocker) -> None:
        out.setdefault(address, []).append(blocker)

    if not install.known:
        return out

    for iface in install.management:
        match = None
        for n in facts.net:
            if (iface.name and n.name == iface.name) or (iface.hw_addr and n.mac == iface.hw_addr):
                match = n
                break
        if match is None:
            have = ", ".join(n.name for n in facts.net if n.address) or "none"
            what = iface.name or iface.hw_addr
            key = "name" if iface.name else "hwAddr"
            raise BadInput(f"{iface.path}.{key}: no network interface {what} on this host (PCI interfaces: {have})")
        if match.address is None:
            # A virtual interface (bond, bridge): its ports are listed separately.
            continue
        add(match.address, Blocker(rs.BLOCK_MGMT_NIC, f"management network {match.name}", subject=match.name))

    disks = [(install.device, "install.device", rs.BLOCK_INSTALL_DISK, "install disk")]
    if install.data_disk and install.data_disk != install.device:
        disks.append((install.data_disk, "install.dataDisk", rs.BLOCK_DATA_DISK, "data disk"))
    by_name = {b.name: b for b in facts.block}
    for device, path, code, words in disks:
        if not device:
            continue
        name = _disk_name(facts, device, path)
        ctrls = by_name[name].controllers
        for c in ctrls:
            add(c, Blocker(code, f"controller of {words} /dev/{name}", subject=name))
    return out


def unknown_install(facts: HostFacts, install: InstallInfo) -> dict[str, list[Blocker]]:
    """Before the installer has asked for the disk and the network (no `install`
    section), any controller holding a disk may hold the install disk and any NIC with
    a link may become the management network: block them rather than guess."""
    out: dict[str, list[Blocker]] = {}
    if not install.known or not install.management:
        for n in facts.net:
            if n.address and n.operstate not in ("down", "lowerlayerdown", "notpresent"):
                out.setdefault(n.address, []).append(
                    Blocker(
                        rs.BLOCK_MGMT_NIC,
                        f"{n.name} has a link and may become the management network (not chosen yet)",
                        subject=n.name,
                        tentative=True,
                    )
                )
    if install.known and install.device:
        return out
    for b in facts.block:
        if b.disk is None:
            for c in b.controllers:
                out.setdefault(c, []).append(
                    Blocker(
                        rs.BLOCK_INSTALL_DISK,
                        f"holds /dev/{b.name}, which may be the install disk (install.device not known yet)",
                        subject=b.name,
                        tentative=True,
                    )
                )
    return out
