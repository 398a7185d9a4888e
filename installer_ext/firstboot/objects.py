"""The Kubernetes objects first boot reads and writes, and how they are named."""

from __future__ import annotations

from installer_ext.kube.client import Resource

SETTINGS = Resource("harvesterhci.io", "v1beta1", "settings", "Setting")
ADDONS = Resource("harvesterhci.io", "v1beta1", "addons", "Addon", namespaced=True)
PCIDEVICES = Resource("devices.harvesterhci.io", "v1beta1", "pcidevices", "PCIDevice")
PCIDEVICECLAIMS = Resource("devices.harvesterhci.io", "v1beta1", "pcideviceclaims", "PCIDeviceClaim")
NODES = Resource("", "v1", "nodes", "Node")
DAEMONSETS = Resource("apps", "v1", "daemonsets", "DaemonSet", namespaced=True)
RUNTIMECLASSES = Resource("node.k8s.io", "v1", "runtimeclasses", "RuntimeClass")

# Manifests in templates/firstboot name their kinds; these are the ones we apply.
APPLIABLE = {(r.api_version, r.kind): r for r in (DAEMONSETS, RUNTIMECLASSES)}

ADDON_NAMESPACE = "harvester-system"
FIELD_MANAGER = "installer-ext"
CLAIM_USER = "installer-ext"
LABEL_PREFIX = "installer-ext.harvesterhci.io/"

# Container device plugins: the extended resource each registers on the node.
PLUGIN_RESOURCES = {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu"}


def pcidevice_name(node: str, address: str) -> str:
    """The pcidevices controller's name for a device (PCIDeviceNameForHostname in
    harvester/pcidevices): `<node>-<address without ':' and '.'>`. Its claim webhook
    looks the PCIDevice up under the claim's own name, so a claim is named the same."""
    return f"{node}-{address.replace(':', '').replace('.', '')}"


def plugin_label(plugin: str) -> str:
    """Node label that schedules a device plugin's DaemonSet (its nodeSelector). One key
    per plugin, so a host with both NVIDIA and AMD GPUs carries both."""
    return f"{LABEL_PREFIX}gpu-plugin-{plugin}"
