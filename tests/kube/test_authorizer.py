"""The fake API server gives a kubelet identity what kube-apiserver gives it, no more.

A design that needs more than a joined node's kubelet credentials allow must fail the
tests, so the limits are tested here first (node authorizer + NodeRestriction, cited in
fakeapi.py), and the first-boot tests then assert that a node never got a 403.
"""

from __future__ import annotations

import pytest

from installer_ext.firstboot.objects import NODES, PCIDEVICECLAIMS, RUNTIMECLASSES, SETTINGS
from installer_ext.kube import kubeconfig as kcfg
from installer_ext.kube.client import KubeClient
from installer_ext.kube.errors import ApiError
from tests.kube.certs import Pki, node_client_cert
from tests.kube.fakeapi import FakeApiServer
from tests.kube.sim import seed_harvester


@pytest.fixture
def kubelet(api: FakeApiServer, pki: Pki, tmp_path) -> KubeClient:
    seed_harvester(api, ["harv-1", "harv-2"])
    crt, key = node_client_cert(pki, "harv-1")
    path = api.kubeconfig(str(tmp_path / "kubelet.yaml"), cert_pem=Pki.read(crt), key_pem=Pki.read(key))
    return KubeClient(kcfg.load(path), attempts=1)


def forbidden(fn) -> ApiError:
    with pytest.raises(ApiError) as exc:
        fn()
    assert exc.value.status == 403 and exc.value.reason == "Forbidden"
    return exc.value


def test_a_kubelet_reads_and_patches_its_own_node(kubelet: KubeClient, api: FakeApiServer) -> None:
    assert kubelet.get(NODES, "harv-1")["metadata"]["name"] == "harv-1"
    kubelet.merge_patch(NODES, "harv-1", {"metadata": {
        "labels": {"installer-ext.harvesterhci.io/gpu-plugin-amd": "true", "harvesterhci.io/gpu-baremetal-workloads": "true"},
        "annotations": {"installer-ext.harvesterhci.io/request": "{}"}}})
    labels = api.get("nodes", "harv-1")["metadata"]["labels"]
    assert labels["installer-ext.harvesterhci.io/gpu-plugin-amd"] == "true"
    assert kubelet.served_resources("harvesterhci.io", "v1beta1") is not None  # discovery is open
    assert kubelet.list(RUNTIMECLASSES) == []  # node rules: runtimeclasses get/list/watch


def test_a_kubelet_cannot_touch_other_nodes(kubelet: KubeClient) -> None:
    err = forbidden(lambda: kubelet.get(NODES, "harv-2"))
    assert err.message == ('nodes "harv-2" is forbidden: User "system:node:harv-1" cannot get resource "nodes" in '
                           "API group \"\" at the cluster scope: node 'harv-1' cannot read 'harv-2', only its own "
                           "Node object")
    forbidden(lambda: kubelet.list(NODES))
    err = forbidden(lambda: kubelet.merge_patch(NODES, "harv-2", {"metadata": {"labels": {"a": "b"}}}))
    assert err.message == 'nodes "harv-2" is forbidden: node "harv-1" is not allowed to modify node "harv-2"'


@pytest.mark.parametrize("label", ["node-role.kubernetes.io/worker", "node-restriction.kubernetes.io/x",
                                   "k8s.io/anything"])
def test_noderestriction_labels_and_taints(kubelet: KubeClient, label: str) -> None:
    err = forbidden(lambda: kubelet.merge_patch(NODES, "harv-1", {"metadata": {"labels": {label: "true"}}}))
    assert err.message.endswith(f"is not allowed to modify labels: {label}")
    forbidden(lambda: kubelet.merge_patch(NODES, "harv-1", {"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}))
    # the kubelet's own labels stay allowed
    kubelet.merge_patch(NODES, "harv-1", {"metadata": {"labels": {"topology.kubernetes.io/zone": "rack1"}}})


def test_a_kubelet_cannot_create_claims_or_write_settings(kubelet: KubeClient) -> None:
    claim = {"apiVersion": "devices.harvesterhci.io/v1beta1", "kind": "PCIDeviceClaim",
             "metadata": {"name": "harv-1-000041000"}, "spec": {"address": "0000:41:00.0", "nodeName": "harv-1"}}
    err = forbidden(lambda: kubelet.create(PCIDEVICECLAIMS, claim))
    assert err.message == ('pcideviceclaims.devices.harvesterhci.io is forbidden: User "system:node:harv-1" cannot '
                           'create resource "pcideviceclaims" in API group "devices.harvesterhci.io" at the cluster scope')
    forbidden(lambda: kubelet.get(SETTINGS, "pci-pt-enable"))
    forbidden(lambda: kubelet.list(PCIDEVICECLAIMS))
