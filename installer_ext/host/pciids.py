"""Vendor and device names: the system's pci.ids (hwdata), or udev's hwdb via pyudev.

Only the ids a host actually has are looked up: the 1.3 MB database is searched with
bytes.find for each needed vendor instead of being parsed, which keeps `detect` fast.
Names come from the machine running the tool (the tree under --root has only sys and
proc), so a fake tree gets the same names as the real host would.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable

log = logging.getLogger(__name__)

ENV_PCI_IDS = "INSTALLER_EXT_PCI_IDS"
PCI_IDS_PATHS = (
    "/usr/share/hwdata/pci.ids",
    "/usr/share/misc/pci.ids",
    "/usr/share/pci.ids",
)
_NEXT_TOP_LINE = re.compile(rb"\n[^\t#\n]")


def find_pci_ids() -> str | None:
    """The pci.ids to use; INSTALLER_EXT_PCI_IDS overrides (empty or `none`: none)."""
    env = os.environ.get(ENV_PCI_IDS)
    if env is not None:
        return None if env in ("", "none") else env
    for path in PCI_IDS_PATHS:
        if os.path.isfile(path):
            return path
    return None


class PciIds:
    """Lookups into a pci.ids database held as bytes."""

    def __init__(self, data: bytes) -> None:
        # A leading newline lets every vendor line be found as b"\nVVVV  ".
        self._data = b"\n" + data
        self._vendor_span: dict[str, tuple[int, int] | None] = {}
        self._devices: dict[tuple[str, str], str | None] = {}

    @classmethod
    def load(cls, path: str | None = None) -> PciIds | None:
        path = path if path is not None else find_pci_ids()
        if path is None:
            return None
        try:
            with open(path, "rb") as f:
                return cls(f.read())
        except OSError as exc:
            log.warning("cannot read %s: %s", path, exc)
            return None

    def _span(self, vendor: str) -> tuple[int, int] | None:
        if vendor in self._vendor_span:
            return self._vendor_span[vendor]
        span = None
        start = self._data.find(b"\n" + vendor.encode() + b"  ")
        if start >= 0:
            m = _NEXT_TOP_LINE.search(self._data, start + 1)
            span = (start + 1, m.start() if m else len(self._data))
        self._vendor_span[vendor] = span
        return span

    @staticmethod
    def _rest_of_line(data: bytes, pos: int) -> str:
        end = data.find(b"\n", pos)
        return data[pos : end if end >= 0 else len(data)].decode("utf-8", "replace").strip()

    def vendor(self, vendor: str) -> str | None:
        span = self._span(vendor)
        if span is None:
            return None
        return self._rest_of_line(self._data, span[0] + 6)

    def device(self, vendor: str, device: str) -> str | None:
        key = (vendor, device)
        if key in self._devices:
            return self._devices[key]
        name = None
        span = self._span(vendor)
        if span is not None:
            pos = self._data.find(b"\n\t" + device.encode() + b"  ", span[0] - 1, span[1])
            if pos >= 0:
                name = self._rest_of_line(self._data, pos + 8)
        self._devices[key] = name
        return name


def udev_names(addresses: Iterable[str]) -> dict[str, tuple[str | None, str | None]]:
    """Names udev's hwdb stored for each device (ID_*_FROM_DATABASE), on a live system."""
    try:
        import pyudev  # imported here: only a real system without pci.ids needs it
    except ImportError:
        return {}
    out: dict[str, tuple[str | None, str | None]] = {}
    try:
        ctx = pyudev.Context()
        for addr in addresses:
            try:
                dev = pyudev.Devices.from_sys_path(ctx, f"/sys/bus/pci/devices/{addr}")
            except Exception:  # noqa: BLE001 - pyudev raises several kinds here
                continue
            props = dev.properties
            out[addr] = (props.get("ID_VENDOR_FROM_DATABASE"), props.get("ID_MODEL_FROM_DATABASE"))
    except Exception as exc:  # noqa: BLE001 - no libudev, no /run/udev: names stay hex
        log.debug("udev names unavailable: %s", exc)
    return out
