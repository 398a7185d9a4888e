"""Names of Harvester objects the plan asks for (one home: the planner writes them into
the plan, render and first boot read them back)."""

from __future__ import annotations

# Settings (harvesterhci.io/v1beta1 Setting) from the installer-ext proposal.
SETTING_PCI = "pci-pt-enable"
SETTING_GPU = "gpu-enable"
# The Addon (harvesterhci.io/v1beta1, namespace harvester-system) that runs the
# pcidevices controller.
ADDON_PCIDEVICES = "pcidevices-controller"
