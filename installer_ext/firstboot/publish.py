"""The node side of the request: build it, put it on the node's own Node, get the answer.

Everything here is allowed to a kubelet identity: `get` of its own Node
(node_authorizer.go authorizeNode, with AuthorizeNodeWithSelectors: only its own name)
and `patch` of its own Node's metadata, with labels outside the kubernetes.io / k8s.io
namespaces (noderestriction/admission.go admitNode, getForbiddenLabels). On a server
node the same request is carried out at once by the reconciler with admin credentials
(`reconcile_own`), so every node follows one path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from installer_ext.boot.record import Record
from installer_ext.firstboot.inputs import BindView
from installer_ext.firstboot.objects import (
    GPU_BAREMETAL_LABEL,
    HANDLED,
    NODES,
    PENDING,
    REQUEST_ANNOTATION,
    RESULT_ANNOTATION,
    STATE_LABEL,
    plugin_label,
)
from installer_ext.firstboot.reconcile import Reconciler
from installer_ext.firstboot.request import (
    DONE,
    FAILED,
    WAITING,
    DeviceRequest,
    Request,
    Result,
    SriovRequest,
    parse_result,
)
from installer_ext.host.address import PCI_ID_RE
from installer_ext.host.pci import read_function
from installer_ext.host.sysfs import SysRoot
from installer_ext.kube.backoff import Backoff, Clock, Deadline, poll
from installer_ext.kube.client import KubeClient
from installer_ext.plan.model import Plan

log = logging.getLogger(__name__)

GAVE_UP = "gave-up"


def build_request(root: str, plan: Plan, bind: BindView, plugins: list[str]) -> Request | str:
    """This node's request, or why it cannot be made on this boot."""
    if bind.skipped and plan.claims and (plan.passthrough or plan.sriov):
        return f"the binder skipped this boot ({bind.skip_reason}): claims wait for a boot that binds"
    sriov_pfs = {s.address for s in plan.sriov}
    vf_of = {p.address: p.vf_of for p in plan.passthrough}
    record = Record(root)
    devices = []
    if plan.claims:
        for d in bind.devices:
            if vf_of.get(d.address) in sriov_pfs:
                continue  # VFs are claimed through their PF's SRIOVNetworkDevice
            vid, did = d.vendor_id or "", d.device_id or ""
            if not (PCI_ID_RE.match(vid) and PCI_ID_RE.match(did)):
                fn = read_function(SysRoot(root), d.address, want_config=False)
                vid, did = fn.vendor_id or "", fn.device_id or ""
                if not (PCI_ID_RE.match(vid) and PCI_ID_RE.match(did)):
                    log.warning("%s: vendor/device unreadable: not claimed", d.address)
                    continue
            prev = record.get(d.address, vid, did)
            devices.append(DeviceRequest(d.address, vid, did, (prev.driver if prev else None) or ""))
    # SR-IOV through the controller's object whether or not the plan makes claims: the
    # controller sets every object's VFs to its numVFs, 0 unless asked (sriovnet.py)
    sriov = [SriovRequest(s.address, s.num_vfs, s.vfs_to_vfio) for s in plan.sriov if s.num_vfs > 0]
    return Request(settings=dict(plan.settings), addons=dict(plan.addons), claims=plan.claims, devices=devices,
                   sriov=sriov, plugins=sorted(plugins))


def node_labels(plugins: list[str], operator: bool) -> dict[str, str]:
    labels = {plugin_label(p): "true" for p in sorted(plugins)}
    if operator:
        labels[GPU_BAREMETAL_LABEL] = "true"
    return labels


def _meta(obj: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    meta = obj.get("metadata") or {}
    return dict(meta.get("annotations") or {}), dict(meta.get("labels") or {})


def publish(client: KubeClient, node: str, req: Request, labels: dict[str, str], deadline: Deadline,
            backoff: Backoff, clock: Clock) -> bool:
    """Put the request and the labels on the node's Node (waiting for the kubelet to
    register it). Returns whether anything was written."""
    text = req.to_annotation()
    current: dict[str, Any] = {}

    def check() -> tuple[bool, str]:
        obj = client.get(NODES, node)
        if obj is None:
            return False, f"node {node} not registered yet"
        current.update(obj)
        return True, ""

    found, why, _ = poll(check, deadline, backoff, clock, f"waiting for node {node}", log)
    if not found:
        from installer_ext.errors import ExtError

        raise ExtError(f"node {node} not registered after {deadline.seconds:g}s: {why}")
    annotations, have = _meta(current)
    answer = parse_result(annotations.get(RESULT_ANNOTATION))
    answered = answer is not None and answer.request == req.digest and answer.state in (DONE, FAILED)
    want_state = HANDLED if answered else PENDING
    if annotations.get(REQUEST_ANNOTATION) == text and all(have.get(k) == v for k, v in labels.items()) \
            and (answered or have.get(STATE_LABEL) == PENDING):
        log.info("node %s: request %s already published", node, req.digest)
        return False
    patch = {"metadata": {"annotations": {REQUEST_ANNOTATION: text}, "labels": {**labels, STATE_LABEL: want_state}}}
    client.merge_patch(NODES, node, patch)
    log.info("node %s: request %s published (%d devices, %d SR-IOV PFs, plugins %s), labels %s", node, req.digest,
             len(req.devices), len(req.sriov), ", ".join(req.plugins) or "none", sorted(labels) or "none")
    return True


def mark(client: KubeClient, node: str, value: str) -> None:
    client.merge_patch(NODES, node, {"metadata": {"labels": {STATE_LABEL: value}}})


def read_answer(client: KubeClient, node: str, digest: str) -> Result | None:
    obj = client.get(NODES, node) or {}
    annotations, _ = _meta(obj)
    answer = parse_result(annotations.get(RESULT_ANNOTATION))
    return answer if answer is not None and answer.request == digest else None


def wait_for_answer(client: KubeClient, node: str, digest: str, deadline: Deadline, backoff: Backoff, clock: Clock,
                    on_wait: Callable[[str], None] | None = None) -> Result | None:
    """A joined node: wait until a reconciler answered this request done or failed.
    The last answer (possibly `waiting`), or None when none came."""
    last: dict[str, Result | None] = {"answer": None}

    def check() -> tuple[bool, str]:
        answer = read_answer(client, node, digest)
        last["answer"] = answer
        if answer is None:
            why = f"request {digest} of {node} not answered yet by a server's installer-ext reconciler"
        elif answer.state == WAITING:
            why = f"the reconciler on {answer.by or '?'} waits: {answer.reason}"
        else:
            return True, ""
        if on_wait is not None:
            on_wait(why)
        return False, why

    poll(check, deadline, backoff, clock, f"waiting for the cluster to handle {node}'s request", log)
    return last["answer"]


def reconcile_own(rec: Reconciler, node: str, deadline: Deadline, backoff: Backoff, clock: Clock,
                  on_wait: Callable[[str], None] | None = None) -> Result | None:
    """A server node: carry out its own request now, again until done/failed or the
    deadline (each pass waits for what it needs, bounded, and answers `waiting`)."""
    last: dict[str, Result | None] = {"answer": None}

    def check() -> tuple[bool, str]:
        obj = rec.client.get(NODES, node)
        if obj is None:
            return False, f"node {node} not registered yet"
        answer = last["answer"] = rec.reconcile(obj)
        if answer.state == WAITING:
            if on_wait is not None:
                on_wait(answer.reason)
            return False, answer.reason
        return True, ""

    poll(check, deadline, backoff, clock, f"carrying out {node}'s request", log)
    return last["answer"]
