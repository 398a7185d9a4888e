"""The rest of the cluster, simulated around the fake API server.

- `seed_harvester`: what a freshly deployed Harvester has (the pcidevices-controller
  Addon, disabled) and the kubelet-registered Node objects;
- `FakePciController`: the inventory view of the pcidevices controller (no kernel): once
  the Addon is enabled, lists every node's PCI functions as PCIDevice objects (named and
  annotated as harvester/pcidevices does), optionally only after some LIST requests
  (they "appear later"). tests/kube/controller.py has the whole controller on a
  simulated kernel, for the tests of its behaviours;
- `FakeKubelet`: once a node carries a device plugin's label and that plugin's
  DaemonSet exists, the node's allocatable shows the GPUs after a few more GETs.
Both react in the request thread before the reply goes out, so the tests are
deterministic: no timers.
"""

from __future__ import annotations

import threading
from typing import Any

from installer_ext.firstboot.objects import PLUGIN_RESOURCES, pcidevice_name, plugin_label
from tests.kube.fakeapi import FakeApiServer, Request
from tests.kube.hosts import Fn

DAEMONSETS = {"nvidia": "nvidia-device-plugin-daemonset", "amd": "amdgpu-device-plugin-daemonset"}


def seed_harvester(api: FakeApiServer, nodes: list[str], addon: bool = True, labels: dict[str, str] | None = None) -> None:
    if addon:
        api.put({"apiVersion": "harvesterhci.io/v1beta1", "kind": "Addon",
                 "metadata": {"name": "pcidevices-controller", "namespace": "harvester-system"},
                 "spec": {"enabled": False, "repo": "http://harvester-cluster-repo.cattle-system.svc/charts",
                          "chart": "harvester-pcidevices-controller", "version": "0.4.1"}})
    for n in nodes:
        api.put({"apiVersion": "v1", "kind": "Node",
                 "metadata": {"name": n, "labels": {"kubernetes.io/hostname": n, **(labels or {})}},
                 "status": {"allocatable": {"cpu": "16", "memory": "65536Mi", "pods": "110"}}})


class FakePciController:
    def __init__(self, api: FakeApiServer, inventory: dict[str, list[Fn]], appear_after_lists: int = 0) -> None:
        self.api = api
        self.inventory = inventory
        self.appear_after = appear_after_lists
        self.lists = 0
        self.created = False
        self.lock = threading.Lock()
        api.observers.append(self.observe)

    def _enabled(self) -> bool:
        addon = self.api.get("addons", "pcidevices-controller", "harvester-system")
        return bool(addon and (addon.get("spec") or {}).get("enabled"))

    def observe(self, api: FakeApiServer, req: Request) -> None:
        with self.lock:
            if self.created or not self._enabled():
                return
            if req.method == "GET" and req.path.endswith("/pcidevices"):
                self.lists += 1
            if self.lists < self.appear_after:
                return
            for node, fns in sorted(self.inventory.items()):
                for fn in fns:
                    api.put(pcidevice(node, fn))
            self.created = True


def pcidevice(node: str, fn: Fn) -> dict[str, Any]:
    """A PCIDevice as harvester/pcidevices creates it (v1beta1.NewPCIDeviceForHostname:
    label nodename, the driver in use recorded in harvesterhci.io/pcideviceDriver)."""
    return {
        "apiVersion": "devices.harvesterhci.io/v1beta1",
        "kind": "PCIDevice",
        "metadata": {"name": pcidevice_name(node, fn.address), "labels": {"nodename": node},
                     "annotations": {"harvesterhci.io/pcideviceDriver": fn.driver or ""}},
        "status": {"address": fn.address, "vendorId": fn.vendor, "deviceId": fn.device, "classId": fn.cls[:4],
                   "iommuGroup": str(fn.group), "nodeName": node, "resourceName": f"vendor.com/{fn.device}",
                   "description": "fake", "kernelDriverInUse": fn.driver or ""},
    }


class FakeKubelet:
    def __init__(self, api: FakeApiServer, gpus: dict[str, dict[str, int]], after_gets: int = 1) -> None:
        """gpus: node -> plugin -> count."""
        self.api = api
        self.gpus = gpus
        self.after_gets = after_gets
        self.gets: dict[tuple[str, str], int] = {}
        self.lock = threading.Lock()
        api.observers.append(self.observe)

    def observe(self, api: FakeApiServer, req: Request) -> None:
        if req.method != "GET" or not req.path.startswith("/api/v1/nodes/"):
            return
        node = req.path.rsplit("/", 1)[1]
        with self.lock:
            obj = api.get("nodes", node)
            if obj is None:
                return
            labels = obj["metadata"].get("labels") or {}
            for plugin, count in sorted(self.gpus.get(node, {}).items()):
                resource = PLUGIN_RESOURCES[plugin]
                if labels.get(plugin_label(plugin)) != "true" or api.get("daemonsets", DAEMONSETS[plugin], "kube-system") is None:
                    continue
                if resource in (obj.get("status") or {}).get("allocatable", {}):
                    continue
                n = self.gets[(node, plugin)] = self.gets.get((node, plugin), 0) + 1
                if n > self.after_gets:
                    def add(o: dict[str, Any], r: str = resource, c: int = count) -> None:
                        o["status"]["allocatable"][r] = str(c)
                        o["status"].setdefault("capacity", {})[r] = str(c)
                    api.mutate("nodes", node, add)


def harvester_cluster(api: FakeApiServer, hosts: list, gpus: dict[str, dict[str, int]] | None = None,
                      appear_after_lists: int = 0, addon: bool = True, kubelet_after_gets: int = 1) -> None:
    """Seed Harvester and its nodes for `hosts` (tests.kube.hosts.Host), with the
    pcidevices controller and the kubelets simulated. `gpus` defaults to what each
    host's GPUs would register: node -> plugin -> count."""
    seed_harvester(api, [h.node for h in hosts], addon=addon)
    FakePciController(api, {h.node: h.inventory() for h in hosts}, appear_after_lists)
    if gpus is None:
        gpus = {}
        for h in hosts:
            for g in h.host_gpus:
                plugin = {"10de": "nvidia", "1002": "amd"}.get(g.vendor)
                if plugin:
                    gpus.setdefault(h.node, {}).setdefault(plugin, 0)
                    gpus[h.node][plugin] += 1
    FakeKubelet(api, gpus, kubelet_after_gets)
