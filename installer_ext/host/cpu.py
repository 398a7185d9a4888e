"""CPU vendor and hardware virtualization from ROOT/proc/cpuinfo and ROOT/sys."""

from __future__ import annotations

import logging
import os

from installer_ext.host.model import CpuFacts
from installer_ext.host.sysfs import SysRoot

log = logging.getLogger(__name__)

_VENDORS = {
    "GenuineIntel": "intel",
    "AuthenticAMD": "amd",
    # Hygon Dhyana is AMD's Zen with the AMD IOMMU (amd_iommu driver).
    "HygonGenuine": "amd",
}
# The flag that means hardware virtualization for each vendor. A flag of the other
# vendor means nothing (TCG guests show `svm` on an Intel model, for instance).
_VIRT_FLAG = {"intel": "vmx", "amd": "svm"}


def read_cpu(root: SysRoot) -> CpuFacts:
    text = root.read_text(os.path.join(root.proc, "cpuinfo"), limit=1 << 16) or ""
    vendor_string = model_name = None
    flags: set[str] = set()
    # The first processor block is enough: every core of a host is the same model.
    for line in text.splitlines():
        if not line.strip():
            if vendor_string is not None:
                break
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip()
        value = value.strip()
        if key == "vendor_id":
            vendor_string = value
        elif key == "model name":
            model_name = value
        elif key == "flags":
            flags = set(value.split())
    vendor = _VENDORS.get(vendor_string or "", "other")

    evidence: list[str] = []
    flag = _VIRT_FLAG.get(vendor)
    if flag and flag in flags:
        evidence.append(flag)
    # /dev/kvm exists when the kvm module found usable virtualization; its sysfs twin is
    # sys/class/misc/kvm, which a fake tree can hold and a real one shows.
    if os.path.lexists(os.path.join(root.sys, "class", "misc", "kvm")):
        evidence.append("kvm")
    facts = CpuFacts(
        vendor=vendor,
        vendor_string=vendor_string,
        model_name=model_name,
        virtualization=bool(evidence),
        evidence=tuple(evidence),
    )
    log.debug("cpu: %s", facts)
    return facts
