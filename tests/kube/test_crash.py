"""kill -9 at every point of a first boot, then a rerun: the same objects, no duplicates.

A reference run counts the API requests of a full first boot. Then, for each request k,
a fresh cluster and host, `python -m installer_ext firstboot` as a real process, killed
with SIGKILL by the fake server when request k arrives: after the server stored the
write and before it replies (the hardest case: the write landed, the process never
learnt it), or before the server processes it. The rerun must end with exit 0 and the
cluster exactly as the reference left it, each object written once.
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any

import pytest

from tests.kube.certs import Pki
from tests.kube.conftest import argv, fake_tool, run_inprocess, start_subprocess
from tests.kube.fakeapi import FakeApiServer, Request, Rule
from tests.kube.hosts import Fn, gpu_addresses, make_host
from tests.kube.sim import harvester_cluster

NVIDIA_GPU = Fn("0000:01:00.0", "10de:2206", driver="nvidia", group=20)


def scenario(api: FakeApiServer, tmp_path) -> list[str]:
    host = make_host(str(tmp_path / "root"), "node1", [Fn(a, group=30 + i) for i, a in enumerate(gpu_addresses(3))],
                     [NVIDIA_GPU])
    harvester_cluster(api, [host], gpus={"node1": {"nvidia": 1}})
    smi = fake_tool(str(tmp_path / "bin" / "nvidia-smi"), "exit 0\n")
    kc = api.kubeconfig(str(tmp_path / "rke2.yaml"))
    return argv(host, kc, nvidia_smi=smi)


def cluster_state(api: FakeApiServer) -> dict[str, Any]:
    devices = {d["metadata"]["name"]: d["metadata"]["uid"] for d in api.list("pcidevices")}
    claims = {}
    drivers = {d["metadata"]["name"]: d["metadata"]["annotations"]["harvesterhci.io/pcideviceDriver"]
               for d in api.list("pcidevices")}
    for c in api.list("pcideviceclaims"):
        (owner,) = c["metadata"]["ownerReferences"]
        assert owner["uid"] == devices[owner["name"]] and owner["name"] == c["metadata"]["name"]
        claims[c["metadata"]["name"]] = (c["spec"], c["metadata"]["labels"])
    node = api.get("nodes", "node1")
    return {
        "settings": {s["metadata"]["name"]: s["value"] for s in api.list("settings")},
        "drivers": drivers,
        "addon": api.get("addons", "pcidevices-controller", "harvester-system")["spec"]["enabled"],
        "claims": claims,
        "daemonsets": {d["metadata"]["name"]: d["spec"] for d in api.list("daemonsets")},
        "runtimeclasses": {r["metadata"]["name"]: r["handler"] for r in api.list("runtimeclasses")},
        "node": (node["metadata"]["labels"], node["status"]["allocatable"]),
        "writes": {
            "settings": sorted(api.write_count("settings", s) for s in ("pci-pt-enable", "gpu-enable")),
            "claims": sorted(api.write_count("pcideviceclaims", n) for n in claims),
            "daemonset": api.write_count("daemonsets", "nvidia-device-plugin-daemonset", "kube-system"),
            "runtimeclass": api.write_count("runtimeclasses", "nvidia"),
            "addon": api.write_count("addons", "pcidevices-controller", "harvester-system"),
            "node": api.write_count("nodes", "node1"),
            "pcidevices": sorted(api.write_count("pcidevices", n) for n in devices),
        },
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> tuple[dict[str, Any], list[str]]:
    """The cluster after an uninterrupted first boot, and its request paths in order."""
    tmp = tmp_path_factory.mktemp("reference")
    with FakeApiServer(pki) as api:
        args = scenario(api, tmp)
        from installer_ext.cli import main

        assert main(["firstboot", *args, "--quiet"]) == 0
        mine = [f"{r.method} {r.path}" for r in api.log if "firstboot" in r.agent]
        return cluster_state(api), mine


def killed_then_rerun(pki: Pki, tmp_path, k: int, when: str, capsys) -> tuple[dict[str, Any], str]:
    with FakeApiServer(pki) as api:
        args = scenario(api, tmp_path)
        seen = {"n": 0}
        proc_box: dict[str, subprocess.Popen[str]] = {}

        def kill_at_k(req: Request) -> None:
            if "firstboot" not in req.agent:
                return
            seen["n"] += 1
            if seen["n"] == k:
                p = proc_box["p"]
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=10)

        api.add_rule(Rule(times=None, **{when: kill_at_k}))
        proc_box["p"] = p = start_subprocess(args)
        _, err = p.communicate(timeout=60)
        assert p.returncode == -signal.SIGKILL, f"request {k} never came: {err}"
        api.rules.clear()
        killed_at = f"{api.log[-1].method} {api.log[-1].path}" if api.log else "?"
        rc, err = run_inprocess(args + ["--quiet"], capsys)
        assert rc == 0, f"rerun after kill at request {k} ({when} {killed_at}): {err}"
        return cluster_state(api), killed_at


def test_reference_run_is_what_the_crash_runs_compare_to(reference) -> None:
    state, requests = reference
    assert len(state["claims"]) == 3 and state["settings"] == {"gpu-enable": "true", "pci-pt-enable": "true"}
    # node: registered, the request published, the answer written, the GPU in allocatable
    assert state["writes"] == {"settings": [1, 1], "claims": [1, 1, 1], "daemonset": 1, "runtimeclass": 1,
                               "addon": 2, "node": 4, "pcidevices": [1, 2, 2, 2]}
    # the give-back driver is what the binder recorded, not the vfio-pci the controller saw
    assert set(state["drivers"].values()) == {"nvidia"}
    assert requests[0] == "GET /apis/harvesterhci.io/v1beta1" and 15 <= len(requests) <= 25, requests


def test_kill_after_each_write_landed_then_rerun(reference, pki: Pki, tmp_path_factory, capsys) -> None:
    state, requests = reference
    writes = [k for k, r in enumerate(requests, 1) if not r.startswith("GET ")]
    # 2 settings, addon, 3 give-back drivers, 3 claims, RuntimeClass, DaemonSet, the request, the answer
    assert len(writes) == 13
    for k in writes:
        got, at = killed_then_rerun(pki, tmp_path_factory.mktemp(f"after{k}"), k, "after", capsys)
        assert got == state, f"kill -9 after request {k} ({at}) then rerun: cluster differs"


def test_kill_before_the_first_request_of_each_step_then_rerun(reference, pki: Pki, tmp_path_factory, capsys) -> None:
    state, requests = reference
    firsts, last = [], None
    for i, r in enumerate(requests, 1):
        kind = r.split("/")[-2] if r.count("/") > 2 else r
        if kind != last:
            firsts.append(i)
        last = kind
    assert len(firsts) >= 6
    for k in firsts:
        got, at = killed_then_rerun(pki, tmp_path_factory.mktemp(f"before{k}"), k, "before", capsys)
        assert got == state, f"kill -9 before request {k} ({at}) then rerun: cluster differs"
