"""Step 6: label the node for its device plugins, then wait for the GPUs to show.

The label (one key per plugin, `installer-ext.harvesterhci.io/gpu-plugin-<plugin>:
"true"`) is what the DaemonSets select, and a merge patch of metadata.labels touches no
other label. The kubelet registers the node; a node not there yet is waited for. Then
the node's status.allocatable is polled (bounded) until `nvidia.com/gpu` / `amd.com/gpu`
is there and non-zero, and the counts are reported.
"""

from __future__ import annotations

import logging
from typing import Any

from installer_ext.firstboot.objects import NODES, PLUGIN_RESOURCES, plugin_label
from installer_ext.kube.backoff import Backoff, Clock, Deadline, poll
from installer_ext.kube.client import KubeClient

log = logging.getLogger(__name__)


def _count(value: Any) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def label_node(client: KubeClient, node: str, plugins: list[str], deadline: Deadline, backoff: Backoff,
               clock: Clock) -> tuple[bool, str, dict[str, str]]:
    """(labelled, why not, labels)."""
    labels = {plugin_label(p): "true" for p in plugins}
    current: dict[str, Any] = {}

    def check() -> tuple[bool, str]:
        obj = client.get(NODES, node)
        if obj is None:
            return False, f"node {node} not registered yet"
        current.update(obj)
        return True, ""

    found, why, _ = poll(check, deadline, backoff, clock, f"waiting for node {node}", log)
    if not found:
        return False, why, labels
    have = (current.get("metadata") or {}).get("labels") or {}
    if all(have.get(k) == v for k, v in labels.items()):
        log.info("node %s: already labelled %s", node, labels)
    else:
        client.merge_patch(NODES, node, {"metadata": {"labels": labels}})
        log.info("node %s: labelled %s", node, labels)
    return True, "", labels


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
