"""Step `handover`: what first boot handed to Harvester's pcidevices controller.

Once a device has its PCIDeviceClaim, the controller owns it: it binds it at its start
(pcideviceclaim_controller.go reconcilePCIDeviceClaims -> attemptToEnablePassthrough)
and gives it back to the driver in the PCIDevice annotation when the claim is deleted
(disablePassthrough -> bindDeviceToOriginalDriver, which writes the address to
/sys/bus/pci/drivers/<driver>/bind). Once a PF's SRIOVNetworkDevice asks for its VFs,
the controller owns `sriov_numvfs` (sriovdevice_controller.go reconcileSriovDevice).
Two things follow on the node:

1. The record ROOT/usr/local/lib/installer-ext/controller.json lists the claimed
   devices and the handed-over PFs. The binder reads it at every boot (boot/sriov.py)
   and no longer writes `sriov_numvfs` of those PFs: the controller sets the count its
   object asks for, and a user's later change in Harvester's UI is not fought.
2. `driver_override`: our udev rule and binder set it to vfio-pci so that no host
   driver takes the device first. While it says vfio-pci the kernel lets no other
   driver bind the device (drivers/pci/pci-driver.c pci_match_device: "When
   driver_override is set, only bind to the matching driver"), so the controller's
   bind back to the host driver would fail with ENODEV and the claim would hang in
   deletion. Once vfio-pci holds a claimed device, the override has done its job:
   first boot clears it. (The override is set again at the next boot by the udev
   rule; the binder must clear it after binding too: see docs/firstboot.md.)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from installer_ext import paths
from installer_ext.boot.node import VFIO, Node
from installer_ext.boot.sysio import SysfsIO
from installer_ext.clock import utc_now_iso as now
from installer_ext.fsutil import atomic_write
from installer_ext.host.address import PCI_ADDRESS_RE

log = logging.getLogger(__name__)

RECORD_VERSION = 1


@dataclass
class HandoverRecord:
    devices: dict[str, str] = field(default_factory=dict)  # address -> claim name
    sriov: dict[str, dict[str, Any]] = field(default_factory=dict)  # PF -> {"object", "num_vfs"}

    def to_json(self, node: str) -> dict[str, Any]:
        return {"version": RECORD_VERSION, "node": node, "at": now(),
                "devices": {a: {"claim": c} for a, c in sorted(self.devices.items())},
                "sriov": {a: dict(v) for a, v in sorted(self.sriov.items())}}


def read_record(root: str) -> HandoverRecord:
    """The record, empty when absent or unusable (a warning: the binder then behaves as
    before the handover, which is safe for the devices and at worst sets a VF count the
    controller set too)."""
    path = paths.under(root, paths.CONTROLLER_RECORD_FILE)
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read(4 << 20))
    except FileNotFoundError:
        return HandoverRecord()
    except (OSError, ValueError) as exc:
        log.warning("%s: unusable (%s); nothing counts as handed over", path, exc)
        return HandoverRecord()
    rec = HandoverRecord()
    if not isinstance(doc, dict) or doc.get("version") != RECORD_VERSION:
        log.warning("%s: not a version-%d record; nothing counts as handed over", path, RECORD_VERSION)
        return rec
    for a, v in (doc.get("devices") or {}).items():
        if isinstance(a, str) and PCI_ADDRESS_RE.match(a) and isinstance(v, dict):
            rec.devices[a] = str(v.get("claim") or "")
    for a, v in (doc.get("sriov") or {}).items():
        if isinstance(a, str) and PCI_ADDRESS_RE.match(a) and isinstance(v, dict):
            n = v.get("num_vfs")
            rec.sriov[a] = {"object": str(v.get("object") or ""), "num_vfs": n if isinstance(n, int) else 0}
    return rec


def write_record(root: str, node: str, record: HandoverRecord) -> str:
    path = paths.under(root, paths.CONTROLLER_RECORD_FILE)
    atomic_write(path, json.dumps(record.to_json(node), indent=2, sort_keys=True) + "\n", 0o644)
    return path


def release_overrides(root: str, addresses: list[str], io: SysfsIO | None = None) -> tuple[list[str], list[str]]:
    """Clear driver_override=vfio-pci of the claimed devices vfio-pci holds now.
    Returns (cleared, problems)."""
    node = Node(root, io or SysfsIO())
    cleared, problems = [], []
    for a in sorted(addresses):
        if not PCI_ADDRESS_RE.match(a) or not node.exists(a):
            continue
        try:
            if node.override(a) != VFIO or node.driver(a) != VFIO:
                continue
            node.io.write(node.dev(a, "driver_override"), "\n")
        except (OSError, ValueError) as exc:
            problems.append(f"{a}: driver_override not cleared ({getattr(exc, 'strerror', None) or exc}): "
                            f"Harvester cannot give it back to its host driver until the next boot")
            continue
        cleared.append(a)
    if cleared:
        log.info("driver_override cleared on %s (vfio-pci keeps them; Harvester can now give them back)",
                 ", ".join(cleared))
    for p in problems:
        log.warning("%s", p)
    return cleared, problems
