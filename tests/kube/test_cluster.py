"""A cluster, not one machine: eight nodes' first boots at once against one API server.

Each node is its own process with its own fake host (sysfs, plan, bind status, state
dir) and node name. Some have an NVIDIA GPU kept on the host, some an AMD one, one both,
some none. Meanwhile another client keeps annotating the pci-pt-enable Setting (a UI
user, a controller): its updates must all survive ours.
"""

from __future__ import annotations

import threading

from tests.kube.conftest import argv, fake_tool, start_subprocess
from tests.kube.fakeapi import FakeApiServer, Request, Rule
from tests.kube.hosts import Fn, gpu_addresses, make_host
from tests.kube.sim import harvester_cluster

NODES = 8


def gpus_of(i: int) -> list[Fn]:
    nvidia = Fn("0000:01:00.0", "10de:2206", driver="nvidia", group=20)
    amd = Fn("0000:03:00.0", "1002:7310", driver="amdgpu", group=21)
    return [[nvidia], [amd], [nvidia, amd], []][i % 4]


def test_eight_nodes_at_once(api: FakeApiServer, kubeconfig: str, tmp_path) -> None:
    hosts = []
    for i in range(NODES):
        bound = [Fn(a, "10de:2204", group=40 + j) for j, a in enumerate(gpu_addresses(2 + i % 3))]
        hosts.append(make_host(str(tmp_path / f"node{i}"), f"harv-{i}", bound, gpus_of(i), kfd=True))
    harvester_cluster(api, hosts)
    smi = fake_tool(str(tmp_path / "bin" / "nvidia-smi"), "exit 0\n")

    writer = {"n": 0, "seen": 0}
    lock = threading.Lock()

    def other_client(req: Request) -> None:
        # every 7th request: another client bumps an annotation of the Setting
        with lock:
            writer["seen"] += 1
            if writer["seen"] % 7 or api.get("settings", "pci-pt-enable") is None:
                return
            writer["n"] += 1
            n = str(writer["n"])
            api.mutate("settings", "pci-pt-enable", lambda o: o["metadata"].setdefault("annotations", {}).update(ui=n))

    api.add_rule(Rule(times=None, before=other_client))
    slack = ["--deadline", "30", "--allocatable-wait", "20", "--claims-wait", "20"]  # 8 processes on 2 cores
    procs = [start_subprocess(argv(h, kubeconfig, *slack, nvidia_smi=smi)) for h in hosts]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    for h, (rc, err) in zip(hosts, results):
        assert rc == 0, f"{h.node}: {err}"

    # cluster-wide objects: written once, correct
    settings = {s["metadata"]["name"]: s for s in api.list("settings")}
    assert {n: s["value"] for n, s in settings.items()} == {"pci-pt-enable": "true", "gpu-enable": "true"}
    # GPU-less nodes plan gpu-enable "false": created so when they come first, never
    # turned off once a GPU node set it (the OR of the plans, whatever the order)
    assert api.write_count("settings", "gpu-enable") in (1, 2)
    assert api.write_count("settings", "pci-pt-enable") == 1 + writer["n"]  # ours once + every other update
    assert writer["n"] >= 3  # the other client really raced with the nodes
    assert settings["pci-pt-enable"]["metadata"]["annotations"]["ui"] == str(writer["n"])
    assert api.write_count("addons", "pcidevices-controller", "harvester-system") == 2  # seeded, then enabled once
    for name in ("nvidia-device-plugin-daemonset", "amdgpu-device-plugin-daemonset"):
        ds = api.get("daemonsets", name, "kube-system")
        assert ds["metadata"]["generation"] == 1 and api.write_count("daemonsets", name, "kube-system") == 1
    assert api.write_count("runtimeclasses", "nvidia") == 1
    creates = api.requests("POST", "/settings$")
    assert sorted(r.status for r in creates) == [201, 201] + [409] * (len(creates) - 2)

    # per-node objects: each node's own, complete, no duplicates
    claims = api.list("pcideviceclaims")
    assert len(claims) == sum(len(h.bound) for h in hosts)
    for h in hosts:
        mine = sorted(c["spec"]["address"] for c in claims if c["spec"]["nodeName"] == h.node)
        assert mine == sorted(f.address for f in h.bound)
        assert all(c["metadata"]["name"].startswith(h.node + "-") for c in claims if c["spec"]["nodeName"] == h.node)
        labels = api.get("nodes", h.node)["metadata"]["labels"]
        want = {f"installer-ext.harvesterhci.io/gpu-plugin-{p}" for p in h.done()["plugins"]}
        assert {k for k in labels if k.startswith("installer-ext") and not k.endswith("/first-boot")} == want
        assert labels["installer-ext.harvesterhci.io/first-boot"] == "done"
        assert labels["kubernetes.io/hostname"] == h.node
        assert sorted(h.done()["allocatable"]) == sorted({"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu"}[p]
                                                         for p in h.done()["plugins"])
    assert [h.done()["plugins"] for h in hosts[:4]] == [["nvidia"], ["amd"], ["amd", "nvidia"], []]

    per_node = {h.node: len(api.requests(agent=f"node={h.node})")) for h in hosts}
    print(f"\n8 nodes at once: {len(api.log)} API requests in all, per node {sorted(per_node.values())}")
