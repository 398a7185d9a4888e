"""The live machine as the binder sees it: one `Node` per run reads the node's sysfs (and
/proc/cmdline) through `SysfsIO` and builds the paths the binder writes. Per function:
identity (vendor, device, class), bridge or not, boot_vga, the bound driver,
driver_override, IOMMU group and its members, modalias, the SR-IOV attributes and
`virtfnN` links; for the host: whether the IOMMU is on (groups under
/sys/kernel/iommu_groups), the kernel command line, whether a driver is loaded.

Every path is built from an address that matched `PCI_ADDRESS_RE` and from fixed names;
a driver name read from a `driver` link is matched against `DRIVER_NAME_RE` before it
is used in a path. The `driver` link is the truth about binding (the `DRIVER=` line of
`uevent` is what the install-time readers use; both come from the same kernel state).
"""

from __future__ import annotations

import os
import re

from installer_ext.boot.sysio import SysfsIO
from installer_ext.host import pciclass
from installer_ext.host.address import DRIVER_NAME_RE, PCI_ADDRESS_RE

VFIO = "vfio-pci"
# A decimal attribute: sriov_numvfs, sriov_totalvfs, an IOMMU group number.
_INT_RE = re.compile(r"\A[0-9]{1,9}\Z")


class Node:
    """The machine under `root` (`/` on the node)."""

    def __init__(self, root: str, io: SysfsIO) -> None:
        self.root = os.path.abspath(root)
        self.io = io
        self.sys = os.path.join(self.root, "sys")
        self.pci = os.path.join(self.sys, "bus", "pci")

    # --- paths (addresses must already be validated) ---
    def dev(self, address: str, *attr: str) -> str:
        if not PCI_ADDRESS_RE.match(address):
            raise ValueError(f"not a PCI address: {address!r}")
        return os.path.join(self.pci, "devices", address, *attr)

    def driver_dir(self, name: str, *attr: str) -> str:
        if not DRIVER_NAME_RE.match(name):
            raise ValueError(f"not a driver name: {name!r}")
        return os.path.join(self.pci, "drivers", name, *attr)

    @property
    def drivers_probe(self) -> str:
        return os.path.join(self.pci, "drivers_probe")

    # --- reads ---
    def iommu_on(self) -> bool:
        return bool(self.io.listdir(os.path.join(self.sys, "kernel", "iommu_groups")))

    def cmdline(self) -> list[str]:
        text = self.io.read(os.path.join(self.root, "proc", "cmdline"), 65536)
        return text.split() if text else []

    def exists(self, address: str) -> bool:
        return self.io.isdir(self.dev(address))

    def _hex(self, address: str, attr: str, digits: int) -> str | None:
        text = self.io.read(self.dev(address, attr), 64)
        if text is None:
            return None
        t = text.strip().lower()
        t = t[2:] if t.startswith("0x") else t
        try:
            value = int(t, 16)
        except ValueError:
            return None
        return f"{value:0{digits}x}" if value < 16**digits else None

    def ids(self, address: str) -> tuple[str | None, str | None]:
        return self._hex(address, "vendor", 4), self._hex(address, "device", 4)

    def class_id(self, address: str) -> str | None:
        return self._hex(address, "class", 6)

    def is_bridge(self, address: str) -> bool:
        """Any bridge (class 06: host, ISA, PCI-to-PCI, ...), as the planner's `bridge`
        kind: never bound, whatever the plan says."""
        if self.is_pci_bridge(address):
            return True
        cls = self.class_id(address)
        return cls is None or pciclass.is_bridge(cls)

    def is_pci_bridge(self, address: str) -> bool:
        """Header type 1/2 from config space when readable, else the class code."""
        cfg = self.io.read_bytes(self.dev(address, "config"), 64)
        if cfg is not None and len(cfg) >= 0x10 and cfg[0:2] != b"\xff\xff":
            return (cfg[0x0E] & 0x7F) in (1, 2)
        return pciclass.is_pci_bridge(self.class_id(address))

    def boot_vga(self, address: str) -> bool:
        text = self.io.read(self.dev(address, "boot_vga"), 16)
        return text is not None and text.strip() == "1"

    def driver(self, address: str) -> str | None:
        """Name of the bound driver, None when unbound. Raises ValueError when the link
        is there but does not name a driver (a tree that must not be written to)."""
        link = self.io.readlink(self.dev(address, "driver"))
        if link is None:
            return None
        name = link.rstrip("/").rsplit("/", 1)[-1]
        if not DRIVER_NAME_RE.match(name):
            raise ValueError(f"driver link of {address} points to {link!r}")
        return name

    def current_driver(self, address: str) -> str | None:
        """`driver()` for reports: None also when the device or its link is odd."""
        try:
            return self.driver(address) if self.exists(address) else None
        except ValueError:
            return None

    def driver_loaded(self, name: str) -> bool:
        return self.io.isdir(self.driver_dir(name))

    def override(self, address: str) -> str | None:
        """driver_override, None when unset (the kernel shows `(null)`)."""
        text = self.io.read(self.dev(address, "driver_override"), 4096)
        if text is None:
            return None
        value = text.strip()
        return None if value in ("", "(null)") else value

    def group(self, address: str) -> int | None:
        link = self.io.readlink(self.dev(address, "iommu_group"))
        if link is None:
            return None
        name = link.rstrip("/").rsplit("/", 1)[-1]
        return int(name) if _INT_RE.match(name) else None

    def group_members(self, group: int) -> list[str] | None:
        """Entry names of the group (unvalidated: the caller rejects odd names)."""
        names = self.io.listdir(os.path.join(self.sys, "kernel", "iommu_groups", str(group), "devices"))
        return sorted(names) if names is not None else None

    def modalias(self, address: str) -> str | None:
        text = self.io.read(self.dev(address, "modalias"), 256)
        return text.strip() if text else None

    # --- SR-IOV ---
    def _int(self, address: str, attr: str) -> int | None:
        text = self.io.read(self.dev(address, attr), 64)
        if text is None:
            return None
        t = text.strip()
        return int(t) if _INT_RE.match(t) else None

    def sriov_total(self, address: str) -> int | None:
        return self._int(address, "sriov_totalvfs")

    def sriov_num(self, address: str) -> int | None:
        return self._int(address, "sriov_numvfs")

    def sriov_autoprobe(self, address: str) -> int | None:
        return self._int(address, "sriov_drivers_autoprobe")

    def sriov_vf_device(self, address: str) -> str | None:
        return self._hex(address, "sriov_vf_device", 4)

    def virtfn(self, pf: str, index: int) -> str | None:
        """Address of VF `index` of `pf` from the PF's `virtfnN` link."""
        link = self.io.readlink(self.dev(pf, f"virtfn{index}"))
        if link is None:
            return None
        name = link.rstrip("/").rsplit("/", 1)[-1]
        return name if PCI_ADDRESS_RE.match(name) else None
