"""Scan every PCI function under ROOT/sys/bus/pci/devices.

Tuned for hosts with thousands of functions (SR-IOV): one directory listing per
function tells which optional attributes exist, `uevent` gives driver, class and ids in
one read, and the configuration space is read only when the groups must be predicted.
"""

from __future__ import annotations

import logging
import os

from installer_ext.host import config_space
from installer_ext.host.address import PCI_ADDRESS_RE, address_sort_key
from installer_ext.host.model import PciFunction, Sriov
from installer_ext.host.sysfs import SysRoot, parse_int

log = logging.getLogger(__name__)

_HEX4 = frozenset("0123456789abcdef")


def classify(class_id: str | None, vendor_id: str | None = None) -> str:
    """Contract kind of a 6-hex-digit class code."""
    if class_id is None:
        return "other"
    base, sub = class_id[:2], class_id[2:4]
    if base == "03":
        return "gpu"
    if base == "12" and vendor_id in ("10de", "1002", "8086"):
        return "gpu"  # processing accelerators of GPU vendors (compute-only GPUs)
    if base == "02":
        return "nic"
    if base == "01":
        return "storage"
    if base == "0c" and sub == "03":
        return "usb"
    if base == "04" and sub in ("01", "03"):
        return "audio"
    if base == "06":
        return "bridge"
    return "other"


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


def _parse_uevent(text: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if text:
        for line in text.splitlines():
            k, sep, v = line.partition("=")
            if sep:
                out[k] = v
    return out


def _ids_from_uevent(ev: dict[str, str], key: str) -> tuple[str | None, str | None]:
    raw = ev.get(key)
    if not raw or ":" not in raw:
        return None, None
    a, _, b = raw.partition(":")
    return _hex_id(a, 4), _hex_id(b, 4)


def _link_address(link: str | None) -> str | None:
    """Last path component of a sysfs link if it is a PCI address."""
    if not link:
        return None
    name = link.rstrip("/").rsplit("/", 1)[-1]
    return name if PCI_ADDRESS_RE.match(name) else None


def read_function(root: SysRoot, address: str, want_config: bool) -> PciFunction:
    base = os.path.join(root.sys, "bus", "pci", "devices", address)
    unknown: list[str] = []
    try:
        entries = set(os.listdir(base))
    except OSError:
        entries = set()
        unknown.append("directory")

    ev = _parse_uevent(root.read_text(os.path.join(base, "uevent"), 4096))
    vendor_id, device_id = _ids_from_uevent(ev, "PCI_ID")
    if vendor_id is None:
        vendor_id = _hex_id(root.read_text(os.path.join(base, "vendor"), 64), 4)
    if device_id is None:
        device_id = _hex_id(root.read_text(os.path.join(base, "device"), 64), 4)
    class_id = _hex_id(ev.get("PCI_CLASS", "").rjust(6, "0") if "PCI_CLASS" in ev else None, 6)
    if class_id is None:
        class_id = _hex_id(root.read_text(os.path.join(base, "class"), 64), 6)
    sub_vendor, sub_device = _ids_from_uevent(ev, "PCI_SUBSYS_ID")
    if vendor_id is None:
        unknown.append("vendor")
    if device_id is None:
        unknown.append("device")
    if class_id is None:
        unknown.append("class")

    driver = ev.get("DRIVER") or None
    if driver is None and "driver" in entries:
        link = root.readlink(os.path.join(base, "driver"))
        driver = link.rstrip("/").rsplit("/", 1)[-1] if link else None
        if link is None:
            unknown.append("driver")

    group = None
    if "iommu_group" in entries:
        link = root.readlink(os.path.join(base, "iommu_group"))
        group = parse_int(link.rsplit("/", 1)[-1]) if link else None
        if group is None:
            unknown.append("iommu_group")

    boot_vga = False
    if "boot_vga" in entries:
        value = parse_int(root.read_text(os.path.join(base, "boot_vga"), 16))
        if value is None:
            unknown.append("boot_vga")
        boot_vga = value == 1

    sriov = None
    if "sriov_totalvfs" in entries:
        total = parse_int(root.read_text(os.path.join(base, "sriov_totalvfs"), 32))
        num = parse_int(root.read_text(os.path.join(base, "sriov_numvfs"), 32))
        if total is None or num is None:
            unknown.append("sriov")
        else:
            autoprobe = parse_int(root.read_text(os.path.join(base, "sriov_drivers_autoprobe"), 16))
            sriov = Sriov(
                total_vfs=total,
                num_vfs=num,
                offset=parse_int(root.read_text(os.path.join(base, "sriov_offset"), 32)),
                stride=parse_int(root.read_text(os.path.join(base, "sriov_stride"), 32)),
                vf_device_id=_hex_id(root.read_text(os.path.join(base, "sriov_vf_device"), 32), 4),
                drivers_autoprobe=None if autoprobe is None else autoprobe == 1,
            )

    physfn = None
    if "physfn" in entries:
        physfn = _link_address(root.readlink(os.path.join(base, "physfn")))
        if physfn is None:
            unknown.append("physfn")

    reset_methods: tuple[str, ...] = ()
    resettable: bool | None = None
    if "reset_method" in entries:
        text = root.read_text(os.path.join(base, "reset_method"), 256)
        reset_methods = tuple(text.split()) if text else ()
        resettable = bool(reset_methods)
    elif "reset" in entries:
        resettable = True
    elif entries:
        # Kernels >= 5.15 list reset methods; without either file the kernel knows none.
        resettable = False

    # The bus/pci/devices entry links to the device's place in the hierarchy; the
    # component above it is the upstream bridge (absent for a root bus device).
    parent = None
    link = root.readlink(base)
    if link:
        parts = link.rstrip("/").split("/")
        if len(parts) >= 2:
            parent = parts[-2] if PCI_ADDRESS_RE.match(parts[-2]) else None

    info = config_space.UNREADABLE
    if want_config:
        cfg_path = os.path.join(base, "config")
        data = root.read_bytes(cfg_path, 256)
        info = config_space.parse_config(data)
        if info.complete and info.pcie_type is not None and (
            info.multifunction
            or info.pcie_type in (config_space.PCIE_ROOT_PORT, config_space.PCIE_DOWNSTREAM)
        ):
            # ACS only matters for ports and multifunction devices: read the extended
            # space (4 KiB, slow on real hardware) for those alone.
            info = config_space.parse_config(root.read_bytes(cfg_path, 4096))
        if not info.complete:
            unknown.append("config")

    kind = classify(class_id, vendor_id)
    is_bridge = kind == "bridge"
    if info.header_type is not None:
        pci_bridge = info.header_type in (1, 2)
    else:
        pci_bridge = class_id is not None and class_id[:4] in ("0604", "0607", "0609")

    return PciFunction(
        address=address,
        vendor_id=vendor_id,
        device_id=device_id,
        class_id=class_id,
        kind=kind,
        subsystem_vendor_id=sub_vendor,
        subsystem_device_id=sub_device,
        driver=driver,
        iommu_group=group,
        boot_vga=boot_vga,
        sriov=sriov,
        physfn=physfn,
        is_bridge=is_bridge,
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


def scan(root: SysRoot, want_config: bool, problems: list[str]) -> list[PciFunction]:
    devices = [read_function(root, a, want_config) for a in list_addresses(root, problems)]
    by_addr = {d.address: d for d in devices}
    vfs: dict[str, list[str]] = {}
    for d in devices:
        if d.physfn is not None:
            vfs.setdefault(d.physfn, []).append(d.address)
    for pf, children in vfs.items():
        if pf in by_addr:
            by_addr[pf].virtfns = tuple(children)
    log.debug("pci: %d functions", len(devices))
    return devices
