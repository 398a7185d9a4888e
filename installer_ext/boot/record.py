"""What a bind run leaves behind: the persistent record of previous drivers and the
per-boot status file.

The record (BIND_RECORD_FILE, on the persistent partition) holds, per address and
vendor:device, the driver the device had before installer-ext first bound it: `unbind`
gives it back to that driver. An entry is written once and never holds vfio-pci.

The status file (BIND_STATUS_FILE, under /run: one per boot) is read by `firstboot`;
its keys are a contract:
  {"version": 1, "skipped": bool, "skip_reason": str|null,
   "given_back": null | {"at": str|null, "file": str},
   "devices": [{"address", "vendor_id", "device_id", "status", "reason", "driver",
                "previous_driver"}],
   "sriov": [{"address", "num_vfs", "status", "reason"}]}
A device's status is bound, already-bound, skipped, failed or given-back (`installer-ext
unbind` gave the plan back; boot/givenback.py). `given_back` was added after version 1
first shipped: readers take a missing key as null.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from installer_ext import paths
from installer_ext.boot.node import VFIO
from installer_ext.fsutil import atomic_write
from installer_ext.host.address import PCI_ADDRESS_RE, PCI_ID_RE, address_sort_key, is_driver_name

log = logging.getLogger(__name__)

STATUS_VERSION = 1
RECORD_VERSION = 1

# Device status values.
BOUND = "bound"
ALREADY_BOUND = "already-bound"
SKIPPED = "skipped"
FAILED = "failed"
GIVEN_BACK = "given-back"
# SR-IOV status values.
SRIOV_SET = "set"
SRIOV_UNCHANGED = "unchanged"

DEVICE_OK = (BOUND, ALREADY_BOUND, GIVEN_BACK)
SRIOV_OK = (SRIOV_SET, SRIOV_UNCHANGED)


@dataclass
class DeviceResult:
    address: str
    vendor_id: str
    device_id: str
    status: str
    reason: str | None = None
    driver: str | None = None
    previous_driver: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "vendor_id": self.vendor_id,
            "device_id": self.device_id,
            "status": self.status,
            "reason": self.reason,
            "driver": self.driver,
            "previous_driver": self.previous_driver,
        }


@dataclass
class SriovResult:
    address: str
    num_vfs: int
    status: str
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "num_vfs": self.num_vfs, "status": self.status, "reason": self.reason}


@dataclass
class BindStatus:
    skipped: bool = False
    skip_reason: str | None = None
    devices: list[DeviceResult] = field(default_factory=list)
    sriov: list[SriovResult] = field(default_factory=list)
    given_back: dict[str, str | None] | None = None  # {"at", "file"} while given back

    @property
    def ok(self) -> bool:
        return all(d.status in DEVICE_OK for d in self.devices) and all(s.status in SRIOV_OK for s in self.sriov)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATUS_VERSION,
            "skipped": self.skipped,
            "skip_reason": self.skip_reason,
            "given_back": self.given_back,
            "devices": [d.to_json() for d in sorted(self.devices, key=lambda d: address_sort_key(d.address))],
            "sriov": [s.to_json() for s in sorted(self.sriov, key=lambda s: address_sort_key(s.address))],
        }


def write_status(root: str, status: BindStatus) -> str:
    path = paths.under(root, paths.BIND_STATUS_FILE)
    atomic_write(path, json.dumps(status.to_json(), indent=2, sort_keys=True) + "\n")
    return path


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def read_status(root: str) -> BindStatus | None:
    """This boot's status file, or None when absent or not a version-1 status. Only
    entries with a valid address are kept (the caller merges into it)."""
    path = paths.under(root, paths.BIND_STATUS_FILE)
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read(16 << 20))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != STATUS_VERSION:
        return None
    out = BindStatus(bool(data.get("skipped")), _opt_str(data.get("skip_reason")))
    gb = data.get("given_back")
    if isinstance(gb, dict):
        out.given_back = {"at": _opt_str(gb.get("at")), "file": _opt_str(gb.get("file"))}
    for d in data.get("devices") or []:
        if isinstance(d, dict) and isinstance(d.get("address"), str) and PCI_ADDRESS_RE.match(d["address"]):
            out.devices.append(
                DeviceResult(
                    d["address"], str(d.get("vendor_id", "")), str(d.get("device_id", "")),
                    str(d.get("status", FAILED)), _opt_str(d.get("reason")),
                    _opt_str(d.get("driver")), _opt_str(d.get("previous_driver")),
                )
            )
    for s in data.get("sriov") or []:
        if isinstance(s, dict) and isinstance(s.get("address"), str) and PCI_ADDRESS_RE.match(s["address"]):
            n = s.get("num_vfs")
            out.sriov.append(
                SriovResult(s["address"], n if isinstance(n, int) else 0, str(s.get("status", "failed")), _opt_str(s.get("reason")))
            )
    return out


@dataclass(frozen=True)
class Previous:
    """The driver a device had before its first bind. `source`: `observed` (bound when
    the binder first saw it), `plan` (vfio-pci had it already; the install-time driver
    from the plan), `none` (no driver seen and none in the plan)."""

    vendor_id: str
    device_id: str
    driver: str | None
    source: str

    def to_json(self) -> dict[str, Any]:
        return {"vendor_id": self.vendor_id, "device_id": self.device_id, "previous_driver": self.driver, "source": self.source}


class Record:
    """The persistent record file; `save()` writes only when an entry was added."""

    def __init__(self, root: str) -> None:
        self.path = paths.under(root, paths.BIND_RECORD_FILE)
        self.entries: dict[str, Previous] = {}
        self.dirty = False
        self._load()

    def _load(self) -> None:
        try:
            with open(self.path, "rb") as f:
                data = json.loads(f.read(16 << 20))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable (%s); previous drivers recorded there are lost", self.path, exc)
            return
        devices = data.get("devices") if isinstance(data, dict) else None
        if not isinstance(devices, dict):
            log.warning("%s: no devices map; ignored", self.path)
            return
        for address, e in devices.items():
            if not (isinstance(address, str) and PCI_ADDRESS_RE.match(address) and isinstance(e, dict)):
                log.warning("%s: entry %r ignored", self.path, address)
                continue
            vid, did, drv = e.get("vendor_id"), e.get("device_id"), e.get("previous_driver")
            if not (isinstance(vid, str) and PCI_ID_RE.match(vid) and isinstance(did, str) and PCI_ID_RE.match(did)):
                log.warning("%s: entry %s has bad ids; ignored", self.path, address)
                continue
            if drv is not None and (not is_driver_name(drv) or drv == VFIO):
                log.warning("%s: entry %s has bad driver %r; ignored", self.path, address, drv)
                continue
            self.entries[address] = Previous(vid, did, drv, str(e.get("source", "observed")))

    def get(self, address: str, vendor_id: str, device_id: str) -> Previous | None:
        """The entry for this address, only if it was made for the same device."""
        e = self.entries.get(address)
        if e is None or (e.vendor_id, e.device_id) != (vendor_id, device_id):
            return None
        return e

    def remember(self, address: str, vendor_id: str, device_id: str, current: str | None, planned: str | None) -> Previous:
        """Record the previous driver unless this device already has one recorded. An
        entry without a driver (none seen yet, e.g. the binder ran before udev loaded the
        native module) is replaced once a real host driver is seen."""
        e = self.get(address, vendor_id, device_id)
        if e is not None and (e.driver is not None or current is None or current == VFIO):
            return e
        if current is not None and current != VFIO:
            e = Previous(vendor_id, device_id, current, "observed")
        elif planned is not None and planned != VFIO:
            e = Previous(vendor_id, device_id, planned, "plan")
        else:
            e = Previous(vendor_id, device_id, None, "none")
        self.entries[address] = e
        self.dirty = True
        return e

    def save(self) -> None:
        """Write the record atomically if an entry was added. Raises OSError."""
        if not self.dirty:
            return
        data = {
            "version": RECORD_VERSION,
            "devices": {a: self.entries[a].to_json() for a in sorted(self.entries, key=address_sort_key)},
        }
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        atomic_write(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n")
        self.dirty = False
