"""Step `gpu`: which container device plugins this host can run.

The PCI vendor of each host GPU (kept on its host driver by the plan) decides the
candidate: 10de NVIDIA, 1002 AMD. A candidate is confirmed on the host:
- NVIDIA: `nvidia-smi` exits 0 within a timeout: the driver and tools are on the host,
  and our pinned k8s-device-plugin can serve the GPUs. A stock Harvester node has no
  NVIDIA driver and no `nvidia-smi` (the vGPU host driver lives inside the
  nvidia-driver-toolkit addon's container: harvester/docs advanced/addons/
  nvidiadrivertoolkit.md). What Harvester documents for GPUs in bare-metal containers
  is the NVIDIA GPU Operator, which brings its own driver container, toolkit and device
  plugin, with the node label `harvesterhci.io/gpu-baremetal-workloads: "true"` that
  keeps Harvester's SRIOVGPUDevice management and the nvidia-driver-toolkit off the
  node (harvester/docs versioned_docs/version-v1.9/rancher/baremetal-workloads.md). So
  a missing `nvidia-smi` is not a failure to retry: the node gets that label, first
  boot says once what is missing (deploy the GPU Operator: docs/firstboot.md) and
  finishes; our own device plugin is not installed (two plugins would register
  nvidia.com/gpu). An `nvidia-smi` that is there but fails or hangs (killed with its
  whole process group at the timeout) is a failure: the driver is installed and broken,
  and never a reason to pick another vendor;
- AMD: ROOT/sys/class/kfd exists (amdgpu loaded; the ROCm plugin registers nothing
  without it). amdgpu is in the stock kernel, so a missing kfd is a failure.
A mixed host gets both; no host GPU, none. The plan's `device_plugins` (what the user
allowed: devicePlugin auto/nvidia/amd/none) bounds the choice: a vendor it does not
list is a warning, not an install.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from typing import Any

from installer_ext.firstboot.objects import GPU_BAREMETAL_LABEL
from installer_ext.host.pci import read_function
from installer_ext.host.vendors import GPU_PLUGIN_VENDORS
from installer_ext.host.sysfs import SysRoot
from installer_ext.plan.model import Plan

log = logging.getLogger(__name__)


@dataclass
class Probe:
    plugin: str
    gpus: list[str]
    ok: bool
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"plugin": self.plugin, "gpus": self.gpus, "ok": self.ok, "reason": self.reason}


@dataclass
class Choice:
    plugins: list[str] = field(default_factory=list)  # confirmed: apply these
    probes: list[Probe] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    operator: list[str] = field(default_factory=list)  # NVIDIA GPUs left to the GPU Operator
    operator_reason: str = ""

    @property
    def failed(self) -> list[Probe]:
        return [p for p in self.probes if not p.ok]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"plugins": self.plugins, "probes": [p.to_json() for p in self.probes],
                               "warnings": self.warnings}
        if self.operator:
            out["operator"] = {"gpus": self.operator, "reason": self.operator_reason}
        return out


NOT_FOUND = "not found"


def run_nvidia_smi(command: str, timeout: float) -> tuple[bool, str]:
    """(ok, reason). Runs in its own session so a hang is killed with its children."""
    path = shutil.which(command) if os.sep not in command else command
    if path is None or not os.path.exists(path):
        return False, f"{command}: {NOT_FOUND}"
    try:
        proc = subprocess.Popen(
            [path], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        return False, f"{path}: cannot run: {exc.strerror or exc}"
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # a grandchild left the group and holds the pipe
            proc.kill()
        return False, f"{path}: no answer within {timeout:g}s (killed)"
    if proc.returncode != 0:
        last = (err or out).decode("utf-8", "replace").strip().splitlines()
        return False, f"{path}: exit status {proc.returncode}" + (f": {last[-1][:200]}" if last else "")
    return True, f"{path}: exit status 0"


def choose(root: str, plan: Plan, nvidia_smi: str, nvidia_smi_timeout: float) -> Choice:
    choice = Choice()
    if not plan.host_gpus:
        log.info("no host GPUs in the plan: no device plugin")
        return choice
    sr = SysRoot(root)
    by_plugin: dict[str, list[str]] = {}
    for address in plan.host_gpus:
        fn = read_function(sr, address, want_config=False)
        plugin = GPU_PLUGIN_VENDORS.get(fn.vendor_id or "")
        if plugin is None:
            choice.warnings.append(f"host GPU {address}: vendor {fn.vendor_id or 'unknown'} has no device plugin")
            continue
        by_plugin.setdefault(plugin, []).append(address)
    allowed = set(plan.device_plugins)
    for plugin in sorted(by_plugin):
        gpus = by_plugin[plugin]
        if plugin not in allowed:
            choice.warnings.append(f"host GPUs {', '.join(gpus)} are {plugin} but the plan allows "
                                   f"{', '.join(sorted(allowed)) or 'no'} device plugin: not installed")
            continue
        if plugin == "nvidia":
            ok, reason = run_nvidia_smi(nvidia_smi, nvidia_smi_timeout)
            if not ok and reason.endswith(NOT_FOUND):
                choice.operator = list(gpus)
                choice.operator_reason = (
                    f"NVIDIA GPUs {', '.join(gpus)} are kept for containers but this node has no NVIDIA driver "
                    f"({reason}; a stock Harvester node ships none): deploy the NVIDIA GPU Operator (see "
                    f"docs/firstboot.md); this node is labelled {GPU_BAREMETAL_LABEL}=true for it")
                log.warning("%s", choice.operator_reason)
                continue
        else:
            kfd = os.path.join(sr.sys, "class", "kfd")
            ok = os.path.isdir(kfd)
            reason = f"{kfd} present" if ok else f"{kfd} missing (amdgpu not loaded)"
        choice.probes.append(Probe(plugin, gpus, ok, reason))
        if ok:
            choice.plugins.append(plugin)
        (log.info if ok else log.warning)("%s device plugin for %s: %s (%s)", plugin, ", ".join(gpus),
                                          "confirmed" if ok else "NOT confirmed", reason)
    for plugin in sorted(allowed - set(by_plugin)):
        choice.warnings.append(f"the plan expects the {plugin} device plugin but no host GPU of that vendor is here")
    for w in choice.warnings:
        log.warning("%s", w)
    return choice
