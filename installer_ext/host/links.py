"""Which PCI function carries each network interface and each block device.

Resolved from the kernel's own links: ROOT/sys/class/net/NAME and
ROOT/sys/class/block/NAME point into the device hierarchy, and the last PCI address on
that path is the function (a disk behind AHCI, SAS or an NVMe controller; a NIC port).
NVMe namespaces with native multipath live under devices/virtual/nvme-subsystem: their
controllers are found through ROOT/sys/class/nvme-subsystem.
"""

from __future__ import annotations

import logging
import os
import re

from installer_ext.host.address import PCI_ADDRESS_RE
from installer_ext.host.model import BlockDevice, NetInterface
from installer_ext.host.sysfs import SysRoot

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"\A[A-Za-z0-9_.:@-]{1,64}\Z")
_NVME_CTRL_RE = re.compile(r"\Anvme\d+\Z")
_MAC_RE = re.compile(r"\A[0-9a-f]{2}(:[0-9a-f]{2}){5,19}\Z")


def pci_of_path(path: str | None) -> str | None:
    """The last PCI address component of a sysfs device path."""
    if not path:
        return None
    found = None
    for part in path.split("/"):
        if PCI_ADDRESS_RE.match(part):
            found = part
    return found


def read_net(root: SysRoot) -> list[NetInterface]:
    base = os.path.join(root.sys, "class", "net")
    out = []
    for name in sorted(root.listdir(base)):
        if not _NAME_RE.match(name):
            continue
        link = root.readlink(os.path.join(base, name))
        address = pci_of_path(link)
        mac = root.read_text(os.path.join(base, name, "address"), 128)
        mac = mac.strip().lower() if mac else None
        state = root.read_text(os.path.join(base, name, "operstate"), 64)
        state = state.strip() if state else None
        out.append(
            NetInterface(name, address, mac if mac and _MAC_RE.match(mac) else None, state if state else None)
        )
    return out


def _nvme_subsystem_controllers(root: SysRoot, link: str) -> tuple[str, ...]:
    parts = link.split("/")
    try:
        subsys = parts[parts.index("nvme-subsystem") + 1]
    except (ValueError, IndexError):
        return ()
    base = os.path.join(root.sys, "class", "nvme-subsystem", subsys)
    ctrls = []
    for entry in sorted(root.listdir(base)):
        if _NVME_CTRL_RE.match(entry):
            addr = pci_of_path(root.readlink(os.path.join(base, entry)))
            if addr is None:
                # The controller entry may be a directory symlink resolved elsewhere.
                addr = pci_of_path(os.path.realpath(os.path.join(base, entry)))
            if addr:
                ctrls.append(addr)
    return tuple(dict.fromkeys(ctrls))


def read_block(root: SysRoot) -> list[BlockDevice]:
    base = os.path.join(root.sys, "class", "block")
    links = {}
    for name in sorted(root.listdir(base)):
        if _NAME_RE.match(name):
            link = root.readlink(os.path.join(base, name))
            if link is not None:
                links[name] = link.rstrip("/").split("/")
    out = []
    for name, parts in links.items():
        # A partition's directory sits inside its disk's: .../block/sda/sda1,
        # .../nvme/nvme0/nvme0n1/nvme0n1p1.
        disk = parts[-2] if len(parts) >= 2 and parts[-2] in links else None
        if "nvme-subsystem" in parts:
            ctrls = _nvme_subsystem_controllers(root, "/".join(parts))
        else:
            addr = pci_of_path("/".join(parts))
            ctrls = (addr,) if addr else ()
        out.append(BlockDevice(name, ctrls, disk))
    return out


def read_disk_aliases(root: SysRoot) -> dict[str, str]:
    """`/dev/disk/by-id/...` style names -> block device name, from ROOT/dev/disk."""
    out: dict[str, str] = {}
    base = os.path.join(root.root, "dev", "disk")
    for kind in sorted(root.listdir(base)):
        if not kind.startswith("by-"):
            continue
        for name in sorted(root.listdir(os.path.join(base, kind))):
            link = root.readlink(os.path.join(base, kind, name))
            if link:
                target = link.rstrip("/").rsplit("/", 1)[-1]
                if _NAME_RE.match(target):
                    out[f"/dev/disk/{kind}/{name}"] = target
    return out
