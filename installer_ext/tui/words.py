"""Plain words for the screen: the host's state and each function's state.

Pure text from the facts and the plans the session holds; no urwid, no decisions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from installer_ext.config.model import InstallInfo
from installer_ext.host.model import HostFacts, PciFunction
from installer_ext.plan import model as pm
from installer_ext.report import short_address
from installer_ext.tui.session import Session

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
    virt = "virtualization on" if cpu.virtualization else "virtualization not seen"
    if io.state == "enabled":
        iommu = f"IOMMU on ({len(facts.groups)} groups)"
    elif io.state == "available":
        iommu = f"IOMMU off now, on after install ({'/'.join(io.firmware_tables) or 'firmware'} table)"
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
        meaning = "Devices marked [ ] can go to VMs; a device always goes with its whole IOMMU group."
        if io.state == "available":
            meaning += " Groups (*) are predicted and checked again before anything is bound."
        out.append(HostLine("text", meaning))
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
                f"Not chosen yet: {' and '.join(missing)}. Devices that may hold them are blocked for now.",
            )
        )
    return out


@dataclass(frozen=True)
class RowState:
    mark: str  # "[x]", "[ ]", " - ", " ! ", "   "
    short: str  # for the row
    long: str  # for the details line
    style: str


def _short_reason(reason: str) -> str:
    """The first clause of a reason: `boot display (boot_vga): the console ...` ->
    `boot display`. Addresses keep their colons."""
    text = shorten(reason)
    for sep in ("; ", ": ", " ("):
        cut = text.find(sep)
        if cut > 0:
            text = text[:cut]
    if "may become the management network" in text:
        text = "may be the management network (" + text.split(" ", 1)[0] + ")"
    m = re.match(r"holds (/dev/\S+), which may be the install disk", text)
    if m:
        text = f"may hold the install disk ({m.group(1).rstrip(',')})"
    return text


def _bind_words(e: pm.Passthrough) -> str:
    if e.bind_at_boot == pm.BIND_IDS:
        return f"bound at boot by id {e.vendor_id}:{e.device_id} (vfio-pci.ids)"
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
            short = f"to VMs: group of {short_address(first)}" if first else "to VMs: same group"
            why = f"same IOMMU group as {short_address(first)}" if first else "same IOMMU group"
        else:
            short = f"to VMs: VF of {short_address(e.vf_of or '')}"
            why = f"VF of {short_address(e.vf_of or '')} (SR-IOV)"
        return RowState("[x]", short, f"To VMs (vfio-pci): {why}; {_bind_words(e)}.", SELECTED)
    r = s.refused.get(a)
    if r is not None and r.fatal:
        return RowState(" ! ", "refused: " + _short_reason(r.reason), "Refused: " + shorten(r.reason), REFUSED)
    if a in s.host_gpus:
        return RowState(
            "[ ]", "kept for containers", "Kept on the host driver for containers (GPU device plugin).", HOST
        )
    if dev.physfn is not None:
        if dev.blockers:
            b = dev.blockers[0]
            return RowState("   ", _short_reason(b.reason), "Blocked: " + shorten(b.reason), BLOCKED)
        return RowState(
            "   ",
            f"VF, host driver {dev.driver or 'none'}",
            f"VF of {short_address(dev.physfn)}: VFs go to VMs through \"VFs at boot\" on their physical function.",
            NORMAL,
        )
    b = s.blocked.get(a)
    if b is not None:
        return RowState(" - ", _short_reason(b.reason), "Blocked: " + shorten(b.reason), BLOCKED)
    if a in s.selectable:
        return RowState("[ ]", "can go to VMs", "Can go to VMs: Space selects it with its IOMMU group.", NORMAL)
    if dev.blockers:
        b = dev.blockers[0]
        return RowState(" - ", _short_reason(b.reason), "Blocked: " + shorten(b.reason), BLOCKED)
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


def group_words(gid: int | None, predicted: bool, count: int) -> str:
    if gid is None:
        return "No IOMMU group"
    mark = "*" if predicted else ""
    fn = "function" if count == 1 else "functions"
    return f"IOMMU group {gid}{mark}" + (" (predicted)" if predicted else "") + f", {count} {fn}"
