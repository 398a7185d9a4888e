"""Harvester Setting objects (the reconciler writes them for every node's request).

Settings (`harvesterhci.io/v1beta1`, cluster-scoped, `value` at the top level) are
written with optimistic concurrency: GET; 404 -> create; a different value -> PUT the
object just read (its resourceVersion guards it); 409 on create (someone created it
first) or on update (someone wrote it since our GET) -> read again and retry, a bounded
number of times. Nothing is lost: a concurrent writer's fields are in what we re-read.

Settings are cluster-wide but every node has its own plan: a node without GPUs plans
`gpu-enable: "false"` while its neighbour plans "true". So a plan's "false" only means
"this node needs nothing": it creates the Setting when absent and never turns off a
Setting that is on. The cluster ends up with the OR of its nodes' plans, whatever order
they boot in.

Nothing in Harvester reads `pci-pt-enable` or `gpu-enable` (they come from the
installer-ext proposal, and Harvester's settings webhook accepts names it has no
validator for: harvester/harvester pkg/webhook/resources/setting/validator.go
validateSetting). What makes passthrough work is the pcidevices-controller Addon and
the PCIDeviceClaims.
"""

from __future__ import annotations

import logging

from installer_ext.errors import ExtError
from installer_ext.firstboot.objects import SETTINGS
from installer_ext.kube.client import KubeClient
from installer_ext.kube.errors import ApiError

log = logging.getLogger(__name__)

CREATED, UPDATED, UNCHANGED, KEPT = "created", "updated", "unchanged", "kept"
OFF = "false"


def ensure_setting(client: KubeClient, name: str, value: str, max_tries: int = 10) -> str:
    for attempt in range(1, max_tries + 1):
        current = client.get(SETTINGS, name)
        if current is None:
            obj = {"apiVersion": SETTINGS.api_version, "kind": SETTINGS.kind, "metadata": {"name": name}, "value": value}
            try:
                client.create(SETTINGS, obj)
            except ApiError as exc:
                if exc.already_exists:
                    log.info("setting %s: created by someone else meanwhile, reading it again", name)
                    continue
                raise
            log.info("setting %s: created with value %r", name, value)
            return CREATED
        if current.get("value") == value:
            log.info("setting %s: already %r", name, value)
            return UNCHANGED
        effective = current.get("value") or current.get("default")  # Harvester: empty value = default
        if value == OFF and effective not in (None, "", OFF):
            log.info("setting %s: %r in the cluster (another node needs it); this node's %r leaves it",
                     name, effective, value)
            return KEPT
        old = current.get("value")
        current["value"] = value
        try:
            client.replace(SETTINGS, current)
        except ApiError as exc:
            if exc.conflict:
                log.info("setting %s: changed since read (attempt %d), reading it again", name, attempt)
                continue
            raise
        log.info("setting %s: %r -> %r", name, old, value)
        return UPDATED
    raise ExtError(f"setting {name}: still conflicting after {max_tries} tries")
