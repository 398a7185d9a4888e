"""Scan every PCI function under ROOT/sys/bus/pci/devices.

Tuned for hosts with thousands of functions (SR-IOV): one directory listing per
function tells which optional attributes exist, `uevent` gives driver, class and ids in
one read, and the configuration space is read only when the groups must be predicted.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import re

from installer_ext.host import config_space
from installer_ext.host.address import PCI_ADDRESS_RE, address_sort_key
from installer_ext.host.model import PciFunction, Sriov
from installer_ext.host.sysfs import SysRoot, parse_int, read_attr, read_link

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


# Local names for the hot loop.
_read = read_attr
_readlink = read_link


def read_function(root: SysRoot, address: str, want_config: bool) -> PciFunction:
    entry = f"{root.sys}/bus/pci/devices/{address}"
    unknown: list[str] = []
    # The bus/pci/devices entry links to the device's place in the hierarchy: the
    # component above it is the upstream bridge (absent on a root bus). Reading through
    # the resolved directory spares the kernel a symlink walk on every attribute.
    parent = None
    link = _readlink(entry)
    if link:
        parts = link.rstrip("/").rsplit("/", 2)
        if len(parts) == 3 and PCI_ADDRESS_RE.match(parts[1]):
            parent = parts[1]
        if link.startswith("../../../devices/") and "/.." not in link:
            base = f"{root.sys}/{link[9:]}"  # the kernel's own form, resolved cheaply
        else:
            base = os.path.normpath(os.path.join(os.path.dirname(entry), link))
            if not base.startswith(root.sys + "/"):
                base = entry  # a link out of the tree: read through the entry as it is
    else:
        base = entry
    # No directory listing (it costs as much as all the reads below): optional
    # attributes are simply tried, and a missing one fails fast with ENOENT.
    uevent = _read(base + "/uevent")
    ev = _parse_uevent(uevent)
    if uevent is None and not os.path.isdir(base):
        unknown.append("directory")
    vendor_id, device_id = _ids_from_uevent(ev, "PCI_ID")
    if vendor_id is None:
        vendor_id = _hex_id(_read(base + "/vendor", 64), 4)
    if device_id is None:
        device_id = _hex_id(_read(base + "/device", 64), 4)
    pci_class = ev.get("PCI_CLASS")
    class_id = pci_class.lower().rjust(6, "0") if pci_class and _CLASS_RE.fullmatch(pci_class.lower()) else None
    if class_id is None:
        class_id = _hex_id(_read(base + "/class", 64), 6)
    sub_vendor, sub_device = _ids_from_uevent(ev, "PCI_SUBSYS_ID")
    if vendor_id is None:
        unknown.append("vendor")
    if device_id is None:
        unknown.append("device")
    if class_id is None:
        unknown.append("class")

    driver = ev.get("DRIVER") or None
    if driver is None and uevent is None:
        link = _readlink(base + "/driver")
        driver = link.rstrip("/").rsplit("/", 1)[-1] if link else None

    group = None
    link = _readlink(base + "/iommu_group")
    if link is not None:
        group = parse_int(link.rsplit("/", 1)[-1])
        if group is None:
            unknown.append("iommu_group")

    boot_vga = False
    if class_id is None or class_id.startswith("03"):
        text = _read(base + "/boot_vga", 16)
        if text is not None:
            value = parse_int(text)
            if value is None:
                unknown.append("boot_vga")
            boot_vga = value == 1

    physfn = None
    link = _readlink(base + "/physfn")
    if link is not None:
        physfn = _link_address(link)
        if physfn is None:
            unknown.append("physfn")

    sriov = None
    # A VF is never a PF: on a host of thousands of VFs this spares one failed open each.
    total_text = _read(base + "/sriov_totalvfs", 32) if physfn is None else None
    if total_text is not None:
        total = parse_int(total_text)
        num = parse_int(_read(base + "/sriov_numvfs", 32))
        if total is None or num is None:
            unknown.append("sriov")
        else:
            autoprobe = parse_int(_read(base + "/sriov_drivers_autoprobe", 16))
            sriov = Sriov(
                total_vfs=total,
                num_vfs=num,
                offset=parse_int(_read(base + "/sriov_offset", 32)),
                stride=parse_int(_read(base + "/sriov_stride", 32)),
                vf_device_id=_vf_device(_read(base + "/sriov_vf_device", 32)),
                drivers_autoprobe=None if autoprobe is None else autoprobe == 1,
            )

    reset_methods: tuple[str, ...] = ()
    resettable: bool | None = None
    text = _read(base + "/reset_method", 256)
    if text is not None:
        reset_methods = tuple(text.split())
        resettable = bool(reset_methods)
    elif os.path.exists(base + "/reset"):
        resettable = True
    elif uevent is not None:
        # Kernels >= 5.15 list reset methods; without either file the kernel knows none.
        resettable = False

    info = config_space.UNREADABLE
    # Bridges' ACS is read even with the IOMMU on: it tells whether VFs created later
    # will be isolated from their PF.
    if want_config or (class_id is not None and class_id.startswith("0604")):
        cfg_path = base + "/config"
        info = config_space.parse_config(root.read_bytes(cfg_path, 256))
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


# Below this many functions a second process costs more than it saves.
PARALLEL_MIN = 1024
_ROW_FIELDS = tuple(f.name for f in dataclasses.fields(PciFunction) if f.name != "blockers")


def _to_row(d: PciFunction) -> tuple:
    row = tuple(getattr(d, name) for name in _ROW_FIELDS)
    return row if d.sriov is None else row + (dataclasses.astuple(d.sriov),)


def _from_row(row: tuple) -> PciFunction:
    d = PciFunction(*row[: len(_ROW_FIELDS)])
    if len(row) > len(_ROW_FIELDS):
        d.sriov = Sriov(*row[-1])
    return d


def _scan_forked(root: SysRoot, addresses: list[str], want_config: bool) -> list[PciFunction]:
    """Read the second half in a forked child while this process reads the first: the
    reads are system calls and small parses, so two cores take about half the time.
    Any trouble with the child and its half is read here instead."""
    half = len(addresses) // 2
    mine, theirs = addresses[:half], addresses[half:]
    try:
        rfd, wfd = os.pipe()
        pid = os.fork()
    except OSError:
        return [read_function(root, a, want_config) for a in addresses]
    if pid == 0:  # the child: read, send plain tuples, leave without cleanup
        code = 1
        try:
            os.close(rfd)
            data = pickle.dumps([_to_row(read_function(root, a, want_config)) for a in theirs], pickle.HIGHEST_PROTOCOL)
            with os.fdopen(wfd, "wb") as out:
                out.write(data)
            code = 0
        finally:
            os._exit(code)
    os.close(wfd)
    devices = [read_function(root, a, want_config) for a in mine]
    with os.fdopen(rfd, "rb") as inp:
        data = inp.read()
    _, status = os.waitpid(pid, 0)
    rows = None
    if status == 0 and data:
        try:
            rows = pickle.loads(data)  # noqa: S301 - our own child's output
        except Exception:  # noqa: BLE001 - fall back to reading the half here
            rows = None
    if rows is None or len(rows) != len(theirs):
        log.debug("pci: parallel reader failed (status %s); reading its half here", status)
        return devices + [read_function(root, a, want_config) for a in theirs]
    return devices + [_from_row(r) for r in rows]


def scan(root: SysRoot, want_config: bool, problems: list[str], workers: int = 1) -> list[PciFunction]:
    """Every PCI function in address order. `workers` 2 reads a big host with two
    processes (only from a single-threaded caller such as the command line)."""
    addresses = list_addresses(root, problems)
    if workers > 1 and len(addresses) >= PARALLEL_MIN and hasattr(os, "fork"):
        devices = _scan_forked(root, addresses, want_config)
    else:
        devices = [read_function(root, a, want_config) for a in addresses]
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
