"""The cluster side of first boot: carry out the nodes' requests with admin credentials.

Runs where RKE2's admin kubeconfig is (a server node): inline in that node's own first
boot for its own request, and from `installer-ext-reconcile.timer` (`firstboot
--reconcile`) for the requests of every node, joined agents included. For one node:

  settings   pci-pt-enable / gpu-enable (the OR of all nodes' requests: settings.py)
  addon      enable pcidevices-controller; wait for it to exist; retry while the addon
             webhook says an operation is in progress (addons.py)
  devices    wait for the node's PCIDevices (with an IOMMU group), set their give-back
             driver annotation, create the claims (claims.py)
  sriov      numVFs on the node's SRIOVNetworkDevice, wait for the VFs, claim the VFs
             meant for VMs (sriovnet.py, claims.py)
  plugins    server-side apply of the requested device plugins (plugins.py)
  answer     the result annotation on the node's Node; its state label `done` when
             everything happened (conflicts with objects someone else made are reported
             and left alone) or cannot happen (an invalid request), `pending` while it
             waits

Everything is idempotent: a rerun (the timer's next tick, a restart after kill -9)
writes nothing that is already there. Each wait is bounded by its own deadline; what is
not there yet is answered `waiting` and picked up by the next run. The reconciler
touches only the requesting node's own PCIDevices, claims and SRIOVNetworkDevices.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from installer_ext.errors import ExtError
from installer_ext.firstboot import addons, claims, plugins, settings, sriovnet
from installer_ext.firstboot.objects import (
    ADDON_NAMESPACE,
    ADDONS,
    HANDLED,
    NODES,
    PENDING,
    REQUEST_ANNOTATION,
    RESULT_ANNOTATION,
    STATE_LABEL,
)
from installer_ext.firstboot.request import DONE, FAILED, WAITING, BadRequest, Request, Result, parse, parse_result
from installer_ext.firstboot.state import now
from installer_ext.harvester import ADDON_PCIDEVICES
from installer_ext.kube.backoff import Backoff, Clock, Deadline
from installer_ext.kube.client import KubeClient
from installer_ext.kube.errors import KubeError

log = logging.getLogger(__name__)


@dataclass
class Waits:
    """How long one reconcile run waits for each thing (seconds)."""

    addon: float
    devices: float
    sriov: float


@dataclass
class Reconciler:
    client: KubeClient
    waits: Waits
    backoff: Callable[[], Backoff]
    clock: Clock
    by: str  # this server's node name, written in the answers
    max_conflicts: int = 10

    def _deadline(self, seconds: float) -> Deadline:
        return Deadline(seconds, self.clock)

    # -- one node ----------------------------------------------------------------------------
    def reconcile(self, node: dict[str, Any]) -> Result:
        """Carry out the request on `node` (a Node object) and write the answer."""
        name = node["metadata"]["name"]
        text = ((node.get("metadata") or {}).get("annotations") or {}).get(REQUEST_ANNOTATION)
        try:
            req = parse(text)
        except BadRequest as exc:
            result = Result(request="", state=FAILED, reason=f"invalid request on node {name}: {exc}")
            log.warning("%s", result.reason)
            return self.answer(node, result)
        try:
            result = self._carry_out(name, req)
        except KubeError as exc:
            result = Result(request=req.digest, state=WAITING, reason=f"API error: {exc}")
            log.warning("node %s: %s", name, result.reason)
        except ExtError as exc:
            result = Result(request=req.digest, state=WAITING, reason="; ".join(exc.lines))
            log.warning("node %s: %s", name, result.reason)
        return self.answer(node, result)

    def answer(self, node: dict[str, Any], result: Result) -> Result:
        """Write the answer on the Node, unless the same answer is there already (a
        rerun writes nothing: `by` and `at` alone do not make a new answer)."""
        meta = node.get("metadata") or {}
        name = meta["name"]
        label = PENDING if result.state == WAITING else HANDLED
        before = parse_result((meta.get("annotations") or {}).get(RESULT_ANNOTATION))
        result.by, result.at = self.by, now()
        if before is not None and before.outcome() == result.outcome() \
                and (meta.get("labels") or {}).get(STATE_LABEL) == label:
            log.info("node %s: request %s %s (answer unchanged)", name, result.request or "(invalid)", result.state)
            return result
        self.client.merge_patch(NODES, name, {"metadata": {
            "annotations": {RESULT_ANNOTATION: result.to_annotation()}, "labels": {STATE_LABEL: label}}})
        log.info("node %s: request %s %s%s", name, result.request or "(invalid)", result.state,
                 f": {result.reason}" if result.reason else "")
        return result

    def _carry_out(self, node: str, req: Request) -> Result:
        """Each part on its own: a Setting that keeps conflicting must not keep the
        claims from protecting the bound devices. A part that fails is answered
        `waiting` with its reason (the next run tries it again)."""
        details: dict[str, Any] = {}
        waiting: list[str] = []
        result = Result(request=req.digest, state=DONE)

        def part(name: str, fn: Callable[[], None]) -> None:
            try:
                fn()
            except KubeError as exc:
                waiting.append(f"{name}: API error: {exc}")
            except ExtError as exc:
                waiting.append(f"{name}: {'; '.join(exc.lines)}")

        def do_settings() -> None:
            details["settings"] = {k: settings.ensure_setting(self.client, k, v, self.max_conflicts)
                                   for k, v in sorted(req.settings.items())}

        addon_on = {"value": False}

        def do_addons() -> None:
            for addon, enabled in sorted(req.addons.items()):
                if not enabled:
                    details.setdefault("addons", {})[addon] = "left-alone"
                    continue
                outcome, why = addons.ensure_addon(self.client, addon, ADDON_NAMESPACE,
                                                   self._deadline(self.waits.addon), self.backoff(), self.clock)
                details.setdefault("addons", {})[addon] = outcome
                if outcome in (addons.ENABLED, addons.ALREADY_ENABLED):
                    addon_on["value"] = addon_on["value"] or addon == ADDON_PCIDEVICES
                else:
                    waiting.append(why)

        def do_devices() -> None:
            # SR-IOV goes through the controller's object whenever the controller runs (it
            # sets an object's VFs to 0 otherwise), claims only when the plan makes them
            wants = bool(req.sriov) or (req.claims and bool(req.devices))
            if not wants:
                return
            on = addon_on["value"]
            if not on and not req.addons.get(ADDON_PCIDEVICES):
                if not self._addon_enabled():
                    details["claims"] = ("skipped: the pcidevices-controller addon is off and the plan leaves it so; "
                                         "nothing unbinds the devices or resets VFs: no claims made, VF counts "
                                         "stay the binder's")
                    return
                on = True
            if not on:
                waiting.append("claims wait for the pcidevices-controller addon")
                return
            self._devices(node, req, result, details, waiting)

        def do_plugins() -> None:
            if req.plugins:
                details["plugins"] = plugins.apply_plugins(self.client, sorted(req.plugins))

        part("settings", do_settings)
        part("addon", do_addons)
        part("claims", do_devices)
        part("plugins", do_plugins)
        result.details = details
        result.conflicts = sorted(set(result.conflicts))
        if waiting:
            result.state, result.reason = WAITING, "; ".join(waiting)
        return result

    def _addon_enabled(self) -> bool:
        obj = self.client.get(ADDONS, ADDON_PCIDEVICES, ADDON_NAMESPACE)
        return bool(obj and (obj.get("spec") or {}).get("enabled") is True)

    def _devices(self, node: str, req: Request, result: Result, details: dict[str, Any], waiting: list[str]) -> None:
        wanted: dict[str, str | None] = {d.address: d.driver for d in req.devices} if req.claims else {}
        found, why = claims.wait_pcidevices(self.client, node, sorted(wanted), self._deadline(self.waits.devices),
                                            self.backoff(), self.clock)
        outcome = claims.ensure_claims(self.client, node, wanted, found)
        details["claims"] = outcome.to_json()
        names = {claims.pcidevice_name(node, a): a for a in wanted}
        result.claimed += outcome.claimed(names)
        result.conflicts += outcome.conflicts
        if outcome.missing:
            waiting.append(f"no PCIDevice with an IOMMU group yet for {', '.join(outcome.missing)}"
                           + (f" ({why})" if why else ""))
        for want in sorted(req.sriov, key=lambda s: s.address):
            s = sriovnet.ensure_sriov(self.client, node, want, self._deadline(self.waits.sriov), self.backoff(),
                                      self.clock)
            entry = s.to_json()
            if s.status == sriovnet.CONFLICT:
                result.conflicts.append(s.reason)
            elif not s.usable:
                waiting.append(s.reason)
            elif want.vfs_to_vfio and req.claims:
                vf_found, vf_why = claims.wait_pcidevices(self.client, node, s.vfs, self._deadline(self.waits.devices),
                                                          self.backoff(), self.clock)
                # VFs had no host driver before (the binder turns autoprobe off): give them back to none
                vf_outcome = claims.ensure_claims(self.client, node, {a: "" for a in s.vfs}, vf_found)
                vf_names = {claims.pcidevice_name(node, a): a for a in s.vfs}
                entry["claims"] = vf_outcome.to_json()
                result.claimed += vf_outcome.claimed(vf_names)
                result.conflicts += vf_outcome.conflicts
                if vf_outcome.missing:
                    waiting.append(f"no PCIDevice yet for the VFs {', '.join(vf_outcome.missing)}"
                                   + (f" ({vf_why})" if vf_why else ""))
            result.sriov.append(entry)

    # -- every pending node ------------------------------------------------------------------
    def pending(self) -> list[dict[str, Any]]:
        return self.client.list(NODES, label_selector=f"{STATE_LABEL}={PENDING}")

    def reconcile_pending(self) -> dict[str, Result]:
        out = {}
        for node in sorted(self.pending(), key=lambda n: n["metadata"]["name"]):
            out[node["metadata"]["name"]] = self.reconcile(node)
        return out
