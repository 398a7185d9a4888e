"""How GRUB builds the kernel line of an installed Harvester node. Pure functions over
the texts involved (bootargs.cfg, the grubenv variables, grub.cfg); docs/kernel-args.md
has the whole story with its sources.

- Elemental's grub.cfg (rancher/elemental-toolkit, pkg/features/embedded/grub-config/
  etc/cos/grub.cfg at v0.11.x-v1.1.x, etc/elemental/grub.cfg from v1.2.0; the Harvester
  images of v1.2 on carry this layout, with /cOS/active.img) runs
  `load_env -f (${oem_blk})/grubenv`, which sets every variable of /oem/grubenv, and each
  menu entry then does `source (loop0)/etc/cos/bootargs.cfg` and
  `linux ... $kernelcmd ${extra_cmdline} ${extra_active_cmdline}` (the fallback entry
  has `${extra_passive_cmdline}`, recovery `${extra_recovery_cmdline}`;
  `${extra_cmdline}` is on every one, and on harv-install's debug entry too).
- Harvester's bootargs.cfg (harvester/harvester-installer,
  package/harvester-os/files/etc/cos/bootargs.cfg, branches v1.3-v1.8; the same file
  in harvester/harvester for v1.9+) sets, for every image but recovery.img,
  `kernelcmd="... intel_iommu=on amd_iommu=on iommu=pt $third_party_kernel_args"`;
  v1.3 has no `$third_party_kernel_args`.
- harv-install (same repo, package/harvester-os/files/usr/sbin/harv-install,
  update_grub_settings()) runs AFTER the install hooks and does
  `grub2-editenv /oem/grubenv set third_party_kernel_args="$HARVESTER_ADDITIONAL_KERNEL_ARGUMENTS"`
  whenever that variable is set, which is on every install (pkg/console/util.go
  doInstall() sets `multipath=off` unless external storage is enabled, then the
  config's os.additionalKernelArguments, which replaces it: Go's exec keeps the last
  of duplicate environment keys). It never touches the other variables.

So installer-ext keeps its arguments in `extra_cmdline`, which harv-install and
Harvester's upgrade leave alone, and records which tokens of it are its own in
`installer_ext_kernel_args` (a variable GRUB sets and nothing reads). The name must not
contain `third_party_kernel_args`: Harvester's upgrade greps the grubenv for that text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from installer_ext.kernel_cmdline import effective

THIRD_PARTY_VAR = "third_party_kernel_args"
EXTRA_VAR = "extra_cmdline"  # where installer-ext's own arguments go
ACTIVE_VAR = "extra_active_cmdline"
RECORD_VAR = "installer_ext_kernel_args"  # which tokens of EXTRA_VAR are installer-ext's


@dataclass(frozen=True)
class Bootargs:
    """The kernel line bootargs.cfg sets for the active and fallback images: its literal
    arguments (those with no `$variable` in them) and whether it appends
    `$third_party_kernel_args`."""

    literal: tuple[str, ...]
    third_party: bool


# bootargs.cfg of Harvester v1.4 to v1.8 and v1.9+ (identical on every branch; see the
# module docstring). Used where the node's own file cannot be read (the planner, render
# on the installer ISO).
HARVESTER_BOOTARGS = Bootargs(
    literal=(
        "panic=0", "net.ifnames=1", "rd.cos.oemtimeout=120", "audit=1", "audit_backlog_limit=8192",
        "intel_iommu=on", "amd_iommu=on", "iommu=pt",
    ),
    third_party=True,
)

_SET_KERNELCMD = re.compile(r'^[ \t]*set[ \t]+kernelcmd="([^"]*)"[ \t]*$', re.M)
_THIRD_PARTY_WORDS = (f"${THIRD_PARTY_VAR}", f"${{{THIRD_PARTY_VAR}}}")
_LINUX_LINE = re.compile(r"^[ \t]*linux(?:efi|16)?[ \t].*$", re.M)
_EXTRA_WORDS = (f"${EXTRA_VAR}", f"${{{EXTRA_VAR}}}")


def parse_bootargs(text: str) -> Bootargs | None:
    """The active/fallback kernel line of a bootargs.cfg (the `set kernelcmd="..."`
    that is not the recovery image's); None when the file has none."""
    normal = [m.group(1) for m in _SET_KERNELCMD.finditer(text) if "recovery" not in m.group(1)]
    if not normal:
        return None
    words = normal[-1].split()
    return Bootargs(
        literal=tuple(w for w in words if "$" not in w),
        third_party=any(w in _THIRD_PARTY_WORDS for w in words),
    )


def harvester_line(bootargs: Bootargs, variables: Mapping[str, str]) -> list[str]:
    """The arguments Harvester itself puts on the line: bootargs.cfg's own and, where it
    appends them, those of `third_party_kernel_args` (the config's
    os.additionalKernelArguments, or `multipath=off`)."""
    line = list(bootargs.literal)
    if bootargs.third_party:
        line += variables.get(THIRD_PARTY_VAR, "").split()
    return line


def node_line(bootargs: Bootargs, variables: Mapping[str, str]) -> list[str]:
    """The arguments of the active entry's `linux` line as elemental's grub.cfg builds
    it from these grubenv variables (the `$variable` parts of bootargs.cfg other than
    third_party_kernel_args left out)."""
    return (
        harvester_line(bootargs, variables)
        + variables.get(EXTRA_VAR, "").split()
        + variables.get(ACTIVE_VAR, "").split()
    )


def appends_extra_cmdline(grub_cfg: str) -> bool | None:
    """Whether a grub.cfg's `linux` lines append `${extra_cmdline}` (None: it has no
    `linux` line to tell from)."""
    lines = _LINUX_LINE.findall(grub_cfg)
    if not lines:
        return None
    return any(any(w in line for w in _EXTRA_WORDS) for line in lines)


def already_set(wanted: Sequence[str], line: Sequence[str]) -> list[str]:
    """The arguments of `wanted` that take effect on `line` already."""
    return [w for w in wanted if effective(line, w)]
