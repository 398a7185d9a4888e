"""What an install config says, as typed values: `Choices` (the `pciPassthrough`
section), `InstallInfo` (the installer's `install` keys the planner needs) and `Config`
(both, with the document they came from).

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
    """The parts of the Harvester config's `install` section the planner needs: the
    install disk (`device`), the data disk and the management interfaces (by name or
    `hwAddr`, lowercased), read by config/install.py from the user's config or, in the
    install hook, from `$HARVESTER_CONFIG` (what the installer really installed). `mode`
    is read and kept; no decision uses it.

    `known` is False when the document has no `install` section (the screen runs before
    the installer has asked for disk and network; `detect` plans with none). The
    planner then blocks, as *tentative*, every NIC with a link (it may become the
    management network) and every controller holding a disk (it may hold the install
    disk); so it does for a known section without `managementInterface` or without
    `device` (plan/install_blockers.py `unknown_install`). The install hook plans again
    with the keys the installer used.
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
    # Lines for stderr that do not stop anything (a misspelled section, ...).
    warnings: tuple[str, ...] = ()
    # The whole document as read, and its text: the screen writes it back with only
    # its section replaced.
    document: dict[Any, Any] | None = field(default=None, compare=False, repr=False)
    text: str | None = field(default=None, compare=False, repr=False)
