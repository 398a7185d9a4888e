"""Enable Harvester's pcidevices-controller Addon, waiting for it as long as allowed.

The Addon appears late: rancherd creates it from its bootstrap resources
(/etc/rancher/rancherd/config.yaml.d/22-addons.yaml, written for the first node only:
harvester/harvester pkg/installer/config/cos.go initRancherdStage/genBootstrapResources;
the Addon itself comes from harvester/addons pkg/templates/pcidevices-controller.yaml)
once the cluster is up, after Harvester's API is served. A missing Addon is waited for,
bounded, with a progress line per check; never recorded as done.

Harvester's addon webhook refuses any update while an operation on the Addon is in
progress (harvester/harvester pkg/webhook/resources/addon/validator.go
validateUpdatedAddon: `AddonOperationInProgress.IsTrue(oldAddon)` -> 400 "cannot perform
operation, as an existing operation is in progress on addon ..."). That refusal is
retried until the operation ends or the wait is over.

The Addon is only ever enabled, with a merge patch of `spec.enabled` (one field: it
cannot overwrite anyone else's change).
"""

from __future__ import annotations

import logging

from installer_ext.firstboot.objects import ADDONS
from installer_ext.kube.backoff import Backoff, Clock, Deadline, poll
from installer_ext.kube.client import KubeClient
from installer_ext.kube.errors import ApiError

log = logging.getLogger(__name__)

ENABLED, ALREADY_ENABLED = "enabled", "already-enabled"
ABSENT, BUSY = "absent", "busy"  # not done: the Addon never appeared / stayed in an operation
IN_PROGRESS_TEXT = "an existing operation is in progress"


def in_progress(addon: dict) -> bool:
    """The Addon's InProgress condition is True (wrangler condition.Cond on
    status.conditions, harvester/harvester pkg/apis/harvesterhci.io/v1beta1/addon.go)."""
    for c in (addon.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "InProgress" and c.get("status") == "True":
            return True
    return False


def ensure_addon(client: KubeClient, name: str, namespace: str, deadline: Deadline, backoff: Backoff,
                 clock: Clock) -> tuple[str, str]:
    """(outcome, why): ENABLED / ALREADY_ENABLED when it is on, ABSENT / BUSY with the
    reason when the wait ended first."""
    outcome = {"value": ABSENT}

    def check() -> tuple[bool, str]:
        current = client.get(ADDONS, name, namespace)
        if current is None:
            outcome["value"] = ABSENT
            return False, f"Addon {namespace}/{name} not created yet (rancherd creates it after the API is up)"
        if (current.get("spec") or {}).get("enabled") is True:
            outcome["value"] = ALREADY_ENABLED
            return True, ""
        try:
            client.merge_patch(ADDONS, name, {"spec": {"enabled": True}}, namespace)
        except ApiError as exc:
            if exc.status == 400 and IN_PROGRESS_TEXT in exc.message:
                outcome["value"] = BUSY
                return False, f"Addon {namespace}/{name}: {exc.message}"
            raise
        outcome["value"] = ENABLED
        return True, ""

    done, why, _ = poll(check, deadline, backoff, clock, f"waiting for the Addon {namespace}/{name}", log)
    if done:
        log.info("addon %s/%s: %s", namespace, name, outcome["value"].replace("-", " "))
        return outcome["value"], ""
    log.warning("addon %s/%s: %s", namespace, name, why)
    return outcome["value"], why
