"""IOMMU state and interrupt remapping, from ROOT/sys and ROOT/proc."""

from __future__ import annotations

import logging
import os

from installer_ext.host.model import IommuFacts
from installer_ext.host.sysfs import SysRoot

log = logging.getLogger(__name__)

# ACPI tables that announce an IOMMU: DMAR (Intel VT-d), IVRS (AMD-Vi).
FIRMWARE_TABLES = ("DMAR", "IVRS")


def interrupt_remapping(root: SysRoot) -> bool | None:
    """True when the interrupt controllers are remapped (`IR-IO-APIC`, `IR-PCI-MSI`...).

    None when /proc/interrupts is unreadable or names no IO-APIC/MSI controller, so
    nothing can be said either way.
    """
    text = root.read_text(os.path.join(root.proc, "interrupts"), limit=1 << 22)
    if text is None:
        return None
    seen_controller = False
    for line in text.splitlines()[1:]:
        for token in line.split():
            if token.startswith("IR-"):
                return True
            if "IO-APIC" in token or "PCI-MSI" in token:
                seen_controller = True
    return False if seen_controller else None


def read_iommu(root: SysRoot) -> IommuFacts:
    tables = tuple(
        t
        for t in FIRMWARE_TABLES
        if os.path.lexists(os.path.join(root.sys, "firmware", "acpi", "tables", t))
    )
    units = tuple(sorted(root.listdir(os.path.join(root.sys, "class", "iommu"))))
    groups = root.listdir(os.path.join(root.sys, "kernel", "iommu_groups"))
    if groups:
        state = "enabled"
    elif tables:
        state = "available"
    else:
        state = "absent"
    facts = IommuFacts(
        state=state,
        interrupt_remapping=interrupt_remapping(root),
        firmware_tables=tables,
        units=units,
    )
    log.debug("iommu: %s", facts)
    return facts
