"""A cluster: one first node and two joined agents, each with its own fake machine, plan,
binder run and first boot, started in any order, killed with SIGKILL at every step.

- harv-0, the first node (rancherd `cluster-init`, RKE2's admin kubeconfig): RTX 3080 +
  audio and an I210 to VMs; it also runs the reconcile timer (`firstboot --reconcile`).
- harv-1, a joined agent (kubelet credentials only): a Radeon to VMs, one kept for
  containers (ROCm plugin), X710 port 1 with 4 VFs for VMs.
- harv-2, a joined agent: one RTX 3080 to VMs, one kept for containers on a node with
  no NVIDIA driver (left to the GPU Operator).

systemd is played by a supervisor per node that restarts a first boot that failed or
was killed (Restart=on-failure), bounded by the program's own attempts. At the end every
planned device of every node is on vfio-pci and claimed once, with the driver it had
before in its PCIDevice's give-back annotation; no kubelet identity was refused
anything; no node needed more than the attempts the kills explain.
"""

from __future__ import annotations

import os
import signal

import pytest

from installer_ext import paths
from installer_ext.firstboot.objects import PCIDEVICE_DRIVER_ANNOTATION
from tests.kube.certs import Pki
from tests.kube.cluster_sim import ClusterSim, Kill, Supervisor, run_cluster
from tests.kube.fakeapi import FakeApiServer

pytestmark = pytest.mark.slow

VFS = ["0000:02:0a.0", "0000:02:0a.1", "0000:02:0a.2", "0000:02:0a.3"]
PLANNED = {  # node -> address -> the driver it had before the binder bound it
    "harv-0": {"0000:01:00.0": "nvidia", "0000:01:00.1": "snd_hda_intel", "0000:03:00.0": "igb"},
    "harv-1": {"0000:03:00.0": "amdgpu", "0000:03:00.1": "snd_hda_intel", **dict.fromkeys(VFS, "")},
    "harv-2": {"0000:01:00.0": "nvidia", "0000:01:00.1": "snd_hda_intel"},
}
KEPT = {"harv-1": {"0000:04:00.0": "amdgpu"}, "harv-2": {"0000:02:00.0": "nvidia"}}


KILLS = [
    Kill("harv-0", "before", lambda n, r: r.path == "/apis/harvesterhci.io/v1beta1", "server: api"),
    Kill("harv-0", "before", lambda n, r: r.method == "PATCH" and r.path == "/api/v1/nodes/harv-0", "server: request"),
    Kill("harv-0", "after", lambda n, r: r.method == "POST" and r.path.endswith("/pcideviceclaims"),
         "server: cluster, after its first claim landed"),
    Kill("harv-0", "after", lambda n, r: r.method == "PATCH" and r.path == "/api/v1/nodes/harv-0"
         and b"/result" in r.body, "server: cluster, after its answer landed"),
    Kill("harv-1", "before", lambda n, r: r.path == "/apis/harvesterhci.io/v1beta1", "agent: api"),
    Kill("harv-1", "after", lambda n, r: r.method == "PATCH" and r.path == "/api/v1/nodes/harv-1",
         "agent: request, after it landed"),
    Kill("harv-1", "before", lambda n, r: r.method == "GET" and r.path == "/api/v1/nodes/harv-1"
         and os.path.exists(os.path.join(n.state_dir, "steps", "request.json")), "agent: cluster (waiting)"),
    Kill("harv-1", "before", lambda n, r: r.method == "GET" and r.path == "/api/v1/nodes/harv-1"
         and os.path.exists(paths.under(n.root, paths.CONTROLLER_RECORD_FILE)), "agent: allocatable (after handover)"),
    Kill("timer", "after", lambda n, r: r.method == "PATCH" and "/sriovnetworkdevices/" in r.path,
         "reconciler: after numVFs landed"),
    Kill("timer", "after", lambda n, r: r.method == "POST" and r.path.endswith("/pcideviceclaims")
         and b"harv-2" in r.body, "reconciler: after an agent's claim landed"),
    Kill("harv-2", "after", lambda n, r: r.method == "PATCH" and r.path == "/api/v1/nodes/harv-2",
         "agent without NVIDIA driver: request"),
]
ORDERS = [("harv-0", "harv-1", "harv-2"), ("harv-2", "harv-1", "harv-0"), ("harv-1", "harv-0", "harv-2")]


def assert_converged(sim: ClusterSim, api: FakeApiServer, kill: Kill | None) -> None:
    sups: dict[str, Supervisor] = sim.supervisors  # type: ignore[attr-defined]
    for name, node in sim.nodes.items():
        runs = sups[name].runs
        assert runs and runs[-1][0] == 0, f"{name}: {[rc for rc, _ in runs]}\n{runs[-1][1] if runs else ''}"
        # one run, or two when this node's run was the one killed
        killed_here = kill is not None and kill.who == name and kill.fired
        if killed_here:
            assert [rc for rc, _ in runs].count(-signal.SIGKILL) == 1, f"{name}: {[rc for rc, _ in runs]}"
        assert len(runs) <= (2 if killed_here else 1) + _waits(runs), f"{name}: {[rc for rc, _ in runs]}"
        status = node.status()
        assert status["state"] == "done" and status["attempt"] == len(runs), status
        assert node.done() is not None
    claims = {c["metadata"]["name"]: c for c in api.list("pcideviceclaims")}
    want = {f"{n}-{a.replace(':', '').replace('.', '')}": (n, a) for n, addrs in PLANNED.items() for a in addrs}
    assert sorted(claims) == sorted(want)
    created = [r for r in api.requests("POST", "/pcideviceclaims$") if r.status == 201]
    assert len(created) == len(want), "a claim was created twice"
    assert not [r for r in api.requests("POST", "/pcideviceclaims$") if r.status == 500], "a claim met the webhook"
    for name, (node, address) in want.items():
        pd = api.get("pcidevices", name)
        assert pd["metadata"]["annotations"][PCIDEVICE_DRIVER_ANNOTATION] == PLANNED[node][address], name
        assert claims[name]["metadata"]["ownerReferences"][0]["uid"] == pd["metadata"]["uid"]
    for name, node in sim.nodes.items():
        assert {a: node.kernel.driver_of(a) for a in PLANNED[name]} == dict.fromkeys(PLANNED[name], "vfio-pci")
        assert {a: node.kernel.driver_of(a) for a in KEPT.get(name, {})} == KEPT.get(name, {})
    for user in ("system:node:harv-1", "system:node:harv-2"):
        assert not [r for r in api.requests_by(user) if r.status == 403], f"{user} was refused something"
        assert api.requests_by(user), f"{user} never used its own credentials"
    assert {s["metadata"]["name"]: s["value"] for s in api.list("settings")} == {"pci-pt-enable": "true",
                                                                                 "gpu-enable": "true"}
    labels2 = api.get("nodes", "harv-2")["metadata"]["labels"]
    assert labels2["harvesterhci.io/gpu-baremetal-workloads"] == "true"
    assert api.get("daemonsets", "nvidia-device-plugin-daemonset", "kube-system") is None
    assert "GPU Operator" in " ".join(sim.nodes["harv-2"].done()["warnings"])
    assert sim.nodes["harv-1"].done()["allocatable"] == {"amd.com/gpu": 1}
    assert sim.errors == []
    for node in sim.nodes.values():
        assert node.controller.log.errors == [], node.controller.log.errors


def _waits(runs: list[tuple[int, str]]) -> int:
    """Runs that ended because they waited too long for a node that was not installed
    yet (an agent started before the server): bounded, and said so."""
    return sum(1 for rc, err in runs if rc == 1 and ("still waiting" in err or "no answer to request" in err))


@pytest.mark.parametrize("order", ORDERS, ids=["server-first", "agents-first", "mixed"])
def test_cluster_in_any_order(api: FakeApiServer, pki: Pki, tmp_path, order) -> None:
    sim = run_cluster(api, pki, str(tmp_path), order, None, restart_controller="harv-1", expect=PLANNED)
    assert_converged(sim, api, None)
    print(f"\ncluster of 3 ({'/'.join(order)}): {len(api.log)} API requests in all")


@pytest.mark.parametrize("kill", KILLS, ids=[k.label for k in KILLS])
def test_kill_9_at_every_step(api: FakeApiServer, pki: Pki, tmp_path, kill: Kill) -> None:
    order = ORDERS[KILLS.index(kill) % len(ORDERS)]
    sim = run_cluster(api, pki, str(tmp_path), order, kill, expect=PLANNED)
    assert kill.fired, f"the kill point {kill.label!r} was never reached"
    if kill.who == "timer":
        assert -signal.SIGKILL in [rc for rc, _ in sim.timer_passes]  # type: ignore[attr-defined]
    assert_converged(sim, api, kill)
