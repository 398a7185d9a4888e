"""The Kubernetes objects first boot reads and writes, and how they are named."""

from __future__ import annotations

from installer_ext.kube.client import Resource

SETTINGS = Resource("harvesterhci.io", "v1beta1", "settings", "Setting")
ADDONS = Resource("harvesterhci.io", "v1beta1", "addons", "Addon", namespaced=True)
PCIDEVICES = Resource("devices.harvesterhci.io", "v1beta1", "pcidevices", "PCIDevice")
PCIDEVICECLAIMS = Resource("devices.harvesterhci.io", "v1beta1", "pcideviceclaims", "PCIDeviceClaim")
SRIOVNETWORKDEVICES = Resource("devices.harvesterhci.io", "v1beta1", "sriovnetworkdevices", "SRIOVNetworkDevice")
NODES = Resource("", "v1", "nodes", "Node")
DAEMONSETS = Resource("apps", "v1", "daemonsets", "DaemonSet", namespaced=True)
RUNTIMECLASSES = Resource("node.k8s.io", "v1", "runtimeclasses", "RuntimeClass")

# Manifests in templates/firstboot name their kinds; these are the ones we apply.
APPLIABLE = {(r.api_version, r.kind): r for r in (DAEMONSETS, RUNTIMECLASSES)}

ADDON_NAMESPACE = "harvester-system"
FIELD_MANAGER = "installer-ext"
CLAIM_USER = "installer-ext"
LABEL_PREFIX = "installer-ext.harvesterhci.io/"

# The node's request and the cluster reconciler's answer, on the node's own Node object
# (a kubelet may patch its own Node: plugin/pkg/admission/noderestriction admitNode).
REQUEST_ANNOTATION = f"{LABEL_PREFIX}request"
RESULT_ANNOTATION = f"{LABEL_PREFIX}result"
# "pending" while a request waits for the reconciler, "done" once it was carried out:
# the reconciler lists the pending nodes with one label selector.
STATE_LABEL = f"{LABEL_PREFIX}first-boot"
PENDING, HANDLED = "pending", "done"

# harvester/pcidevices pkg/apis/devices.harvesterhci.io/v1beta1/pcidevice.go
# (PciDeviceDriver): the driver a device had when the controller first created its
# PCIDevice (NewPCIDeviceForHostname); disablePassthrough binds the device back to it.
PCIDEVICE_DRIVER_ANNOTATION = "harvesterhci.io/pcideviceDriver"
# The label the controller puts on PCIDevices, PCIDeviceClaims (ours) and
# SRIOVNetworkDevices of a node (v1beta1.NodeKeyName; pcidevice.go ReconcilePCIDevices
# `commonLabels`, nichelper generateSRIOVDev).
NODE_LABEL = "nodename"

# Harvester v1.9 docs (rancher/baremetal-workloads.md): this node label keeps
# Harvester's SRIOVGPUDevice management and the nvidia-driver-toolkit off a node whose
# GPUs are for bare-metal containers, and leaves them to the NVIDIA GPU Operator.
GPU_BAREMETAL_LABEL = "harvesterhci.io/gpu-baremetal-workloads"

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
