"""Step 4: a PCIDeviceClaim for every device the binder bound to vfio-pci.

Why: the pcidevices controller, when it starts, unbinds every vfio-pci device of its
node that no claim owns. What the controller expects (harvester/pcidevices):
- the claim's name is the PCIDevice's name, `<node>-<address without : and .>`; the
  claim webhook rejects a claim whose PCIDevice does not exist (or has no IOMMU group);
- `ownerReferences[0]` is that PCIDevice (apiVersion, kind, name, uid): the controller
  finds the device through it, and a claim without it does not count as claiming;
- spec `address` (full form), `nodeName`, `userName`; label `nodename=<node>` (the
  controller lists a node's claims by it).
So the PCIDevice objects must exist first: the controller creates them once the addon
runs. We wait for them (bounded), claim what is there, and report what is missing
(the step fails; the rerun claims the rest). An existing claim with our name and the
same address and node is left alone; one that differs is reported, never overwritten.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from installer_ext.firstboot.inputs import BoundDevice
from installer_ext.firstboot.objects import CLAIM_USER, PCIDEVICECLAIMS, PCIDEVICES, pcidevice_name
from installer_ext.kube.backoff import Backoff, Clock, Deadline, poll
from installer_ext.kube.client import KubeClient
from installer_ext.kube.errors import ApiError

log = logging.getLogger(__name__)


@dataclass
class ClaimsOutcome:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # "name: why"
    missing: list[str] = field(default_factory=list)  # PCIDevice never appeared

    def to_json(self) -> dict[str, Any]:
        return {"created": self.created, "existing": self.existing, "conflicts": self.conflicts, "missing": self.missing}


def claim_object(node: str, device: BoundDevice, pcidevice: dict[str, Any]) -> dict[str, Any]:
    name = pcidevice["metadata"]["name"]
    return {
        "apiVersion": PCIDEVICECLAIMS.api_version,
        "kind": PCIDEVICECLAIMS.kind,
        "metadata": {
            "name": name,
            "labels": {"nodename": node},
            "ownerReferences": [
                {
                    "apiVersion": PCIDEVICES.api_version,
                    "kind": PCIDEVICES.kind,
                    "name": name,
                    "uid": pcidevice["metadata"]["uid"],
                }
            ],
        },
        "spec": {"address": device.address, "nodeName": node, "userName": CLAIM_USER},
    }


def _same(claim: dict[str, Any], node: str, address: str) -> bool:
    spec = claim.get("spec") or {}
    return spec.get("address") == address and spec.get("nodeName") == node


def ensure_claims(
    client: KubeClient,
    node: str,
    devices: list[BoundDevice],
    deadline: Deadline,
    backoff: Backoff,
    clock: Clock,
) -> ClaimsOutcome:
    wanted = {pcidevice_name(node, d.address): d for d in devices}
    found: dict[str, dict[str, Any]] = {}

    def check() -> tuple[bool, str]:
        try:
            items = client.list(PCIDEVICES)
        except ApiError as exc:
            if exc.not_found:
                return False, "pcidevices API not served yet (pcidevices-controller addon starting)"
            raise
        found.clear()
        found.update({o["metadata"]["name"]: o for o in items if o["metadata"]["name"] in wanted})
        missing = sorted(set(wanted) - set(found))
        if missing:
            return False, f"{len(missing)} of {len(wanted)} PCIDevice objects not listed yet (first: {missing[0]})"
        return True, ""

    done, why, _ = poll(check, deadline, backoff, clock, f"waiting for the PCIDevices of {node}", log)
    if not done:
        log.warning("gave up waiting for the PCIDevices of %s: %s", node, why)
    outcome = ClaimsOutcome(missing=sorted(set(wanted) - set(found)))
    if not found:
        return outcome
    claims = {o["metadata"]["name"]: o for o in client.list(PCIDEVICECLAIMS)}
    for name in sorted(found):
        device, pcidevice = wanted[name], found[name]
        status = pcidevice.get("status") or {}
        if status.get("address") not in (None, device.address) or status.get("nodeName") not in (None, node):
            outcome.conflicts.append(f"{name}: PCIDevice is {status.get('nodeName')}/{status.get('address')}")
            continue
        existing = claims.get(name)
        if existing is None:
            try:
                client.create(PCIDEVICECLAIMS, claim_object(node, device, pcidevice))
                outcome.created.append(name)
                continue
            except ApiError as exc:
                if not exc.already_exists:
                    raise
                existing = client.get(PCIDEVICECLAIMS, name)
                if existing is None:  # created and deleted meanwhile: the rerun decides
                    outcome.missing.append(name)
                    continue
        if _same(existing, node, device.address):
            outcome.existing.append(name)
        else:
            spec = existing.get("spec") or {}
            outcome.conflicts.append(f"{name}: claim exists for {spec.get('nodeName')}/{spec.get('address')}")
    for c in outcome.conflicts:
        log.warning("claim %s; left alone", c)
    log.info("claims on %s: %d created, %d already there, %d conflicting, %d without PCIDevice",
             node, len(outcome.created), len(outcome.existing), len(outcome.conflicts), len(outcome.missing))
    return outcome
