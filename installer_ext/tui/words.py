"""Plain words for the screen: the host's state and each function's state.

Pure text from the facts and the plans the session holds; no urwid, no decisions. A
blocker or refusal is worded from its fields (code, subject, tentative, by), never by
reading the planner's sentence back: the sentence is shown whole in the details line.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from installer_ext.config.model import InstallInfo
from installer_ext.host.model import HostFacts, PciFunction
from installer_ext.plan import model as pm
from installer_ext.plan import reasons as rs
from installer_ext.report import short_address
from installer_ext.tui.session import Session

log = logging.getLogger(__name__)

# Styles (palette names) used by the rows.
SELECTED = "selected"
BLOCKED = "blocked"
REFUSED = "refused"
HOST = "hostgpu"
NORMAL = "row"

_ADDR = re.compile(r"\b0000:([0-9a-f]{2}:[0-9a-f]{2}\.[0-7])\b")
VENDORS = {"intel": "Intel", "amd": "AMD", "other": "unknown vendor"}


@dataclass(frozen=True)
class HostLine:
    style: str  # ok | warn | bad | text
    text: str


def shorten(text: str) -> str:
    """`0000:01:00.0` -> `01:00.0` inside a sentence (domain 0 is implied)."""
    return _ADDR.sub(r"\1", text)


def host_lines(facts: HostFacts, install: InstallInfo, allow_unsafe: bool = False) -> list[HostLine]:
    cpu, io = facts.cpu, facts.iommu
    virt = {"intel": "VT-x", "amd": "AMD-V"}.get(cpu.vendor, "virtualization")
    virt += " on" if cpu.virtualization else " not seen"
    if io.state == "enabled":
        iommu = f"IOMMU on ({len(facts.groups)} groups)"
    elif io.state == "available":
        iommu = f"IOMMU on after install ({'/'.join(io.firmware_tables) or 'firmware'})"
    else:
        iommu = "IOMMU absent"
    ir = {True: "interrupt remapping on", False: "interrupt remapping OFF", None: "interrupt remapping unknown"}[
        io.interrupt_remapping
    ]
    first_style = "ok"
    if io.state == "absent" or not cpu.virtualization or io.interrupt_remapping is False:
        first_style = "warn"
    out = [HostLine(first_style, f"CPU {VENDORS.get(cpu.vendor, cpu.vendor)}, {virt} | {iommu} | {ir}")]

    if io.state == "absent":
        out.append(
            HostLine(
                "bad",
                "No DMAR/IVRS table: no device can go to VMs on this host. Enable VT-d / AMD-Vi in the "
                "firmware setup, then restart the install.",
            )
        )
    else:
        out.append(HostLine("text", "[ ] can go to VMs; a device always goes with its whole IOMMU group."))
        if io.state == "available":
            out.append(HostLine("text", "Groups are predicted for now, and checked again before anything is bound."))
        if io.interrupt_remapping is False and not allow_unsafe:
            out.append(
                HostLine("warn", "Without interrupt remapping vfio refuses devices unless unsafe interrupts are allowed.")
            )
    if not cpu.virtualization:
        out.append(HostLine("warn", "Enable VT-x / AMD-V in the firmware, or VMs will not start."))
    missing = []
    if not install.known or not install.device:
        missing.append("install disk")
    if not install.known or not install.management:
        missing.append("management network")
    if missing:
        out.append(
            HostLine(
                "text",
                f"{' and '.join(missing).capitalize()} not chosen yet: candidates are blocked.",
            )
        )
    return out


@dataclass(frozen=True)
class RowState:
    mark: str  # "[x]", "[ ]", " - ", " ! ", "   "
    short: str  # for the row
    long: str  # for the details line
    style: str


_DISK_WORDS = {rs.BLOCK_INSTALL_DISK: "install disk", rs.BLOCK_DATA_DISK: "data disk"}
# Codes whose row words need no field of the refusal.
_FIXED_WORDS = {
    rs.BLOCK_BOOT_VGA: "boot display",
    rs.BLOCK_SRIOV_PF: "SR-IOV PF, stays on host",
    rs.BLOCK_NO_IOMMU: "no IOMMU",
    rs.BLOCK_UNKNOWN: "unreadable in sysfs",
    rs.BLOCK_HOST_GPU: "kept on host (hostGpus)",
    rs.REFUSE_NO_INTERRUPT_REMAPPING: "no interrupt remapping",
    rs.REFUSE_VF_ADDRESSES: "VF addresses unknown",
    rs.REFUSE_VF_GROUP: "VFs share its group",
    rs.REFUSE_KERNEL_ARG: "kernel argument refused",
}


def short_reason(r: pm.Refusal, dev: PciFunction | None) -> str:
    """A few words for the row, from the refusal's fields; the details line under the
    list has the planner's whole sentence."""
    code = r.code
    if code in _FIXED_WORDS:
        return _FIXED_WORDS[code]
    if code == rs.BLOCK_SAME_GROUP:
        return f"same group as {short_address(r.by)}" if r.by else "same IOMMU group"
    if code == rs.BLOCK_BRIDGE:
        return "PCI bridge" if dev is not None and dev.pci_bridge else "host/ISA bridge"
    if code == rs.BLOCK_MGMT_NIC:
        if r.tentative:
            return "may be mgmt network"
        return f"management net {r.subject}" if r.subject else "management net"
    if code in _DISK_WORDS:
        if r.tentative:
            return "may hold install disk"
        return f"{_DISK_WORDS[code]} {r.subject}" if r.subject else _DISK_WORDS[code]
    return code.replace("-", " ") or "blocked"


def _bind_words(e: pm.Passthrough) -> str:
    if e.bind_at_boot == pm.BIND_IDS:
        return f"bound at boot by id {e.vendor_id}:{e.device_id} (vfio-pci options in modprobe.d)"
    return "bound at boot by address (driver_override)"


def row_state(s: Session, dev: PciFunction) -> RowState:
    a = dev.address
    e = s.passthrough.get(a)
    if e is not None:
        if e.why == pm.WHY_SELECTED:
            short = "to VMs"
            why = "selected"
        elif e.why == pm.WHY_SAME_GROUP:
            g = s.group_of.get(a)
            first = None
            if g is not None:
                first = next((x for x in g.passthrough if s.passthrough[x].why == pm.WHY_SELECTED), None)
            short = f"to VMs with {short_address(first)}" if first else "to VMs (same group)"
            why = f"same IOMMU group as {short_address(first)}" if first else "same IOMMU group"
        else:
            short = "to VMs (VF)"
            why = f"VF of {short_address(e.vf_of or '')} (SR-IOV)"
        return RowState("[x]", short, f"To VMs (vfio-pci): {why}; {_bind_words(e)}.", SELECTED)
    r = s.refused.get(a)
    if r is not None and r.fatal:
        return RowState(" ! ", "refused: " + short_reason(r, dev), "Refused: " + shorten(r.reason), REFUSED)
    if a in s.host_gpus:
        return RowState(
            "[ ]", "kept for containers", "Kept on the host driver for containers (GPU device plugin).", HOST
        )
    b = s.blocked.get(a)
    if dev.physfn is not None:
        sp = s.sriov_plan(dev.physfn)
        if sp is not None and a not in sp.vfs:
            return RowState(
                "   ",
                "not made at boot",
                f"{short_address(dev.physfn)} gets {sp.num_vfs} VFs at every boot: this one will not exist.",
                BLOCKED,
            )
        if sp is not None and not sp.vfs_to_vfio:
            return RowState("   ", "VF on the host driver", "VFs of this PF stay on their host driver (VFs to VMs is off).", NORMAL)
        if b is not None:
            return RowState("   ", short_reason(b, dev), "Blocked: " + shorten(b.reason), BLOCKED)
        return RowState(
            "   ",
            f"VF, host driver {dev.driver or 'none'}",
            f"VF of {short_address(dev.physfn)}: VFs go to VMs through \"VFs at boot\" on their physical function.",
            NORMAL,
        )
    if b is not None:
        return RowState(" - ", short_reason(b, dev), "Blocked: " + shorten(b.reason), BLOCKED)
    if a in s.selectable:
        return RowState("[ ]", "can go to VMs", "Can go to VMs: Space selects it with its IOMMU group.", NORMAL)
    return RowState("   ", "", "", NORMAL)


_VENDOR_SUFFIX = re.compile(r"(,? (Inc\.?|Corporation|Corp\.|Co\.?,? Ltd\.?|Ltd\.?|Technology|Electronics))+$")


def vendor_words(vendor: str) -> str:
    """`Advanced Micro Devices, Inc. [AMD/ATI]` -> `AMD/ATI`, `Intel Corporation` -> `Intel`."""
    m = re.search(r"\[([^\]]+)\]$", vendor)
    if m:
        return m.group(1)
    return _VENDOR_SUFFIX.sub("", vendor) or vendor


def device_words(dev: PciFunction) -> str:
    vendor = vendor_words(dev.vendor_name) if dev.vendor_name else (dev.vendor_id or "????")
    name = dev.device_name or dev.device_id or "????"
    return f"{vendor} {name}"


def group_words(gid: int | None, predicted: bool, count: int, hidden: int = 0) -> str:
    fn = "function" if count == 1 else "functions"
    tail = f", {hidden} bridge{'s' if hidden > 1 else ''} not shown" if hidden else ""
    if gid is None:
        return f"No IOMMU group: {count} {fn}{tail}"
    return f"IOMMU group {gid}" + (" (predicted)" if predicted else "") + f", {count} {fn}{tail}"
