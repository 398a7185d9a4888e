"""The first-boot run on one node: the steps in order, each recorded in the state dir.

  api          wait for the API server and Harvester's API, with the admin kubeconfig
               on a server node or the kubelet's on a joined agent (credentials.py)
  gpu          which device plugins this host can run, or which GPUs wait for the
               NVIDIA GPU Operator (gpu.py)
  request      the node's request (settings, addon, devices to claim with the drivers
               the binder recorded, SR-IOV counts, plugins) as an annotation of its own
               Node, with the device-plugin labels (request.py, publish.py)
  cluster      admin: carry the request out now (reconcile.py); kubelet: wait, bounded,
               for a server's reconciler to answer it
  handover     the node-local half of giving the devices to the pcidevices controller:
               the record the binder reads, driver_override released (handover.py)
  allocatable  wait for nvidia.com/gpu / amd.com/gpu in the node's allocatable
  -> STATE_DIR/done

A step whose record says done (or skipped) for the same inputs is not run again. A
failed step stops the steps that need it. Any failure: no done marker, exit 1; the unit
restarts the run a bounded number of times (--max-attempts, counted in status.json);
after the last one the `gave-up` marker ends it, with the reason in status.json. Every
step is idempotent against the API, so a run killed at any point and rerun converges to
the same objects. `status.json` is rewritten whenever a step's state changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from installer_ext import __version__
from installer_ext.errors import ExtError
from installer_ext.boot import handover
from installer_ext.firstboot import credentials, gpu, inputs, node, publish
from installer_ext.firstboot.apiwait import wait_for_api
from installer_ext.firstboot.options import Options
from installer_ext.firstboot.reconcile import Reconciler, Waits
from installer_ext.firstboot.request import DONE as R_DONE
from installer_ext.firstboot.request import FAILED as R_FAILED
from installer_ext.firstboot.request import Request
from installer_ext.firstboot.state import DONE, FAILED, RUNNING, SKIPPED, WAITING, StateDir, now
from installer_ext.kube.backoff import Backoff, Clock, Deadline
from installer_ext.kube.client import KubeClient
from installer_ext.kube.errors import KubeError
from installer_ext.kube.kubeconfig import KubeConfig
from installer_ext.plan.model import Plan
from installer_ext.plan.planfile import load_plan

log = logging.getLogger(__name__)

SUMMARY_VERSION = 2
STEPS = ("api", "gpu", "request", "cluster", "handover", "allocatable")


@dataclass
class StepResult:
    status: str
    result: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None


def backoff_for(o: Options) -> Backoff:
    return Backoff(initial=o.poll_interval, cap=max(o.poll_interval, o.poll_max))


def make_client(o: Options, cfg: KubeConfig, clock: Clock, role: str) -> KubeClient:
    return KubeClient(
        cfg,
        timeout=o.request_timeout,
        attempts=o.retries,
        backoff=Backoff(initial=o.poll_interval / 4, cap=max(o.poll_interval, o.poll_max / 3)),
        clock=clock,
        user_agent=f"installer-ext/{__version__} ({role})",
    )


class Firstboot:
    def __init__(self, opts: Options, clock: Clock | None = None) -> None:
        self.opts = opts
        self.clock = clock or Clock()
        self.state = StateDir(opts.state_dir)
        self.records: dict[str, dict[str, Any]] = {}
        self.client: KubeClient | None = None
        self.node_name = ""
        self.attempt = 0
        self.current: tuple[str, str, str] | None = None  # (step, running|waiting, reason)

    # -- helpers ---------------------------------------------------------------------------
    def backoff(self) -> Backoff:
        return backoff_for(self.opts)

    def deadline(self, seconds: float) -> Deadline:
        return Deadline(seconds, self.clock)

    def _status_steps(self) -> list[dict[str, Any]]:
        out = []
        for name in STEPS:
            rec = self.records.get(name)
            if rec is not None:
                res = rec.get("result") or {}
                reason = res.get("error") or res.get("reason") or "; ".join(res.get("warnings") or [])
                out.append({"name": name, "status": rec["status"], "reason": str(reason or ""), "at": rec.get("at", "")})
            elif self.current and self.current[0] == name:
                out.append({"name": name, "status": self.current[1], "reason": self.current[2], "at": now()})
        return out

    def status(self, state: str, message: str) -> None:
        self.state.write_status(state, self._status_steps(), message, node=self.node_name, attempt=self.attempt,
                                max_attempts=self.opts.max_attempts)

    def _moving(self, step: str, how: str, reason: str = "") -> None:
        self.current = (step, how, reason)
        self.status(WAITING if how == WAITING else RUNNING,
                    f"{step}: {reason}" if reason else f"step {step} running (attempt {self.attempt})")

    def step(self, name: str, step_inputs: Any, fn: Callable[[], StepResult]) -> dict[str, Any]:
        rec = self.state.finished(name, step_inputs)
        if rec is not None:
            log.info("step %s: already %s", name, rec["status"])
        else:
            self._moving(name, RUNNING)
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
        self.current = None
        self.status(RUNNING, f"step {name}: {rec['status']}")
        return rec

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Run (or finish) first boot; the summary. Raises ExtError when a step failed."""
        self.state.check()
        if self.opts.retry:
            self.state.reset_gave_up()
        done = self.state.done()
        if done is not None:
            log.info("first boot already done (%s)", self.state.done_path)
            return done
        gave_up = self.state.gave_up()
        if gave_up is not None:
            raise ExtError(f"first boot gave up earlier: {gave_up}",
                           "`installer-ext firstboot --retry` tries again")
        with self.state.lock():
            done = self.state.done()
            if done is not None:
                return done
            previous = self.state.status() or {}
            n = previous.get("attempt")
            self.attempt = (n if isinstance(n, int) and n >= 0 and not self.opts.retry else 0) + 1
            try:
                return self._run_locked()
            except ExtError as exc:
                self._failed(exc)
                raise

    def _failed(self, exc: ExtError) -> None:
        reason = "; ".join(exc.lines)
        if self.attempt >= self.opts.max_attempts:
            why = f"gave up after {self.attempt} attempts: {reason}"
            self.state.give_up(why)
            self._mark_gave_up()
            self.status(FAILED, why)
            exc.lines.append(f"first boot gave up after {self.attempt} attempts (the unit stops); "
                             f"`installer-ext firstboot --retry` tries again")
        else:
            self.status(FAILED, reason)

    def _mark_gave_up(self) -> None:
        """Tell the reconciler to stop working on this node's request (best effort)."""
        if self.client is None or not self.node_name:
            return
        try:
            publish.mark(self.client, self.node_name, publish.GAVE_UP)
        except KubeError as exc:
            log.warning("could not mark node %s as given up: %s", self.node_name, exc)

    def _run_locked(self) -> dict[str, Any]:
        o = self.opts
        self.status(RUNNING, f"first boot attempt {self.attempt} of {o.max_attempts}")
        try:
            plan = load_plan(o.plan)
            self.node_name = inputs.node_name(o.root, o.node_name)
        except ExtError as exc:
            self.status(FAILED, "; ".join(exc.lines))
            raise
        bind = inputs.bound_devices(o.root, plan)
        role = credentials.node_role(o.root, o.role)
        self._moving("api", RUNNING)
        try:
            ready = wait_for_api(lambda: credentials.choose(o.kubeconfig, o.kubelet_kubeconfig, role),
                                 self.deadline(o.deadline), self.backoff(), self.clock,
                                 lambda cfg: make_client(o, cfg, self.clock, f"firstboot; node={self.node_name}"),
                                 on_wait=lambda why: self._moving("api", WAITING, why))
        except ExtError as exc:
            self.records["api"] = self.state.record("api", FAILED, {}, {"error": "; ".join(exc.lines)})
            raise
        client = self.client = ready.client
        try:
            self.records["api"] = self.state.record(
                "api", DONE, {"server": client.config.server, "identity": ready.identity},
                {"identity": ready.identity, "kubeconfig": ready.kubeconfig, "attempts": ready.attempts,
                 "elapsed_s": round(ready.elapsed, 3)})
            self._steps(client, ready.identity, plan, bind)
        finally:
            client.close()
        failed = {n: r for n, r in self.records.items() if r["status"] == FAILED}
        summary = self._summary(client, failed)
        if failed:
            lines = [f"first boot step {n} failed: {(r['result'] or {}).get('error') or 'see ' + self.state.steps_dir}"
                     for n, r in failed.items()]
            lines.append(f"first boot not done; state in {self.state.path}; the next run retries what is not done")
            raise ExtError(*lines)
        self.state.finish(summary)
        message = f"first boot done on {self.node_name}: {self._one_line(summary)}"
        self.status(DONE, message)
        log.info("%s", message)
        return summary

    def _steps(self, client: KubeClient, identity: str, plan: Plan, bind: inputs.BindView) -> None:
        o = self.opts
        gpu_rec = self.step("gpu", {"host_gpus": plan.host_gpus, "allowed": plan.device_plugins}, lambda: self._gpu(plan))
        chosen = list((gpu_rec.get("result") or {}).get("plugins") or [])
        operator = bool((gpu_rec.get("result") or {}).get("operator"))
        req_or_error = publish.build_request(o.root, plan, bind, chosen)
        labels = publish.node_labels(chosen, operator)
        if isinstance(req_or_error, str):
            log.warning("step request: failed: %s", req_or_error)
            self.records["request"] = self.state.record(
                "request", FAILED, {}, {"error": req_or_error, "source": bind.source, "warnings": bind.warnings})
            return
        req = req_or_error
        if identity == credentials.KUBELET and not req.needs_cluster() and not labels:
            why = "nothing this node needs from the cluster (no device, VF count, plugin or setting to turn on)"
            self.step("request", {"node": self.node_name, "request": req.digest, "labels": labels},
                      lambda: StepResult(SKIPPED, {"reason": why}))
            self.step("cluster", {"node": self.node_name, "request": req.digest, "identity": identity},
                      lambda: StepResult(SKIPPED, {"reason": why}))
            return
        req_rec = self.step("request", {"node": self.node_name, "request": req.digest, "labels": labels},
                            lambda: self._publish(client, req, labels, bind))
        if req_rec["status"] == FAILED:
            return
        cluster_rec = self.step("cluster", {"node": self.node_name, "request": req.digest, "identity": identity},
                                lambda: self._cluster(client, identity, req))
        if cluster_rec["status"] == FAILED:
            return
        claimed = list((cluster_rec.get("result") or {}).get("claimed") or [])
        sriov = list((cluster_rec.get("result") or {}).get("sriov") or [])
        self.step("handover", {"node": self.node_name, "request": req.digest, "claimed": claimed},
                  lambda: self._handover(claimed, sriov))
        self.step("allocatable", {"node": self.node_name, "plugins": chosen},
                  lambda: self._allocatable(client, chosen))

    # -- the steps -------------------------------------------------------------------------
    def _gpu(self, plan: Plan) -> StepResult:
        choice = gpu.choose(self.opts.root, plan, self.opts.nvidia_smi, self.opts.nvidia_smi_timeout)
        warnings = list(choice.warnings) + ([choice.operator_reason] if choice.operator else [])
        if choice.failed:
            why = "; ".join(f"{p.plugin}: {p.reason}" for p in choice.failed)
            return StepResult(FAILED, choice.to_json(), warnings, f"device plugin not confirmed: {why}")
        if not choice.plugins and not choice.operator:
            return StepResult(SKIPPED, choice.to_json(), warnings)
        return StepResult(DONE, choice.to_json(), warnings)

    def _publish(self, client: KubeClient, req: Request, labels: dict[str, str], bind: inputs.BindView) -> StepResult:
        written = publish.publish(client, self.node_name, req, labels, self.deadline(self.opts.allocatable_wait),
                                  self.backoff(), self.clock)
        return StepResult(DONE, {"request": req.body(), "digest": req.digest, "labels": labels, "written": written,
                                 "source": bind.source, "not_bound": bind.not_bound}, list(bind.warnings))

    def _cluster(self, client: KubeClient, identity: str, req: Request) -> StepResult:
        o = self.opts
        if identity == credentials.ADMIN:
            rec = Reconciler(client, Waits(o.addon_wait, o.claims_wait, o.claims_wait), self.backoff, self.clock,
                             by=self.node_name, max_conflicts=o.max_conflicts)
            result = publish.reconcile_own(rec, self.node_name, self.deadline(o.cluster_wait), self.backoff(),
                                           self.clock, on_wait=lambda why: self._moving("cluster", WAITING, why))
        else:
            result = publish.wait_for_answer(client, self.node_name, req.digest, self.deadline(o.cluster_wait),
                                             self.backoff(), self.clock,
                                             on_wait=lambda why: self._moving("cluster", WAITING, why))
        out = result.to_json() if result is not None else {}
        if result is None:
            return StepResult(FAILED, out, error=f"no answer to request {req.digest} of {self.node_name} within "
                              f"{o.cluster_wait:g}s: is installer-ext's reconciler running on a server node?")
        if result.state == R_DONE:
            return StepResult(DONE, out, result.conflicts)
        if result.state == R_FAILED:
            return StepResult(FAILED, out, result.conflicts, f"the cluster reconciler refused or could not finish: "
                              f"{result.reason}")
        return StepResult(FAILED, out, error=f"still waiting after {o.cluster_wait:g}s: {result.reason}")

    def _handover(self, claimed: list[str], sriov: list[dict[str, Any]]) -> StepResult:
        from installer_ext.firstboot.objects import pcidevice_name

        rec = handover.HandoverRecord(
            devices={a: pcidevice_name(self.node_name, a) for a in claimed},
            sriov={str(s["address"]): {"object": s.get("object") or "", "num_vfs": s.get("numVFs", 0)}
                   for s in sriov if s.get("status") in ("ready", "set")},
        )
        path = handover.write_record(self.opts.root, self.node_name, rec)
        cleared, problems = handover.release_overrides(self.opts.root, claimed)
        return StepResult(DONE, {"record": path, "overrides_cleared": cleared}, problems)

    def _allocatable(self, client: KubeClient, chosen: list[str]) -> StepResult:
        if not chosen:
            return StepResult(SKIPPED, {"reason": "no device plugin installed by installer-ext"})
        ok, why, counts = node.wait_allocatable(client, self.node_name, chosen, self.deadline(self.opts.allocatable_wait),
                                                self.backoff(), self.clock)
        return StepResult(DONE if ok else FAILED, {"allocatable": counts},
                          error=None if ok else f"after {self.opts.allocatable_wait:g}s: {why}")

    # -- summary ---------------------------------------------------------------------------
    def _summary(self, client: KubeClient, failed: dict[str, Any]) -> dict[str, Any]:
        steps = {n: {"status": r["status"], "result": r.get("result") or {}} for n, r in self.records.items()}
        res = {n: s["result"] for n, s in steps.items()}
        cluster = res.get("cluster") or {}
        from installer_ext.firstboot.objects import pcidevice_name

        return {
            "version": SUMMARY_VERSION,
            "node": self.node_name,
            "server": client.config.server,
            "identity": (res.get("api") or {}).get("identity"),
            "steps": steps,
            "claims": sorted(pcidevice_name(self.node_name, a) for a in cluster.get("claimed") or []),
            "plugins": (res.get("gpu") or {}).get("plugins", []),
            "operator": (res.get("gpu") or {}).get("operator"),
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
