"""Fake machines: sysfs/procfs trees written under a temp dir from a short description.

The layout follows what a real kernel writes (compare with
tests/fixtures/real-kernel): devices under sys/devices/pciDDDD:BB/ nested by bridge,
relative symlinks for bus/pci/devices, drivers, iommu_group, class/net, class/block.
"""

from tests.fakesys.builder import Dev, Machine, build  # noqa: F401
