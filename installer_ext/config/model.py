"""Choices: what the user asked for, from the screen or the unattended YAML.

Both faces produce the same `Choices`; `to_section()` gives the YAML mapping back
(the schema's camelCase keys), so the screen's output is an unattended config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Selector:
    """Exactly one of address / id / kind. `path` is where it came from, for messages."""

    address: str | None = None
    id: str | None = None
    kind: str | None = None
    # Where it came from, for messages; not part of what was chosen.
    path: str = field(default="", compare=False)

    def to_json(self) -> dict[str, str]:
        if self.address is not None:
            return {"address": self.address}
        if self.id is not None:
            return {"id": self.id}
        return {"kind": self.kind or ""}

    def describe(self) -> str:
        if self.address is not None:
            return f"address {self.address}"
        if self.id is not None:
            return f"id {self.id}"
        return f"kind {self.kind}"


@dataclass(frozen=True)
class SriovChoice:
    address: str
    num_vfs: int
    vfs_to_vfio: bool = True
    path: str = field(default="", compare=False)


@dataclass(frozen=True)
class HarvesterChoice:
    settings: bool = True
    addon: bool = True
    claims: bool = True


@dataclass(frozen=True)
class Choices:
    enabled: bool = False
    gpu_drivers: bool = False
    devices: tuple[Selector, ...] = ()
    host_gpus: tuple[Selector, ...] | None = None  # None: GPUs not passed through
    sriov: tuple[SriovChoice, ...] = ()
    allow_unsafe_interrupts: bool = False
    extra_kernel_args: tuple[str, ...] = ()
    harvester: HarvesterChoice = field(default_factory=HarvesterChoice)
    device_plugin: str = "auto"

    def to_section(self) -> dict[str, Any]:
        """The `pciPassthrough` mapping (canonical keys, defaults included)."""
        out: dict[str, Any] = {
            "enabled": self.enabled,
            "gpuDrivers": self.gpu_drivers,
            "devices": [s.to_json() for s in self.devices],
        }
        if self.host_gpus is not None:
            out["hostGpus"] = [s.to_json() for s in self.host_gpus]
        out["sriov"] = [
            {"address": s.address, "numVfs": s.num_vfs, "vfsToVfio": s.vfs_to_vfio} for s in self.sriov
        ]
        out["allowUnsafeInterrupts"] = self.allow_unsafe_interrupts
        out["extraKernelArgs"] = list(self.extra_kernel_args)
        out["harvester"] = {
            "settings": self.harvester.settings,
            "addon": self.harvester.addon,
            "claims": self.harvester.claims,
        }
        out["devicePlugin"] = self.device_plugin
        return out


@dataclass(frozen=True)
class ManagementInterface:
    name: str | None
    hw_addr: str | None
    path: str


@dataclass(frozen=True)
class InstallInfo:
    """The parts of the Harvester config's `install` section the planner needs.

    `known` is False when the file has no `install` section at all (the screen runs
    before the installer has asked for disk and network): the planner then cannot
    protect the management NIC or the install disk yet, says so, and the install hook
    plans again with the complete config.
    """

    known: bool = False
    mode: str | None = None
    device: str | None = None
    data_disk: str | None = None
    management: tuple[ManagementInterface, ...] = ()


@dataclass(frozen=True)
class Config:
    choices: Choices
    install: InstallInfo
    source: str = "<config>"
    has_section: bool = False
