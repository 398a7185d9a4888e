"""Kernel arguments of a plan: per CPU vendor, the unsafe-interrupts switch, the extras,
and which of them Harvester's own boot line already sets.

Intel needs `intel_iommu=on` (SUSE's kernel leaves VT-d off by default); AMD's IOMMU is
on whenever the firmware enables it, and `amd_iommu=on` is not an option the kernel
knows (it logs it as unknown). `iommu=pt` keeps host DMA off the translation path.

Harvester's bootargs.cfg already has `intel_iommu=on amd_iommu=on iommu=pt` on every
normal boot (installer_ext/grubline.py), so on Harvester installer-ext adds only what
it lacks: the unsafe-interrupts switch and the extras. The plan lists both.

The ids bound at boot are not kernel arguments: `vfio-pci.ids=` on the command line
would survive the rescue switch (`installer_ext.skip=1` cannot take a token off the
line it sits on; a real kernel showed vfio-pci claiming the devices on a rescue boot).
They go to modprobe.d with softdeps instead, which the yip stage leaves out on a rescue
boot; a native driver that wins from the initrd is corrected by the binder.

Extras pass the safety policy (installer_ext/kernel_cmdline.py) or are refused: a
host-wide refusal with code `kernel-arg`, so the plan is refused (exit 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from installer_ext.grubline import HARVESTER_BOOTARGS, already_set, harvester_line
from installer_ext.kernel_cmdline import UNSAFE_INTERRUPTS_ARG, refusal

if TYPE_CHECKING:
    from installer_ext.host.model import IommuFacts

IOMMU_ARGS = {
    "intel": ("intel_iommu=on", "iommu=pt"),
    "amd": ("iommu=pt",),
}
# Every argument the planner itself writes: a plan may hold these whatever the policy
# says of extras (the keeper checks a plan file's arguments against the same policy).
PLANNER_ARGS = frozenset({a for args in IOMMU_ARGS.values() for a in args} | {UNSAFE_INTERRUPTS_ARG})


@dataclass(frozen=True)
class KernelArgs:
    args: list[str]  # what the node's kernel line must have
    harvester: list[str]  # of those, what Harvester's own line sets already
    refused: list[tuple[str, str]]  # (extra argument, why the policy refuses it)


def refusal_sentence(token: str, why: str) -> str:
    """The words of a host-wide refusal of an extra argument."""
    return f'pciPassthrough.extraKernelArgs: "{token}" {why}'


def unsafe_interrupts_needed(iommu: IommuFacts) -> bool:
    """Whether passthrough on this host depends on allowUnsafeInterrupts: the IOMMU is on
    and interrupt remapping reads as off. vfio then refuses devices unless the switch is
    on, so the planner refuses them (its global refusals), and the screen offers the
    switch only here."""
    return iommu.state == "enabled" and iommu.interrupt_remapping is False


def kernel_args(
    cpu_vendor: str,
    enabled: bool,
    allow_unsafe_interrupts: bool,
    extra: tuple[str, ...],
    interrupt_remapping: bool | None = None,
) -> KernelArgs:
    """What the node's line must have. `allow_unsafe_interrupts` adds its argument unless
    the host is known to remap interrupts (there vfio needs no permission; the planner
    warns instead); where remapping is off or could not be read, it is added."""
    args: list[str] = []
    if enabled:
        args += IOMMU_ARGS.get(cpu_vendor, ())
        if allow_unsafe_interrupts and interrupt_remapping is not True:
            args.append(UNSAFE_INTERRUPTS_ARG)
    refused = []
    for token in extra:
        why = refusal(token)
        if why is not None:
            refused.append((token, why))
        elif token not in args:
            args.append(token)
    return KernelArgs(args, already_set(args, harvester_line(HARVESTER_BOOTARGS, {})), refused)


def plan_refusals(tokens: list[str]) -> list[str]:
    """A plan file's arguments against the policy (the planner's own ones pass): one
    sentence per refused argument."""
    out = []
    for token in tokens:
        why = refusal(token, PLANNER_ARGS)
        if why is not None:
            out.append(f'kernel_args: "{token}" {why}')
    return out
