"""Step `allocatable`: wait for the GPUs to show in the node's allocatable.

The node carries its plugins' labels (one key per plugin,
`installer-ext.harvesterhci.io/gpu-plugin-<plugin>: "true"`, what the DaemonSets select;
put there with the request: publish.py). The node's status.allocatable is polled
(bounded) until `nvidia.com/gpu` / `amd.com/gpu` is there and non-zero, and the counts
are reported. Reading its own Node is allowed to a kubelet identity.
"""

from __future__ import annotations

import logging
from typing import Any

from installer_ext.firstboot.objects import NODES, PLUGIN_RESOURCES
from installer_ext.kube.backoff import Backoff, Clock, Deadline, poll
from installer_ext.kube.client import KubeClient

log = logging.getLogger(__name__)


def _count(value: Any) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def wait_allocatable(client: KubeClient, node: str, plugins: list[str], deadline: Deadline, backoff: Backoff,
                     clock: Clock) -> tuple[bool, str, dict[str, int]]:
    """(all there, why not, counts per resource)."""
    resources = sorted(PLUGIN_RESOURCES[p] for p in plugins)
    counts: dict[str, int] = {}

    def check() -> tuple[bool, str]:
        obj = client.get(NODES, node) or {}
        alloc = (obj.get("status") or {}).get("allocatable") or {}
        counts.clear()
        counts.update({r: _count(alloc.get(r, 0)) for r in resources})
        waiting = [r for r in resources if counts[r] <= 0]
        if waiting:
            return False, f"{', '.join(waiting)} not in node {node}'s allocatable yet"
        return True, ""

    ok, why, _ = poll(check, deadline, backoff, clock, f"waiting for {', '.join(resources)} on {node}", log)
    for r in resources:
        log.info("node %s: %s allocatable %d", node, r, counts.get(r, 0))
    return ok, why, dict(counts)
