"""SR-IOV through the pcidevices controller's SRIOVNetworkDevice objects.

What the controller does (harvester/pcidevices, master @bdd8025):
- on every node reconcile (pkg/controller/nodes/node_controller.go reconcileNodeDevices,
  every 30 s) it creates an SRIOVNetworkDevice `<node>-<ifname>` (lowercased), label
  `nodename=<node>`, spec `{address: <PF>, nodeName, numVFs: 0}`, for every SR-IOV
  capable NIC that is not the management NIC (a port of mgmt-br / mgmt-bo) or a VLAN
  config uplink (pkg/util/nichelper/helper.go GenerateSRIOVNics, generateSRIOVDev);
- it keeps the PF's `sriov_numvfs` equal to `spec.numVFs`
  (pkg/controller/sriovdevice/sriovdevice_controller.go reconcileSriovDevice:
  ensureDeviceIsDisabled writes 0 whenever spec says 0, ensureDeviceIsConfigured writes
  the count) and lists the VFs in `status.vfAddresses` / `status.vfPCIDevices`.
So VFs our binder created are set back to 0 unless the object asks for them. We set
`spec.numVFs` to the plan's count on that object (only when it says 0: another count is
someone's choice and is reported, not overwritten) and let the controller create the
VFs; the VFs meant for VMs are claimed once the object's status lists them and their
PCIDevices exist. From then on the controller owns `sriov_numvfs`: the node's binder
stops writing it for that PF (boot/sriov.py reads the handover record).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from installer_ext.firstboot.objects import NODE_LABEL, SRIOVNETWORKDEVICES
from installer_ext.firstboot.request import SriovRequest
from installer_ext.host.address import PCI_ADDRESS_RE
from installer_ext.kube.backoff import Backoff, Clock, Deadline, poll
from installer_ext.kube.client import KubeClient
from installer_ext.kube.errors import ApiError

log = logging.getLogger(__name__)

# v1beta1.DeviceEnabled (pkg/apis/devices.harvesterhci.io/v1beta1/sriovnetworkdevice.go)
ENABLED = "sriovNetworkDeviceEnabled"

READY, SET, CONFLICT, MISSING, WAITING = "ready", "set", "conflict", "missing", "waiting"


@dataclass
class SriovOutcome:
    address: str
    num_vfs: int
    status: str  # ready | set (patched now, VFs listed) | conflict | missing | waiting
    object: str | None = None
    vfs: list[str] = field(default_factory=list)
    reason: str = ""

    @property
    def usable(self) -> bool:
        return self.status in (READY, SET)

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "numVFs": self.num_vfs, "status": self.status, "object": self.object,
                "vfs": self.vfs, "reason": self.reason}


def _for_pf(items: list[dict[str, Any]], node: str, pf: str) -> dict[str, Any] | None:
    for o in items:
        spec = o.get("spec") or {}
        if spec.get("address") == pf and spec.get("nodeName") == node:
            return o
    return None


def _vfs(obj: dict[str, Any]) -> list[str]:
    status = obj.get("status") or {}
    if status.get("status") != ENABLED:
        return []
    return [a for a in status.get("vfAddresses") or [] if isinstance(a, str) and PCI_ADDRESS_RE.match(a)]


def ensure_sriov(client: KubeClient, node: str, want: SriovRequest, deadline: Deadline, backoff: Backoff,
                 clock: Clock) -> SriovOutcome:
    out = SriovOutcome(want.address, want.num_vfs, WAITING)
    patched = {"done": False}

    def check() -> tuple[bool, str]:
        try:
            items = client.list(SRIOVNETWORKDEVICES, label_selector=f"{NODE_LABEL}={node}")
        except ApiError as exc:
            if exc.not_found:
                out.status = WAITING
                return False, "sriovnetworkdevices API not served yet (pcidevices-controller addon starting)"
            raise
        obj = _for_pf(items, node, want.address)
        if obj is None:
            out.status = MISSING
            return False, (f"no SRIOVNetworkDevice for {want.address} on {node} yet (the controller makes one per "
                           f"SR-IOV NIC that is not the management NIC or a VLAN uplink)")
        out.object = obj["metadata"]["name"]
        count = (obj.get("spec") or {}).get("numVFs")
        if count != want.num_vfs:
            if count not in (0, None):
                out.status = CONFLICT
                out.reason = f"{out.object} asks for {count} VFs, the plan for {want.num_vfs}: left as it is"
                return True, out.reason
            client.merge_patch(SRIOVNETWORKDEVICES, out.object, {"spec": {"numVFs": want.num_vfs}})
            patched["done"] = True
            log.info("sriovnetworkdevice %s: numVFs 0 -> %d (the controller creates the VFs)", out.object,
                     want.num_vfs)
            out.status = WAITING
            return False, f"{out.object}: numVFs set to {want.num_vfs}, waiting for the controller to create the VFs"
        vfs = _vfs(obj)
        if len(vfs) != want.num_vfs:
            out.status = WAITING
            return False, f"{out.object}: {len(vfs)} of {want.num_vfs} VFs listed in its status"
        out.vfs = sorted(vfs)
        out.status = SET if patched["done"] else READY
        return True, ""

    done, why, _ = poll(check, deadline, backoff, clock, f"waiting for the VFs of {want.address} on {node}", log)
    if not done:
        out.reason = why
    return out
