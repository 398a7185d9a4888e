"""The fake API server speaks the protocol: the real kubectl drives it.

kubectl does its own discovery (/api, /apis, /apis/<group>/<version>), asks for
OpenAPI v3 to decide on server-side field validation, sends server-side apply as
application/apply-patch+yaml and labels with a merge patch: if the fake got any of that
wrong, kubectl would say so.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import require_tool
from tests.kube.fakeapi import FakeApiServer
from tests.kube.sim import seed_harvester

SETTING = """\
apiVersion: harvesterhci.io/v1beta1
kind: Setting
metadata:
  name: pci-pt-enable
value: "true"
"""

RUNTIMECLASS = """\
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata:
  name: nvidia
handler: nvidia
"""


@pytest.fixture
def kubectl(api: FakeApiServer, kubeconfig: str, tmp_path):
    exe = require_tool("kubectl")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path / "home"), "KUBECONFIG": kubeconfig}

    def run(*args: str, stdin: str | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([exe, "--cache-dir", str(tmp_path / "cache"), "--request-timeout", "20s", *args],
                           input=stdin, env=env, capture_output=True, text=True, timeout=60)
        if ok:
            assert p.returncode == 0, f"kubectl {' '.join(args)}: {p.stderr}"
        return p

    return run


def test_kubectl_get_nodes_and_custom_resources(api: FakeApiServer, kubectl) -> None:
    seed_harvester(api, ["harv-0", "harv-1"])
    out = kubectl("get", "nodes").stdout.splitlines()
    assert out[0].split() == ["NAME", "AGE"] and [line.split()[0] for line in out[1:]] == ["harv-0", "harv-1"]
    assert kubectl("get", "addons.harvesterhci.io", "-A", "-o", "name").stdout.strip() == \
        "addon.harvesterhci.io/pcidevices-controller"
    missing = kubectl("get", "settings.harvesterhci.io", "nope", ok=False)
    assert missing.returncode == 1
    assert 'settings.harvesterhci.io "nope" not found' in missing.stderr
    assert any(r.path == "/apis" for r in api.log) and any(r.path == "/apis/harvesterhci.io/v1beta1" for r in api.log)


def test_kubectl_apply_server_side_creates_then_changes_nothing(api: FakeApiServer, kubectl) -> None:
    first = kubectl("apply", "--server-side", "-f", "-", stdin=SETTING + "---\n" + RUNTIMECLASS)
    assert first.stdout.split("\n")[:2] == ["setting.harvesterhci.io/pci-pt-enable serverside-applied",
                                            "runtimeclass.node.k8s.io/nvidia serverside-applied"]
    applies = api.requests("PATCH")
    assert {r.content_type for r in applies} == {"application/apply-patch+yaml"}
    assert [r.status for r in applies] == [201, 201]
    assert applies[0].query["fieldManager"] == "kubectl" and applies[0].query["force"] == "false"
    rv = api.get("settings", "pci-pt-enable")["metadata"]["resourceVersion"]
    kubectl("apply", "--server-side", "-f", "-", stdin=SETTING)
    assert api.get("settings", "pci-pt-enable")["metadata"]["resourceVersion"] == rv
    got = kubectl("get", "setting.harvesterhci.io", "pci-pt-enable", "-o", "jsonpath={.value}").stdout
    assert got == "true"


def test_kubectl_apply_conflict_then_force(api: FakeApiServer, kubectl, kubeconfig: str) -> None:
    from installer_ext.firstboot.objects import FIELD_MANAGER, RUNTIMECLASSES
    from installer_ext.kube.client import KubeClient
    from installer_ext.kube.kubeconfig import load

    with KubeClient(load(kubeconfig)) as c:
        c.apply(RUNTIMECLASSES, {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                                 "metadata": {"name": "nvidia"}, "handler": "nvidia"}, FIELD_MANAGER)
    changed = RUNTIMECLASS.replace("handler: nvidia", "handler: nvidia-cdi")
    clash = kubectl("apply", "--server-side", "-f", "-", stdin=changed, ok=False)
    assert clash.returncode == 1 and 'conflict with "installer-ext"' in clash.stderr
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=changed)
    assert api.get("runtimeclasses", "nvidia")["handler"] == "nvidia-cdi"


def test_kubectl_label_keeps_other_labels(api: FakeApiServer, kubectl) -> None:
    seed_harvester(api, ["harv-0"], labels={"topology.kubernetes.io/zone": "rack1"})
    assert kubectl("label", "node", "harv-0", "installer-ext.harvesterhci.io/gpu-plugin-nvidia=true").stdout.strip() \
        == "node/harv-0 labeled"
    labels = api.get("nodes", "harv-0")["metadata"]["labels"]
    assert labels == {"kubernetes.io/hostname": "harv-0", "topology.kubernetes.io/zone": "rack1",
                      "installer-ext.harvesterhci.io/gpu-plugin-nvidia": "true"}
    clash = kubectl("label", "node", "harv-0", "topology.kubernetes.io/zone=rack2", ok=False)
    assert clash.returncode == 1 and "already has a value (rack1)" in clash.stderr
    kubectl("label", "node", "harv-0", "topology.kubernetes.io/zone-")
    assert "topology.kubernetes.io/zone" not in api.get("nodes", "harv-0")["metadata"]["labels"]


def test_kubectl_sees_allocatable_change(api: FakeApiServer, kubectl) -> None:
    seed_harvester(api, ["harv-0"])
    jsonpath = "jsonpath={.status.allocatable.nvidia\\.com/gpu}"
    assert kubectl("get", "node", "harv-0", "-o", jsonpath).stdout == ""
    api.mutate("nodes", "harv-0", lambda o: o["status"]["allocatable"].update({"nvidia.com/gpu": "2"}))
    assert kubectl("get", "node", "harv-0", "-o", jsonpath).stdout == "2"


def test_kubectl_sees_what_firstboot_wrote(api: FakeApiServer, kubectl, kubeconfig: str, tmp_path, capsys,
                                            nvidia_smi_ok: str) -> None:
    from tests.kube.conftest import argv, run_inprocess
    from tests.kube.hosts import Fn, make_host
    from tests.kube.sim import harvester_cluster

    host = make_host(str(tmp_path / "root"), "harv-0", [Fn("0000:41:00.0")],
                     [Fn("0000:01:00.0", "10de:2206", driver="nvidia")])
    harvester_cluster(api, [host])
    assert run_inprocess(argv(host, kubeconfig, nvidia_smi=nvidia_smi_ok), capsys)[0] == 0
    claims = kubectl("get", "pcideviceclaims.devices.harvesterhci.io", "-o",
                     "jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.spec.address}{end}").stdout
    assert claims == "harv-0-000041000 harv-0 0000:41:00.0"
    ds = kubectl("get", "daemonset", "-n", "kube-system", "-o", "name").stdout.split()
    assert ds == ["daemonset.apps/nvidia-device-plugin-daemonset"]
    assert kubectl("get", "node", "harv-0", "-o", "jsonpath={.status.allocatable.nvidia\\.com/gpu}").stdout == "1"
