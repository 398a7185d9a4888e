"""Read every PCI function under ROOT/sys/bus/pci/devices.

Tuned for hosts with thousands of functions (SR-IOV): the function's directory is not
listed (a listing costs as much as all the reads together); `uevent` gives the driver,
class and ids in one read, every optional attribute is simply opened and a missing one
fails fast with ENOENT, and the configuration space is read only where the groups are
predicted or a bridge's ACS matters. One process reads them all: a forked second
reader, measured against it on 4096 functions, gave no gain worth its code
(docs/planner.md, "Reading the host").
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from installer_ext.host import config_space
from installer_ext.host.address import PCI_ADDRESS_RE, address_sort_key
from installer_ext.host.model import PciFunction, Sriov
from installer_ext.host.pciclass import classify, is_display, is_pci_bridge, is_pci_to_pci_bridge
from installer_ext.host.sysfs import SysRoot, parse_int, read_attr, read_link

log = logging.getLogger(__name__)

# (address, vendor id, device id) -> (vendor name, device name), for the names a
# function is reported with (pci.ids or udev's hwdb: see host/pciids.py).
Namer = Callable[[str, "str | None", "str | None"], "tuple[str | None, str | None]"]

_HEX4 = frozenset("0123456789abcdef")


def _hex_id(text: str | None, digits: int) -> str | None:
    """`0x10de\\n` -> `10de`; None unless exactly `digits` hex digits."""
    if text is None:
        return None
    t = text.strip().lower()
    if t.startswith("0x"):
        t = t[2:]
    if len(t) != digits or not set(t) <= _HEX4:
        return None
    return t


def _vf_device(text: str | None) -> str | None:
    """sriov_vf_device is printed with %x: `10` means 0010."""
    value = parse_int(text, 16) if text is not None else None
    if value is None or not 0 <= value <= 0xFFFF:
        return None
    return f"{value:04x}"


_UEVENT_RE = re.compile(r"^(DRIVER|PCI_CLASS|PCI_ID|PCI_SUBSYS_ID)=(.*)$", re.M)
_ID_PAIR_RE = re.compile(r"([0-9a-f]{4}):([0-9a-f]{4})")
_CLASS_RE = re.compile(r"[0-9a-f]{1,6}")


def _parse_uevent(text: str | None) -> dict[str, str]:
    return dict(_UEVENT_RE.findall(text)) if text else {}


def _ids_from_uevent(ev: dict[str, str], key: str) -> tuple[str | None, str | None]:
    raw = ev.get(key)
    if raw:
        m = _ID_PAIR_RE.fullmatch(raw.lower())
        if m:
            return m.group(1), m.group(2)
    return None, None


def _link_address(link: str | None) -> str | None:
    """Last path component of a sysfs link if it is a PCI address."""
    if not link:
        return None
    name = link.rstrip("/").rsplit("/", 1)[-1]
    return name if PCI_ADDRESS_RE.match(name) else None


# Local names for the hot path.
_read = read_attr
_readlink = read_link


def _place(root: SysRoot, entry: str) -> tuple[str, str | None]:
    """(directory to read the attributes from, upstream bridge or None on a root bus).

    The bus/pci/devices entry links to the device's place in the hierarchy: the
    component above it is the upstream bridge. Reading through the resolved directory
    spares the kernel a symlink walk on every attribute."""
    link = _readlink(entry)
    if not link:
        return entry, None
    parts = link.rstrip("/").rsplit("/", 2)
    parent = parts[1] if len(parts) == 3 and PCI_ADDRESS_RE.match(parts[1]) else None
    if link.startswith("../../../devices/") and "/.." not in link:
        return f"{root.sys}/{link[9:]}", parent  # the kernel's own form, resolved cheaply
    base = os.path.normpath(os.path.join(os.path.dirname(entry), link))
    if not base.startswith(root.sys + "/"):
        base = entry  # a link out of the tree: read through the entry as it is
    return base, parent


@dataclass(frozen=True, slots=True)
class _Identity:
    vendor_id: str | None
    device_id: str | None
    class_id: str | None
    subsystem_vendor_id: str | None
    subsystem_device_id: str | None
    driver: str | None


def _identity(base: str, uevent: str | None, unknown: list[str]) -> _Identity:
    """Ids, class and driver: from `uevent` in one read, else the single attributes."""
    ev = _parse_uevent(uevent)
    vendor_id, device_id = _ids_from_uevent(ev, "PCI_ID")
    if vendor_id is None:
        vendor_id = _hex_id(_read(base + "/vendor", 64), 4)
    if device_id is None:
        device_id = _hex_id(_read(base + "/device", 64), 4)
    pci_class = ev.get("PCI_CLASS", "").lower()
    class_id = pci_class.rjust(6, "0") if _CLASS_RE.fullmatch(pci_class) else None
    if class_id is None:
        class_id = _hex_id(_read(base + "/class", 64), 6)
    for name, value in (("vendor", vendor_id), ("device", device_id), ("class", class_id)):
        if value is None:
            unknown.append(name)
    sub_vendor, sub_device = _ids_from_uevent(ev, "PCI_SUBSYS_ID")
    driver = ev.get("DRIVER") or None
    if driver is None and uevent is None:
        link = _readlink(base + "/driver")
        driver = link.rstrip("/").rsplit("/", 1)[-1] if link else None
    return _Identity(vendor_id, device_id, class_id, sub_vendor, sub_device, driver)


def _iommu_group(base: str, unknown: list[str]) -> int | None:
    link = _readlink(base + "/iommu_group")
    if link is None:
        return None  # the IOMMU is off (or absent): no group
    group = parse_int(link.rsplit("/", 1)[-1])
    if group is None:
        unknown.append("iommu_group")
    return group


def _boot_vga(base: str, class_id: str | None, unknown: list[str]) -> bool:
    if class_id is not None and not is_display(class_id):
        return False  # only display controllers have the attribute
    text = _read(base + "/boot_vga", 16)
    if text is None:
        return False
    value = parse_int(text)
    if value is None:
        unknown.append("boot_vga")
    return value == 1


def _physfn(base: str, unknown: list[str]) -> str | None:
    link = _readlink(base + "/physfn")
    if link is None:
        return None
    physfn = _link_address(link)
    if physfn is None:
        unknown.append("physfn")
    return physfn


def _sriov(base: str, unknown: list[str]) -> Sriov | None:
    total_text = _read(base + "/sriov_totalvfs", 32)
    if total_text is None:
        return None
    total = parse_int(total_text)
    num = parse_int(_read(base + "/sriov_numvfs", 32))
    if total is None or num is None:
        unknown.append("sriov")
        return None
    autoprobe = parse_int(_read(base + "/sriov_drivers_autoprobe", 16))
    return Sriov(
        total_vfs=total,
        num_vfs=num,
        offset=parse_int(_read(base + "/sriov_offset", 32)),
        stride=parse_int(_read(base + "/sriov_stride", 32)),
        vf_device_id=_vf_device(_read(base + "/sriov_vf_device", 32)),
        drivers_autoprobe=None if autoprobe is None else autoprobe == 1,
    )


def _reset(base: str, have_uevent: bool) -> tuple[tuple[str, ...], bool | None]:
    """(reset methods, resettable): None when nothing could be read at all."""
    text = _read(base + "/reset_method", 256)
    if text is not None:
        methods = tuple(text.split())
        return methods, bool(methods)
    if os.path.exists(base + "/reset"):
        return (), True
    # Kernels >= 5.15 list reset methods; without either file the kernel knows none.
    return (), (False if have_uevent else None)


def _config(root: SysRoot, base: str, unknown: list[str]) -> config_space.ConfigInfo:
    cfg_path = base + "/config"
    info = config_space.parse_config(root.read_bytes(cfg_path, 256))
    if info.complete and info.pcie_type is not None and (
        info.multifunction or info.pcie_type in (config_space.PCIE_ROOT_PORT, config_space.PCIE_DOWNSTREAM)
    ):
        # ACS only matters for ports and multifunction devices: read the extended
        # space (4 KiB, slow on real hardware) for those alone.
        info = config_space.parse_config(root.read_bytes(cfg_path, 4096))
    if not info.complete:
        unknown.append("config")
    return info


def read_function(root: SysRoot, address: str, want_config: bool, namer: Namer | None = None) -> PciFunction:
    """One function, as sysfs shows it. `want_config` reads the configuration space
    (header type, PCIe type, ACS) that predicting groups needs; a bridge's is read
    always: its ACS tells whether VFs created later will be isolated from their PF."""
    base, parent = _place(root, f"{root.sys}/bus/pci/devices/{address}")
    unknown: list[str] = []
    uevent = _read(base + "/uevent")
    if uevent is None and not os.path.isdir(base):
        unknown.append("directory")
    ident = _identity(base, uevent, unknown)
    iommu_group = _iommu_group(base, unknown)
    boot_vga = _boot_vga(base, ident.class_id, unknown)
    physfn = _physfn(base, unknown)
    # A VF is never a PF: on a host of thousands of VFs this spares one failed open each.
    sriov = _sriov(base, unknown) if physfn is None else None
    reset_methods, resettable = _reset(base, uevent is not None)
    info = config_space.UNREADABLE
    if want_config or is_pci_to_pci_bridge(ident.class_id):
        info = _config(root, base, unknown)
    kind = classify(ident.class_id, ident.vendor_id)
    if info.header_type is not None:
        pci_bridge = info.header_type in (1, 2)
    else:
        pci_bridge = is_pci_bridge(ident.class_id)
    vendor_name, device_name = namer(address, ident.vendor_id, ident.device_id) if namer else (None, None)
    return PciFunction(
        address=address,
        vendor_id=ident.vendor_id,
        device_id=ident.device_id,
        class_id=ident.class_id,
        kind=kind,
        vendor_name=vendor_name,
        device_name=device_name,
        subsystem_vendor_id=ident.subsystem_vendor_id,
        subsystem_device_id=ident.subsystem_device_id,
        driver=ident.driver,
        iommu_group=iommu_group,
        boot_vga=boot_vga,
        sriov=sriov,
        physfn=physfn,
        is_bridge=kind == "bridge",
        pci_bridge=pci_bridge,
        header_type=info.header_type,
        multifunction=info.multifunction,
        pcie_type=info.pcie_type,
        acs=info.acs,
        resettable=resettable,
        reset_methods=reset_methods,
        parent=parent,
        unknown=tuple(unknown),
    )


def list_addresses(root: SysRoot, problems: list[str]) -> list[str]:
    """The function directories' names that are PCI addresses, in address order."""
    bus = os.path.join(root.sys, "bus", "pci", "devices")
    names = root.listdir(bus)
    if not names and not os.path.isdir(bus):
        problems.append(f"{bus}: no PCI bus in this tree")
    good = []
    for name in names:
        if PCI_ADDRESS_RE.match(name):
            good.append(name)
        else:
            problems.append(f"{bus}/{name!r}: not a PCI address, ignored")
    good.sort(key=address_sort_key)
    return good


def virtfns(devices: list[PciFunction]) -> dict[str, tuple[str, ...]]:
    """PF address -> its VFs' addresses, from each VF's `physfn` link."""
    out: dict[str, list[str]] = {}
    for d in devices:
        if d.physfn is not None:
            out.setdefault(d.physfn, []).append(d.address)
    return {pf: tuple(vfs) for pf, vfs in out.items()}
