"""Kernel arguments per CPU vendor.

Intel needs `intel_iommu=on` (SUSE's kernel leaves VT-d off by default); AMD's IOMMU is
on whenever the firmware enables it, and `amd_iommu=on` is not an option the kernel
knows (it logs it as unknown). `iommu=pt` keeps host DMA off the translation path.
`pcie_acs_override` is never written: it fakes isolation.
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
    vfio_ids: list[str],
    allow_unsafe_interrupts: bool,
    extra: tuple[str, ...],
) -> list[str]:
    args: list[str] = []
    if enabled:
        args += IOMMU_ARGS.get(cpu_vendor, ())
        if vfio_ids:
            # vfio-pci claims these ids before the native driver: kmod reads the
            # dashed spelling from the command line; dracut loads it first.
            args.append("vfio-pci.ids=" + ",".join(vfio_ids))
            args.append("rd.driver.pre=vfio-pci")
        if allow_unsafe_interrupts:
            args.append(UNSAFE_INTERRUPTS_ARG)
    for token in extra:
        if token not in args:
            args.append(token)
    return args
