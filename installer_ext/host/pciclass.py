"""What a PCI class code says about a function (one home for class codes).

Class codes are the 6 hex digits sysfs `class` and uevent `PCI_CLASS` give: base class,
subclass, programming interface (PCI Code and ID Assignment Specification).
"""

from __future__ import annotations

from installer_ext.host.vendors import ACCELERATOR_GPU_VENDORS

# The device kinds of the detect contract, and of the config's `kind` selector.
KINDS = ("gpu", "nic", "storage", "usb", "audio", "bridge", "other")

# Bridges of every sort (host, ISA, PCI-to-PCI, ...): the base class of the `bridge` kind.
BRIDGE_BASE_CLASS = "06"
# PCI-to-PCI bridges (0604, 0609 semi-transparent) and CardBus bridges (0607): header
# types 1 and 2, which vfio leaves as they are in a group.
PCI_BRIDGE_CLASSES = ("0604", "0607", "0609")


def classify(class_id: str | None, vendor_id: str | None = None) -> str:
    """Contract kind of a 6-hex-digit class code: gpu, nic, storage, usb, audio,
    bridge or other (the `kind` of detect --json and of the config's selectors)."""
    if class_id is None:
        return "other"
    base, sub = class_id[:2], class_id[2:4]
    if base == "03":
        return "gpu"
    if base == "12" and vendor_id in ACCELERATOR_GPU_VENDORS:
        return "gpu"  # processing accelerators of GPU vendors (compute-only GPUs)
    if base == "02":
        return "nic"
    if base == "01":
        return "storage"
    if base == "0c" and sub == "03":
        return "usb"
    if base == "04" and sub in ("01", "03"):
        return "audio"
    if base == BRIDGE_BASE_CLASS:
        return "bridge"
    return "other"


def is_display(class_id: str | None) -> bool:
    """Display controllers (base class 03): the only functions with `boot_vga`."""
    return class_id is not None and class_id.startswith("03")


def is_bridge(class_id: str | None) -> bool:
    """Any bridge (base class 06): what classify calls `bridge`."""
    return class_id is not None and class_id[:2] == BRIDGE_BASE_CLASS


def is_pci_bridge(class_id: str | None) -> bool:
    return class_id is not None and class_id[:4] in PCI_BRIDGE_CLASSES


def is_pci_to_pci_bridge(class_id: str | None) -> bool:
    """Class 0604 proper: ports whose ACS decides whether VFs below are isolated."""
    return class_id is not None and class_id.startswith("0604")
