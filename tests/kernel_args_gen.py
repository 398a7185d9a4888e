"""Hypothesis generators of kernel arguments: the names the policy owns and ordinary
ones, under every spelling the kernel reads the same (`-` or `_` at each such place,
kernel/params.c parameq()), in changed case (another parameter to the kernel), with
and without `=`, with values that do and do not turn something off. And an oracle,
written from issue #12's list and the kernel's rules, not from the policy's code."""

from __future__ import annotations

from hypothesis import strategies as st

NAMES = [
    "pcie_acs_override", "intel_iommu", "amd_iommu", "iommu", "intremap", "nointremap",
    "vfio.enable_unsafe_noiommu_mode", "vfio_pci.ids", "pci_stub.ids", "modprobe.blacklist",
    "module_blacklist", "rd.driver.blacklist", "rdblacklist", "initcall_blacklist",
    "vfio_iommu_type1.allow_unsafe_interrupts", "installer_ext.skip", "installer_ext.other",
    "video", "console", "quiet", "nvidia_drm.modeset", "rd.driver.pre", "vfio_pci.disable_vga",
    "iommu.passthrough", "intel_iommux",
]
VALUES = [
    None, "", "1", "0", "on", "off", "pt", "pt,off", "on,off", "off,sm_on", "sm_off", "xoff",
    "vfio_pci", "vfio-pci", "nouveau,vfio", "nouveau", "vfio_pci_init", "10de:2206",
    "downstream", "efifb:off", "ttyS0",
]
VFIO_MODULES = {"vfio", "vfio_pci", "vfio_pci_core", "vfio_iommu_type1", "vfio_virqfd"}


@st.composite
def spellings(draw, name: str) -> str:
    """`name` with each `_` or `-` drawn anew."""
    return "".join(draw(st.sampled_from("-_")) if c in "-_" else c for c in name)


@st.composite
def kernel_args(draw) -> str:
    name = draw(spellings(draw(st.sampled_from(NAMES))))
    case = draw(st.integers(0, 5))
    if case == 0:
        name = name.upper()
    elif case == 1:
        name = name[:1].upper() + name[1:]
    value = draw(st.sampled_from(VALUES))
    return name if value is None else f"{name}={value}"


def defeats(token: str) -> bool:
    """Issue #12: the arguments that defeat the plan, compared as the kernel does."""
    name, sep, value = token.partition("=")
    name = name.replace("-", "_")
    items = value.split(",") if sep else []
    if name in ("pcie_acs_override", "nointremap", "vfio_pci.ids", "pci_stub.ids", "vfio.enable_unsafe_noiommu_mode",
                "vfio_iommu_type1.allow_unsafe_interrupts") or name.startswith("installer_ext."):
        return True
    if name in ("intel_iommu", "iommu", "intremap"):
        return any(i.startswith("off") for i in items)
    if name == "amd_iommu":
        return "off" in value
    if name in ("modprobe.blacklist", "module_blacklist", "rd.driver.blacklist", "rdblacklist"):
        return bool({i.replace("-", "_") for i in items} & VFIO_MODULES)
    if name == "initcall_blacklist":
        return any(i.replace("-", "_").startswith("vfio") for i in items)
    return False


def other_spelling(token: str) -> str:
    """The same argument with every `-` and `_` of its name swapped."""
    name, sep, value = token.partition("=")
    return name.translate(str.maketrans("-_", "_-")) + sep + value
