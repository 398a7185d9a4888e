"""The first-boot run: the steps in order, each recorded in the state dir.

  api         wait for the API server and Harvester's API (always runs; fails the run)
  settings    Setting objects from the plan (pci-pt-enable, gpu-enable)
  addons      enable the plan's Addons (pcidevices-controller) when they exist
  claims      PCIDeviceClaims for the devices bound to vfio-pci this boot
  gpu         which device plugins this host can run (vendor + nvidia-smi / kfd)
  plugins     server-side apply of their DaemonSets and the nvidia RuntimeClass
  label       node labels that schedule them
  allocatable wait for nvidia.com/gpu / amd.com/gpu in the node's allocatable
  -> STATE_DIR/done

A step whose record says done (or skipped) for the same inputs is not run again. A
failed step does not stop the independent ones after it (a settings failure must not
keep the claims from protecting the bound devices); `label` and `allocatable` need
`plugins`. Any failure: no done marker, exit 1, the unit retries later and reruns only
what is not done. Every step is idempotent against the API, so a run killed at any
point and rerun converges to the same objects.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from installer_ext import __version__
from installer_ext.errors import ExtError
from installer_ext.firstboot import claims as claims_step
from installer_ext.firstboot import gpu, inputs, manifests, node, plugins, settings
from installer_ext.firstboot.apiwait import wait_for_api
from installer_ext.firstboot.objects import ADDON_NAMESPACE, PCIDEVICES
from installer_ext.firstboot.options import Options
from installer_ext.firstboot.state import DONE, FAILED, SKIPPED, StateDir
from installer_ext.kube.backoff import Backoff, Clock, Deadline
from installer_ext.kube.client import KubeClient
from installer_ext.kube.errors import KubeError
from installer_ext.kube.kubeconfig import KubeConfig
from installer_ext.plan.model import Plan
from installer_ext.plan.planfile import load_plan

log = logging.getLogger(__name__)

PCIDEVICES_ADDON = "pcidevices-controller"
SUMMARY_VERSION = 1


@dataclass
class StepResult:
    status: str
    result: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None


class Firstboot:
    def __init__(self, opts: Options, clock: Clock | None = None) -> None:
        self.opts = opts
        self.clock = clock or Clock()
        self.state = StateDir(opts.state_dir)
        self.records: dict[str, dict[str, Any]] = {}
        self.client: KubeClient | None = None

    # -- helpers ---------------------------------------------------------------------------
    def backoff(self) -> Backoff:
        o = self.opts
        return Backoff(initial=o.poll_interval, cap=max(o.poll_interval, o.poll_max))

    def deadline(self, seconds: float) -> Deadline:
        return Deadline(seconds, self.clock)

    def make_client(self, cfg: KubeConfig, node_name: str) -> KubeClient:
        o = self.opts
        return KubeClient(
            cfg,
            timeout=o.request_timeout,
            attempts=o.retries,
            backoff=Backoff(initial=o.poll_interval / 4, cap=max(o.poll_interval, o.poll_max / 3)),
            clock=self.clock,
            user_agent=f"installer-ext/{__version__} (firstboot; node={node_name})",
        )

    def step(self, name: str, step_inputs: Any, fn: Callable[[], StepResult]) -> dict[str, Any]:
        rec = self.state.finished(name, step_inputs)
        if rec is not None:
            log.info("step %s: already %s", name, rec["status"])
        else:
            try:
                res = fn()
            except KubeError as exc:
                res = StepResult(FAILED, error=str(exc))
            except ExtError as exc:
                res = StepResult(FAILED, error="; ".join(exc.lines))
            result = dict(res.result)
            if res.warnings:
                result["warnings"] = res.warnings
            if res.error:
                result["error"] = res.error
            rec = self.state.record(name, res.status, step_inputs, result)
            log.log(logging.WARNING if res.status == FAILED else logging.INFO, "step %s: %s%s", name, res.status,
                    f": {res.error}" if res.error else "")
        self.records[name] = rec
        return rec

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Run (or finish) first boot; the summary. Raises ExtError when a step failed."""
        done = self.state.done()
        if done is not None:
            log.info("first boot already done (%s)", self.state.done_path)
            return done
        with self.state.lock():
            done = self.state.done()
            if done is not None:
                return done
            return self._run_locked()

    def _run_locked(self) -> dict[str, Any]:
        o = self.opts
        plan = load_plan(o.plan)
        node_name = inputs.node_name(o.root, o.node_name)
        bind = inputs.bound_devices(o.root, plan)
        ready = wait_for_api(o.kubeconfig, self.deadline(o.deadline), self.backoff(), self.clock,
                             lambda cfg: self.make_client(cfg, node_name))
        client = self.client = ready.client
        try:
            self.state.record("api", DONE, {"server": client.config.server},
                              {"attempts": ready.attempts, "elapsed_s": round(ready.elapsed, 3)})
            self._steps(client, plan, node_name, bind)
        finally:
            client.close()
        failed = {n: r for n, r in self.records.items() if r["status"] == FAILED}
        summary = self._summary(node_name, client, failed)
        if failed:
            lines = [f"first boot step {n} failed: {(r['result'] or {}).get('error') or 'see ' + self.state.steps_dir}"
                     for n, r in failed.items()]
            lines.append(f"first boot not done; state in {self.state.path}; the next run retries what is not done")
            raise ExtError(*lines)
        self.state.finish(summary)
        log.info("first boot done on %s: %s", node_name, self._one_line(summary))
        return summary

    def _steps(self, client: KubeClient, plan: Plan, node_name: str, bind: inputs.BindView) -> None:
        self.step("settings", dict(sorted(plan.settings.items())), lambda: self._settings(client, plan))
        self.step("addons", dict(sorted(plan.addons.items())), lambda: self._addons(client, plan))
        claim_inputs = {"node": node_name, "enabled": plan.claims, "skipped": bind.skipped,
                        "devices": [d.address for d in bind.devices]}
        self.step("claims", claim_inputs, lambda: self._claims(client, plan, node_name, bind))
        gpu_rec = self.step("gpu", {"host_gpus": plan.host_gpus, "allowed": plan.device_plugins},
                            lambda: self._gpu(plan))
        chosen = list((gpu_rec.get("result") or {}).get("plugins") or [])
        plugin_inputs = {"plugins": chosen, "manifests": manifests.fingerprint(chosen)}
        apply_rec = self.step("plugins", plugin_inputs, lambda: self._plugins(client, chosen))
        node_inputs = {"node": node_name, "plugins": chosen}
        if apply_rec["status"] == FAILED:
            return
        label_rec = self.step("label", node_inputs, lambda: self._label(client, node_name, chosen))
        if label_rec["status"] == FAILED:
            return
        self.step("allocatable", node_inputs, lambda: self._allocatable(client, node_name, chosen))

    # -- the steps -------------------------------------------------------------------------
    def _settings(self, client: KubeClient, plan: Plan) -> StepResult:
        if not plan.settings:
            return StepResult(SKIPPED, {"reason": "no settings in the plan"})
        out = {name: settings.ensure_setting(client, name, value, self.opts.max_conflicts)
               for name, value in sorted(plan.settings.items())}
        return StepResult(DONE, {"settings": out})

    def _addons(self, client: KubeClient, plan: Plan) -> StepResult:
        out, warnings = {}, []
        for name, enabled in sorted(plan.addons.items()):
            if not enabled:
                out[name] = "left-alone"
                continue
            out[name] = settings.ensure_addon(client, name, ADDON_NAMESPACE)
            if out[name] == settings.ABSENT:
                warnings.append(f"addon {ADDON_NAMESPACE}/{name} not found")
        if not out:
            return StepResult(SKIPPED, {"reason": "no addons in the plan"})
        return StepResult(DONE, {"addons": out}, warnings)

    def _claims(self, client: KubeClient, plan: Plan, node_name: str, bind: inputs.BindView) -> StepResult:
        base = {"source": bind.source, "not_bound": bind.not_bound}
        if not plan.claims:
            return StepResult(SKIPPED, {**base, "reason": "claims off in the plan"}, bind.warnings)
        if bind.skipped:
            return StepResult(FAILED, base, bind.warnings,
                              f"the binder skipped this boot ({bind.skip_reason}): claims wait for a boot that binds")
        if not bind.devices:
            return StepResult(DONE, {**base, "created": [], "existing": []}, bind.warnings)
        addon = ((self.records.get("addons") or {}).get("result") or {}).get("addons", {}).get(PCIDEVICES_ADDON)
        if addon in (settings.ABSENT, None) and client.served_resources(PCIDEVICES.group, PCIDEVICES.version) is None:
            return StepResult(SKIPPED, {**base, "reason": "no pcidevices controller on this cluster"},
                              bind.warnings + ["no pcidevices controller: nothing will unbind the devices, no claims made"])
        outcome = claims_step.ensure_claims(client, node_name, bind.devices, self.deadline(self.opts.claims_wait),
                                            self.backoff(), self.clock)
        warnings = bind.warnings + [f"claim {c}" for c in outcome.conflicts]
        if outcome.missing:
            return StepResult(FAILED, {**base, **outcome.to_json()}, warnings,
                              f"no PCIDevice after {self.opts.claims_wait:g}s for {', '.join(outcome.missing)}")
        return StepResult(DONE, {**base, **outcome.to_json()}, warnings)

    def _gpu(self, plan: Plan) -> StepResult:
        choice = gpu.choose(self.opts.root, plan, self.opts.nvidia_smi, self.opts.nvidia_smi_timeout)
        if choice.failed:
            why = "; ".join(f"{p.plugin}: {p.reason}" for p in choice.failed)
            return StepResult(FAILED, choice.to_json(), choice.warnings, f"device plugin not confirmed: {why}")
        if not choice.plugins:
            return StepResult(SKIPPED, choice.to_json(), choice.warnings)
        return StepResult(DONE, choice.to_json(), choice.warnings)

    def _plugins(self, client: KubeClient, chosen: list[str]) -> StepResult:
        if not chosen:
            return StepResult(SKIPPED, {"reason": "no device plugin to install"})
        return StepResult(DONE, {"applied": plugins.apply_plugins(client, chosen)})

    def _label(self, client: KubeClient, node_name: str, chosen: list[str]) -> StepResult:
        if not chosen:
            return StepResult(SKIPPED, {"reason": "no device plugin"})
        ok, why, labels = node.label_node(client, node_name, chosen, self.deadline(self.opts.allocatable_wait),
                                          self.backoff(), self.clock)
        return StepResult(DONE if ok else FAILED, {"labels": labels}, error=None if ok else why)

    def _allocatable(self, client: KubeClient, node_name: str, chosen: list[str]) -> StepResult:
        if not chosen:
            return StepResult(SKIPPED, {"reason": "no device plugin"})
        ok, why, counts = node.wait_allocatable(client, node_name, chosen, self.deadline(self.opts.allocatable_wait),
                                                self.backoff(), self.clock)
        return StepResult(DONE if ok else FAILED, {"allocatable": counts},
                          error=None if ok else f"after {self.opts.allocatable_wait:g}s: {why}")

    # -- summary ---------------------------------------------------------------------------
    def _summary(self, node_name: str, client: KubeClient, failed: dict[str, Any]) -> dict[str, Any]:
        steps = {n: {"status": r["status"], "result": r.get("result") or {}} for n, r in self.records.items()}
        res = {n: s["result"] for n, s in steps.items()}
        return {
            "version": SUMMARY_VERSION,
            "node": node_name,
            "server": client.config.server,
            "steps": steps,
            "claims": sorted((res.get("claims") or {}).get("created", []) + (res.get("claims") or {}).get("existing", [])),
            "plugins": (res.get("gpu") or {}).get("plugins", []),
            "allocatable": (res.get("allocatable") or {}).get("allocatable", {}),
            "warnings": [w for r in res.values() for w in r.get("warnings", [])],
            "failed": sorted(failed),
            "requests": client.requests,
        }

    @staticmethod
    def _one_line(summary: dict[str, Any]) -> str:
        alloc = ", ".join(f"{k}={v}" for k, v in sorted(summary["allocatable"].items())) or "no GPU resources"
        return (f"{len(summary['claims'])} claims, plugins {', '.join(summary['plugins']) or 'none'}, {alloc}, "
                f"{len(summary['warnings'])} warnings, {summary['requests']} API requests")
