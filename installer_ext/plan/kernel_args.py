"""Kernel arguments per CPU vendor.

Intel needs `intel_iommu=on` (SUSE's kernel leaves VT-d off by default); AMD's IOMMU is
on whenever the firmware enables it, and `amd_iommu=on` is not an option the kernel
knows (it logs it as unknown). `iommu=pt` keeps host DMA off the translation path.
`pcie_acs_override` is never written: it fakes isolation.

The ids bound at boot are not kernel arguments: `vfio-pci.ids=` on the command line
would survive the rescue switch (`installer_ext.skip=1` cannot take a token off the
line it sits on; a real kernel showed vfio-pci claiming the devices on a rescue boot).
They go to modprobe.d with softdeps instead, which the yip stage leaves out on a rescue
boot; a native driver that wins from the initrd is corrected by the binder.
"""

from __future__ import annotations

IOMMU_ARGS = {
    "intel": ("intel_iommu=on", "iommu=pt"),
    "amd": ("iommu=pt",),
}
UNSAFE_INTERRUPTS_ARG = "vfio_iommu_type1.allow_unsafe_interrupts=1"


def kernel_args(
    cpu_vendor: str,
    enabled: bool,
    allow_unsafe_interrupts: bool,
    extra: tuple[str, ...],
) -> list[str]:
    args: list[str] = []
    if enabled:
        args += IOMMU_ARGS.get(cpu_vendor, ())
        if allow_unsafe_interrupts:
            args.append(UNSAFE_INTERRUPTS_ARG)
    for token in extra:
        if token not in args:
            args.append(token)
    return args
