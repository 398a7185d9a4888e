"""PCIDeviceClaims for a node's devices, and the driver the controller will give back.

What the pcidevices controller expects (harvester/pcidevices, master @bdd8025):
- the claim's name is the PCIDevice's name, `<node>-<address without : and .>`
  (v1beta1.PCIDeviceNameForHostname); the claim webhook looks the PCIDevice up under the
  claim's own name and refuses it when that PCIDevice does not exist or has no IOMMU
  group (pkg/webhook/pcideviceclaim.go Create). So we wait, bounded, until every
  device's PCIDevice is listed with an IOMMU group, and claim only those;
- `ownerReferences[0]` is that PCIDevice (apiVersion, kind, name, uid): the controller
  finds the device through it (pcideviceclaim_controller.go getPCIDeviceForClaim), and
  `unbindOrphanedPCIDevices` counts a device as claimed only through it
  (pciDeviceIsClaimed);
- spec `address` (full form), `nodeName`, `userName`; label `nodename=<node>` (the
  controller lists a node's claims by it in OnDeviceChange).
An existing claim with our name and the same address and node is left alone; one that
differs is reported, never overwritten.

The driver to give back: the controller records the driver a device had in the
PCIDevice annotation `harvesterhci.io/pcideviceDriver` when it first creates the
PCIDevice (v1beta1.NewPCIDeviceForHostname) and binds the device back to it when the
claim is deleted (disablePassthrough -> bindDeviceToOriginalDriver). Our binder ran
before the controller, so the controller saw `vfio-pci`. We set the annotation to the
driver our binder recorded before it bound the device ("" when it had none, which the
controller reads as "leave it unbound"), but only where the annotation says vfio-pci
or nothing: a host driver the controller saw itself is kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from installer_ext.firstboot.objects import (
    CLAIM_USER,
    NODE_LABEL,
    PCIDEVICE_DRIVER_ANNOTATION,
    PCIDEVICECLAIMS,
    PCIDEVICES,
    pcidevice_name,
)
from installer_ext.kube.backoff import Backoff, Clock, Deadline, poll
from installer_ext.kube.client import KubeClient
from installer_ext.kube.errors import ApiError

log = logging.getLogger(__name__)

VFIO = "vfio-pci"


@dataclass
class ClaimsOutcome:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # "name: why"
    missing: list[str] = field(default_factory=list)  # PCIDevice never listed (with a group)
    drivers: dict[str, str] = field(default_factory=dict)  # name -> annotation set

    def claimed(self, names: dict[str, str]) -> list[str]:
        """Addresses whose claim is there (created now or before)."""
        return sorted(names[n] for n in self.created + self.existing)

    def to_json(self) -> dict[str, Any]:
        return {"created": self.created, "existing": self.existing, "conflicts": self.conflicts,
                "missing": self.missing, "drivers": self.drivers}


def list_node_pcidevices(client: KubeClient, node: str) -> dict[str, dict[str, Any]] | None:
    """The node's PCIDevices by name; None while the pcidevices API is not served."""
    try:
        items = client.list(PCIDEVICES, label_selector=f"{NODE_LABEL}={node}")
    except ApiError as exc:
        if exc.not_found:
            return None
        raise
    return {o["metadata"]["name"]: o for o in items}


def wait_pcidevices(client: KubeClient, node: str, addresses: list[str], deadline: Deadline, backoff: Backoff,
                    clock: Clock) -> tuple[dict[str, dict[str, Any]], str]:
    """The PCIDevices of `addresses` that are listed with an IOMMU group once all are, or
    when the wait ends; and the last reason for waiting."""
    wanted = {pcidevice_name(node, a): a for a in addresses}
    found: dict[str, dict[str, Any]] = {}

    def check() -> tuple[bool, str]:
        listed = list_node_pcidevices(client, node)
        if listed is None:
            return False, "pcidevices API not served yet (pcidevices-controller addon starting)"
        found.clear()
        found.update({n: o for n, o in listed.items() if n in wanted and (o.get("status") or {}).get("iommuGroup")})
        missing = sorted(set(wanted) - set(found))
        if missing:
            return False, f"{len(missing)} of {len(wanted)} PCIDevices of {node} not listed with an IOMMU group yet " \
                          f"(first: {missing[0]})"
        return True, ""

    if not wanted:
        return {}, ""
    done, why, _ = poll(check, deadline, backoff, clock, f"waiting for the PCIDevices of {node}", log)
    if not done:
        log.warning("gave up waiting for the PCIDevices of %s: %s", node, why)
    return dict(found), why


def claim_object(node: str, address: str, pcidevice: dict[str, Any]) -> dict[str, Any]:
    name = pcidevice["metadata"]["name"]
    return {
        "apiVersion": PCIDEVICECLAIMS.api_version,
        "kind": PCIDEVICECLAIMS.kind,
        "metadata": {
            "name": name,
            "labels": {NODE_LABEL: node},
            "ownerReferences": [
                {"apiVersion": PCIDEVICES.api_version, "kind": PCIDEVICES.kind, "name": name,
                 "uid": pcidevice["metadata"]["uid"]}
            ],
        },
        "spec": {"address": address, "nodeName": node, "userName": CLAIM_USER},
    }


def fix_driver_annotation(client: KubeClient, pcidevice: dict[str, Any], driver: str) -> str | None:
    """Set the give-back driver when the controller recorded vfio-pci (or nothing).
    Returns the value written, None when left as it was."""
    meta = pcidevice.get("metadata") or {}
    current = (meta.get("annotations") or {}).get(PCIDEVICE_DRIVER_ANNOTATION)
    if current not in (None, VFIO) or current == driver:
        return None
    client.merge_patch(PCIDEVICES, meta["name"], {"metadata": {"annotations": {PCIDEVICE_DRIVER_ANNOTATION: driver}}})
    log.info("pcidevice %s: %s %r -> %r (what our binder recorded before binding)", meta["name"],
             PCIDEVICE_DRIVER_ANNOTATION, current, driver)
    return driver


def _same(claim: dict[str, Any], node: str, address: str) -> bool:
    spec = claim.get("spec") or {}
    return spec.get("address") == address and spec.get("nodeName") == node


def ensure_claims(client: KubeClient, node: str, devices: dict[str, str | None],
                  pcidevices: dict[str, dict[str, Any]]) -> ClaimsOutcome:
    """Claims for `devices` (address -> give-back driver, None to leave the annotation
    alone) among the `pcidevices` found. Devices without a PCIDevice are `missing`."""
    names = {pcidevice_name(node, a): a for a in devices}
    outcome = ClaimsOutcome(missing=sorted(n for n in names if n not in pcidevices))
    if len(outcome.missing) == len(names):
        return outcome
    claims = {o["metadata"]["name"]: o for o in client.list(PCIDEVICECLAIMS, label_selector=f"{NODE_LABEL}={node}")}
    for name in sorted(n for n in names if n in pcidevices):
        address, pcidevice = names[name], pcidevices[name]
        status = pcidevice.get("status") or {}
        if status.get("address") not in (None, address) or status.get("nodeName") not in (None, node):
            outcome.conflicts.append(f"{name}: PCIDevice is {status.get('nodeName')}/{status.get('address')}")
            continue
        driver = devices[address]
        if driver is not None:
            written = fix_driver_annotation(client, pcidevice, driver)
            if written is not None:
                outcome.drivers[name] = written
        existing = claims.get(name)
        if existing is None:
            try:
                client.create(PCIDEVICECLAIMS, claim_object(node, address, pcidevice))
                outcome.created.append(name)
                continue
            except ApiError as exc:
                if not exc.already_exists:
                    raise
                existing = client.get(PCIDEVICECLAIMS, name)
                if existing is None:  # created and deleted meanwhile: the next run decides
                    outcome.missing.append(name)
                    continue
        if _same(existing, node, address):
            outcome.existing.append(name)
        else:
            spec = existing.get("spec") or {}
            outcome.conflicts.append(f"{name}: claim exists for {spec.get('nodeName')}/{spec.get('address')}")
    for c in outcome.conflicts:
        log.warning("claim %s; left alone", c)
    log.info("claims on %s: %d created, %d already there, %d conflicting, %d without PCIDevice",
             node, len(outcome.created), len(outcome.existing), len(outcome.conflicts), len(outcome.missing))
    return outcome
