"""Kernel command-line arguments: names compared the way the kernel compares them, a
line split the way the kernel splits it, and the arguments installer-ext's safety policy
owns. Pure: config, plan, render and boot all import it.

Names. The kernel treats `-` and `_` in a parameter name as the same character and
compares names case-sensitively, up to the first `=` (kernel/params.c, torvalds/linux:
`dash2underscore()`, `parameqn()`, `parameq()`; `parse_args()` for module and built-in
parameters, `obsolete_checksetup()` and `do_early_param()` in init/main.c for
`__setup()` and `early_param()` ones). So `pcie-acs-override=downstream` IS
`pcie_acs_override=downstream`, while `PCIE_ACS_OVERRIDE=1` is another (unknown)
parameter that the kernel hands to init as an environment variable.

The policy (what `refusal()` refuses, `OWNED` documents; docs/kernel-args.md explains):
an extra argument may not turn the IOMMU or interrupt remapping off, give devices to VMs
without isolation, blacklist or pre-empt vfio / vfio-pci, claim devices by id on the
kernel line, set installer-ext's own switches, or name Harvester's grubenv variable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from installer_ext.host.address import KERNEL_ARG_RE

# Set by the planner from `allowUnsafeInterrupts` (checked against the host's interrupt
# remapping, with a warning); never through extraKernelArgs.
UNSAFE_INTERRUPTS_ARG = "vfio_iommu_type1.allow_unsafe_interrupts=1"

# The kernel's isspace() for the ASCII range (lib/ctype.c): what ends an argument.
_SPACE = " \t\n\v\f\r"

# Modules whose absence defeats the plan (blacklisting any of them keeps vfio-pci from
# binding, or VMs from using what it bound). Names as kmod normalises them
# (kmod libkmod/libkmod-config.c: `underscores()` on `modprobe.blacklist=` entries).
VFIO_MODULES = frozenset({"vfio", "vfio_pci", "vfio_pci_core", "vfio_iommu_type1", "vfio_virqfd"})


def split(token: str) -> tuple[str, str | None]:
    """(name, value) of one argument; value None for an `=`-less argument."""
    name, sep, value = token.partition("=")
    return name, (value if sep else None)


def canonical(name: str) -> str:
    """A parameter name as parameq() compares it: dashes are underscores; case kept."""
    return name.replace("-", "_")


def same_param(a: str, b: str) -> bool:
    """parameq(): the names of two arguments (anything after `=` ignored) are equal."""
    return canonical(split(a)[0]) == canonical(split(b)[0])


def split_cmdline(text: str) -> list[str]:
    """The arguments of a command line (/proc/cmdline) as the kernel's next_arg()
    (lib/cmdline.c) cuts them: whitespace separates, double quotes protect whitespace,
    a quote opening the argument or the value is dropped with its closing quote."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n:
            break
        quoted = text[i] == '"'
        if quoted:
            i += 1
        in_quote = quoted
        start = i
        equals = -1
        while i < n and (in_quote or text[i] not in _SPACE):
            if equals < 0 and text[i] == "=" and i > start:
                equals = i
            if text[i] == '"':
                in_quote = not in_quote
            i += 1
        arg = text[start:i]
        if equals >= 0:
            cut = equals - start
            name, value = arg[:cut], arg[cut + 1 :]
            if value.startswith('"'):
                value = value[1:]
                if value.endswith('"'):
                    value = value[:-1]
            elif quoted and value.endswith('"'):
                value = value[:-1]
            arg = f"{name}={value}"
        elif quoted and arg.endswith('"'):
            arg = arg[:-1]
        out.append(arg)
        i += 1
    return out


def effective(line: Sequence[str], token: str) -> bool:
    """Whether `token` takes effect on `line`: the last argument of the same parameter
    (parameq) has the same value. The last one counts because most parameters are set
    in line order (`intel_iommu=on ... intel_iommu=off` leaves the IOMMU off); for
    parameters that accumulate options this is the cautious reading."""
    last = None
    for arg in line:
        if same_param(arg, token):
            last = arg
    return last is not None and split(last)[1] == split(token)[1]


def missing(wanted: Iterable[str], line: Sequence[str]) -> list[str]:
    """The arguments of `wanted` that do not take effect on `line`, in order."""
    return [w for w in wanted if not effective(line, w)]


# -- the policy ------------------------------------------------------------------------


@dataclass(frozen=True)
class Owned:
    """One rule of the policy: a parameter (canonical name, or a name prefix ending in
    `.`), when it is refused, and why. `refusal()` applies them; the docs list them."""

    name: str
    when: str
    reason: str


def _items(value: str | None) -> list[str]:
    return [] if value is None else value.split(",")


def _modules(value: str | None) -> set[str]:
    return {canonical(m) for m in _items(value)}


def _off_option(value: str | None) -> bool:
    # intel_iommu_setup() (drivers/iommu/intel/iommu.c), iommu_setup()
    # (arch/x86/kernel/pci-dma.c), setup_irqremap() (drivers/iommu/irq_remapping.c):
    # each comma-separated option is matched with strncmp(opt, "off", 3).
    return any(item.startswith("off") for item in _items(value))


def _off_anywhere(value: str | None) -> bool:
    # parse_amd_iommu_options() (drivers/iommu/amd/init.c) before Linux 6.x tried
    # strncmp(str, "off", 3) at EVERY character of the value (SLE Micro 5.5 is 5.14).
    return value is not None and "off" in value


OWNED: tuple[Owned, ...] = (
    Owned("pcie_acs_override", "always", "fakes IOMMU isolation (an out-of-tree patch): functions that share a group would go to different owners"),
    Owned("intel_iommu", "an option starting with off", "turns the Intel IOMMU off; passthrough needs it on"),
    Owned("amd_iommu", "off anywhere in the value", "turns the AMD IOMMU off; passthrough needs it on"),
    Owned("iommu", "an option starting with off", "turns the IOMMU off (no_iommu); passthrough needs it on"),
    Owned("intremap", "an option starting with off", "turns interrupt remapping off: vfio then refuses the devices, or a device can inject interrupts into the host"),
    Owned("nointremap", "always", "turns interrupt remapping off: vfio then refuses the devices, or a device can inject interrupts into the host"),
    Owned("vfio.enable_unsafe_noiommu_mode", "always", "gives devices to user space with no IOMMU isolation at all"),
    Owned("vfio_pci.ids", "always", "claims devices by id on the kernel line, where the rescue switch cannot take them off (installer-ext binds ids through modprobe.d)"),
    Owned("pci_stub.ids", "always", "gives devices to pci-stub before vfio-pci can take them"),
    Owned("modprobe.blacklist", "a vfio module in the list", "keeps vfio / vfio-pci from loading"),
    Owned("module_blacklist", "a vfio module in the list", "keeps vfio / vfio-pci from loading"),
    Owned("rd.driver.blacklist", "a vfio module in the list", "keeps vfio / vfio-pci from loading in the initrd"),
    Owned("rdblacklist", "a vfio module in the list", "keeps vfio / vfio-pci from loading in the initrd"),
    Owned("initcall_blacklist", "an initcall starting with vfio", "keeps vfio / vfio-pci from starting"),
    Owned("vfio_iommu_type1.allow_unsafe_interrupts", "always", "is set by allowUnsafeInterrupts, which the planner checks against the host and warns about"),
    Owned("installer_ext.", "any parameter of this prefix", "is installer-ext's own switch (the rescue switch is typed in the GRUB menu for one boot), not a permanent argument"),
)
_BY_NAME = {o.name: o for o in OWNED if not o.name.endswith(".")}
_PREFIXES = tuple(o for o in OWNED if o.name.endswith("."))

_VALUE_RULES = {
    "intel_iommu": _off_option,
    "iommu": _off_option,
    "intremap": _off_option,
    "amd_iommu": _off_anywhere,
    "modprobe.blacklist": lambda v: bool(_modules(v) & VFIO_MODULES),
    "module_blacklist": lambda v: bool(_modules(v) & VFIO_MODULES),
    "rd.driver.blacklist": lambda v: bool(_modules(v) & VFIO_MODULES),
    "rdblacklist": lambda v: bool(_modules(v) & VFIO_MODULES),
    "initcall_blacklist": lambda v: any(canonical(i).startswith("vfio") for i in _items(v)),
}

# Harvester's upgrade script reads the grubenv with `grep third_party_kernel_args`
# (harvester/harvester package/upgrade/upgrade_node.sh, upgrade_os()): an argument
# holding that text would be taken for its variable.
GRUBENV_VARIABLE = "third_party_kernel_args"


def refusal(token: str, allowed: Iterable[str] = ()) -> str | None:
    """Why the policy refuses `token` as a kernel argument (None: it may be written).
    `allowed` are exact tokens the planner itself writes (a plan's own arguments)."""
    if token in set(allowed):
        return None
    if not KERNEL_ARG_RE.match(token):
        return "is not a kernel argument token (name or name=value, no spaces or quotes)"
    if GRUBENV_VARIABLE in token:
        return f"contains {GRUBENV_VARIABLE}, which Harvester's upgrade takes for its own grubenv variable"
    name, value = split(token)
    key = canonical(name)
    rule = _BY_NAME.get(key)
    if rule is not None:
        check = _VALUE_RULES.get(key)
        if check is None or check(value):
            return _words(key, name, rule)
    for rule in _PREFIXES:
        if key.startswith(rule.name):
            return _words(key, name, rule)
    return None


def _words(key: str, name: str, rule: Owned) -> str:
    same = "" if name == key else f" (the kernel reads {name} as {key})"
    return f"{rule.reason}{same}"
