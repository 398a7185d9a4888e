"""The Plan: what the planner decided, as typed values with a stable JSON form.

`Plan.to_json()` is the public `plan --json` contract (docs/design.md lists every key);
render writes the same JSON into the target as plan.json, which bind, unbind, first boot
and the kernel-args keeper read back through plan/planfile.py: checked against
plan/plan.schema.json, then `Plan.from_json`. Keys may be added, never renamed; a key
added here is added to the schema and to docs/design.md too (tests/test_planfile.py,
tests/test_docs.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from installer_ext.plan.reasons import Blocker

PLAN_VERSION = 1

WHY_SELECTED = "selected"
WHY_SAME_GROUP = "same-group"
WHY_SRIOV_VF = "sriov-vf"
BIND_IDS = "ids"
BIND_ADDRESS = "address"

def _frozen(d: dict[str, Any]) -> dict[str, Any]:
    """A JSON object's fields for a frozen dataclass: its lists as tuples."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


@dataclass(frozen=True)
class Passthrough:
    address: str
    vendor_id: str
    device_id: str
    iommu_group: int | None  # the predicted number when group_predicted
    why: str  # selected | same-group | sriov-vf
    bind_at_boot: str  # ids | address
    kind: str = "other"
    class_id: str | None = None
    group_predicted: bool = False
    vf_of: str | None = None  # PF address for why=sriov-vf
    driver: str | None = None  # host driver at plan time
    module: str | None = None  # its kernel module (for modprobe softdeps)

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "vendor_id": self.vendor_id,
            "device_id": self.device_id,
            "iommu_group": self.iommu_group,
            "why": self.why,
            "bind_at_boot": self.bind_at_boot,
            "kind": self.kind,
            "class_id": self.class_id,
            "group_predicted": self.group_predicted,
            "vf_of": self.vf_of,
            "driver": self.driver,
            "module": self.module,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Passthrough:
        return cls(**d)


@dataclass(frozen=True)
class SriovPlan:
    address: str  # the PF
    num_vfs: int
    vfs_to_vfio: bool
    vendor_id: str = ""
    device_id: str = ""
    total_vfs: int = 0
    vf_device_id: str | None = None
    vfs: tuple[str, ...] = ()  # predicted VF addresses

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "num_vfs": self.num_vfs,
            "vfs_to_vfio": self.vfs_to_vfio,
            "vendor_id": self.vendor_id,
            "device_id": self.device_id,
            "total_vfs": self.total_vfs,
            "vf_device_id": self.vf_device_id,
            "vfs": list(self.vfs),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SriovPlan:
        return cls(**_frozen(d))


@dataclass(frozen=True)
class Refusal:
    """A device (or, with address None, the whole request) that will not be passed.

    `fatal` refusals make the plan refused (exit 3): an explicit address on a blocked
    device, no IOMMU, no interrupt remapping. Devices skipped by an id or kind selector
    are listed too, not fatal, with the same words as their warning. `code`,
    `subject`, `tentative` and `by` are those of its first blocker (see `Blocker`).
    """

    address: str | None
    reason: str
    code: str = ""
    fatal: bool = True
    by: str | None = None  # the device that causes it, for same-group refusals
    subject: str | None = None
    tentative: bool = False

    @classmethod
    def of(cls, address: str, blockers: tuple[Blocker, ...] | list[Blocker], fatal: bool) -> Refusal:
        """The refusal of a blocked function: every reason, the first one's fields."""
        first = blockers[0]
        reason = "; ".join(b.reason for b in blockers)
        return cls(address, reason, first.code, fatal, first.by, first.subject, first.tentative)

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "reason": self.reason,
            "code": self.code,
            "fatal": self.fatal,
            "by": self.by,
            "subject": self.subject,
            "tentative": self.tentative,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Refusal:
        """`by`, `subject` and `tentative` may be left out (the schema requires the
        others): the dataclass's defaults are theirs."""
        return cls(**d)


@dataclass(frozen=True)
class GroupPlan:
    """One IOMMU group touched by the plan: what the binder may find in it at boot."""

    id: int | None
    predicted: bool
    devices: tuple[str, ...]  # every function of the group at plan time
    passthrough: tuple[str, ...]  # the ones bound to vfio-pci
    left: tuple[str, ...]  # left as they are (PCI bridges, driverless bridges)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "predicted": self.predicted,
            "devices": list(self.devices),
            "passthrough": list(self.passthrough),
            "left": list(self.left),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> GroupPlan:
        return cls(**_frozen(d))


@dataclass
class Plan:
    enabled: bool
    gpu_drivers: bool
    cpu_vendor: str
    iommu_state: str
    groups_predicted: bool
    passthrough: list[Passthrough] = field(default_factory=list)
    host_gpus: list[str] = field(default_factory=list)
    sriov: list[SriovPlan] = field(default_factory=list)
    kernel_args: list[str] = field(default_factory=list)
    # Of kernel_args, those Harvester's own boot line (bootargs.cfg) sets already;
    # installer-ext adds the others (added_kernel_args).
    harvester_kernel_args: list[str] = field(default_factory=list)
    vfio_ids: list[str] = field(default_factory=list)  # vendor:device bound by id at boot
    refused: list[Refusal] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)
    addons: dict[str, bool] = field(default_factory=dict)
    claims: bool = False
    device_plugins: list[str] = field(default_factory=list)
    groups: list[GroupPlan] = field(default_factory=list)
    modules: list[str] = field(default_factory=list)  # kernel modules to load at boot

    @property
    def added_kernel_args(self) -> list[str]:
        return [a for a in self.kernel_args if a not in self.harvester_kernel_args]

    @property
    def fatal_refusals(self) -> list[Refusal]:
        return [r for r in self.refused if r.fatal]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": PLAN_VERSION,
            "enabled": self.enabled,
            "gpu_drivers": self.gpu_drivers,
            "host": {
                "cpu_vendor": self.cpu_vendor,
                "iommu_state": self.iommu_state,
                "groups_predicted": self.groups_predicted,
            },
            "passthrough": [p.to_json() for p in self.passthrough],
            "host_gpus": list(self.host_gpus),
            "sriov": [s.to_json() for s in self.sriov],
            "kernel_args": list(self.kernel_args),
            "harvester_kernel_args": list(self.harvester_kernel_args),
            "added_kernel_args": self.added_kernel_args,
            "vfio_ids": list(self.vfio_ids),
            "refused": [r.to_json() for r in self.refused],
            "warnings": list(self.warnings),
            "settings": dict(self.settings),
            "addons": dict(self.addons),
            "claims": self.claims,
            "device_plugins": list(self.device_plugins),
            "groups": [g.to_json() for g in self.groups],
            "modules": list(self.modules),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Plan:
        """Inverse of to_json, for a document that passed plan.schema.json (read it with
        plan/planfile.py: the schema's patterns are what keep an address or a driver name
        out of a sysfs path, and it requires every key but `harvester_kernel_args`, which
        plans written before that key existed lack: none of their arguments was
        Harvester's own). The JSON keys are the fields' names; `version` and
        `added_kernel_args` are derived, not stored. Raises KeyError/TypeError on
        anything else."""
        fields = {k: v for k, v in d.items() if k not in ("version", "host", "added_kernel_args")}
        fields.update(
            passthrough=[Passthrough.from_json(p) for p in d["passthrough"]],
            sriov=[SriovPlan.from_json(s) for s in d["sriov"]],
            refused=[Refusal.from_json(r) for r in d["refused"]],
            groups=[GroupPlan.from_json(g) for g in d["groups"]],
        )
        return cls(**d["host"], **fields)
