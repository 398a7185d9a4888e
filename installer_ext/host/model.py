"""Typed host facts: the read-only snapshot of a machine that the planner decides on.

Facts only: what sysfs and procfs say, never what may be done with it. Whether a
function may go to a VM is the planner's decision alone (`plan.blocking`); `detect`
asks the planner for it. Every class is frozen: a reader builds each object once, by
keyword, and nothing changes it afterwards.

The JSON form (`HostFacts.to_json`) is the device and host part of the public
`detect --json` contract (report.detect_json adds the planner's `blocked` and
`blockers`): keys may be added, never renamed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

@dataclass(frozen=True)
class CpuFacts:
    vendor: str  # intel | amd | other
    vendor_string: str | None  # GenuineIntel, AuthenticAMD, ... as /proc/cpuinfo says
    model_name: str | None
    virtualization: bool
    # What the virtualization answer rests on: "vmx", "svm", "kvm", or nothing.
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class IommuFacts:
    state: str  # enabled | available | absent
    interrupt_remapping: bool | None
    # ACPI tables seen under sys/firmware/acpi/tables (DMAR Intel, IVRS AMD).
    firmware_tables: tuple[str, ...] = ()
    # IOMMU units the kernel registered (sys/class/iommu: dmar0, ivhd0, ...).
    units: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sriov:
    total_vfs: int
    num_vfs: int
    # VF routing: VF n sits at PF routing id + offset + n * stride (PCIe SR-IOV spec).
    offset: int | None = None
    stride: int | None = None
    vf_device_id: str | None = None
    drivers_autoprobe: bool | None = None


@dataclass(frozen=True, slots=True)
class PciFunction:
    address: str
    vendor_id: str | None
    device_id: str | None
    class_id: str | None
    kind: str
    vendor_name: str | None = None
    device_name: str | None = None
    subsystem_vendor_id: str | None = None
    subsystem_device_id: str | None = None
    driver: str | None = None
    iommu_group: int | None = None
    # Group predicted from the topology when the kernel reports none (IOMMU off).
    predicted_group: int | None = None
    boot_vga: bool = False
    sriov: Sriov | None = None
    physfn: str | None = None
    virtfns: tuple[str, ...] = ()
    is_bridge: bool = False
    # Header type 1/2 (PCI-to-PCI / CardBus): vfio accepts it in a viable group as is.
    pci_bridge: bool = False
    header_type: int | None = None
    multifunction: bool | None = None
    pcie_type: int | None = None  # PCIe capability device/port type, None = not PCIe
    acs: bool | None = None  # ACS extended capability present (None: config unreadable)
    resettable: bool | None = None
    reset_methods: tuple[str, ...] = ()
    parent: str | None = None  # upstream bridge's address, None on a root bus
    net_interfaces: tuple[str, ...] = ()
    block_devices: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()  # attributes that could not be read or parsed

    @property
    def group(self) -> int | None:
        """The kernel's group, else the predicted one."""
        return self.iommu_group if self.iommu_group is not None else self.predicted_group

    @property
    def ids(self) -> str | None:
        if self.vendor_id is None or self.device_id is None:
            return None
        return f"{self.vendor_id}:{self.device_id}"

    @property
    def slot(self) -> str:
        return self.address.rsplit(".", 1)[0]

    def to_json(self) -> dict[str, object]:
        return {
            "address": self.address,
            "vendor_id": self.vendor_id,
            "device_id": self.device_id,
            "class_id": self.class_id,
            "kind": self.kind,
            "vendor_name": self.vendor_name,
            "device_name": self.device_name,
            "subsystem_vendor_id": self.subsystem_vendor_id,
            "subsystem_device_id": self.subsystem_device_id,
            "driver": self.driver,
            "iommu_group": self.iommu_group,
            "predicted_group": self.predicted_group,
            "boot_vga": self.boot_vga,
            "sriov": None
            if self.sriov is None
            else {
                "total_vfs": self.sriov.total_vfs,
                "num_vfs": self.sriov.num_vfs,
                "offset": self.sriov.offset,
                "stride": self.sriov.stride,
                "vf_device_id": self.sriov.vf_device_id,
                "drivers_autoprobe": self.sriov.drivers_autoprobe,
            },
            "physfn": self.physfn,
            "virtfns": self.virtfns,
            "bridge": self.is_bridge,
            "resettable": self.resettable,
            "reset_methods": self.reset_methods,
            "parent": self.parent,
            "pcie": (self.pcie_type is not None) if self.header_type is not None else None,
            "pcie_type": self.pcie_type,
            "acs": self.acs,
            "multifunction": self.multifunction,
            "net_interfaces": self.net_interfaces,
            "block_devices": self.block_devices,
            "unknown": self.unknown,
        }


@dataclass(frozen=True)
class Group:
    id: int
    devices: tuple[str, ...]
    predicted: bool = False

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "devices": list(self.devices), "predicted": self.predicted}


@dataclass(frozen=True)
class NetInterface:
    name: str
    address: str | None  # PCI function, None for virtual interfaces
    mac: str | None = None
    operstate: str | None = None  # up, down, dormant, unknown (sysfs operstate)


@dataclass(frozen=True)
class BlockDevice:
    name: str  # sda, nvme0n1, sda1
    controllers: tuple[str, ...]  # PCI functions holding it (several with NVMe multipath)
    disk: str | None = None  # the whole disk of a partition


@dataclass(frozen=True)
class HostFacts:
    root: str
    cpu: CpuFacts
    iommu: IommuFacts
    devices: tuple[PciFunction, ...]
    groups: tuple[Group, ...]
    groups_predicted: bool
    net: tuple[NetInterface, ...]
    block: tuple[BlockDevice, ...]
    cmdline: tuple[str, ...] = ()
    # /dev/disk/by-* names -> block device name, where ROOT/dev has them.
    disk_aliases: Mapping[str, str] = field(default_factory=dict)
    # PCI driver name -> its kernel module (xhci_hcd -> xhci_pci), from drivers/X/module.
    driver_modules: Mapping[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    # Indexes built once from `devices` (the facts never change).
    _by_address: Mapping[str, PciFunction] = field(init=False, repr=False, compare=False)
    _members: Mapping[int, tuple[PciFunction, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Frozen: the fields are set once here, through object.__setattr__.
        for name in ("devices", "groups", "net", "block", "cmdline", "problems"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("disk_aliases", "driver_modules"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        members: dict[int, list[PciFunction]] = {}
        for d in self.devices:
            if d.group is not None:
                members.setdefault(d.group, []).append(d)
        object.__setattr__(self, "_by_address", MappingProxyType({d.address: d for d in self.devices}))
        object.__setattr__(self, "_members", MappingProxyType({g: tuple(ds) for g, ds in members.items()}))

    def device(self, address: str) -> PciFunction | None:
        return self._by_address.get(address)

    def group_members(self, dev: PciFunction) -> tuple[PciFunction, ...]:
        """Every function sharing `dev`'s (real or predicted) group, `dev` included."""
        gid = dev.group
        if gid is None:
            return (dev,)
        return self._members.get(gid, (dev,))

    def to_json(self) -> dict[str, object]:
        return {
            "root": self.root,
            "cpu": {
                "vendor": self.cpu.vendor,
                "vendor_string": self.cpu.vendor_string,
                "model_name": self.cpu.model_name,
                "virtualization": self.cpu.virtualization,
                "virtualization_evidence": list(self.cpu.evidence),
            },
            "iommu": {
                "state": self.iommu.state,
                "interrupt_remapping": self.iommu.interrupt_remapping,
                "firmware_tables": list(self.iommu.firmware_tables),
                "units": list(self.iommu.units),
            },
            "groups_predicted": self.groups_predicted,
            "devices": [d.to_json() for d in self.devices],
            "groups": [g.to_json() for g in self.groups],
            "net": [
                {"name": n.name, "address": n.address, "mac": n.mac, "operstate": n.operstate}
                for n in self.net
            ],
            "block": [
                {"name": b.name, "controllers": list(b.controllers), "disk": b.disk}
                for b in self.block
            ],
            "cmdline": list(self.cmdline),
            "driver_modules": dict(sorted(self.driver_modules.items())),
            "problems": list(self.problems),
        }
