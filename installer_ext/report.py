"""What `detect` prints: the host's facts and, asked of the planner, why each function
cannot go to VMs (and the screens' device lines)."""

from __future__ import annotations

from installer_ext.config.model import Choices, InstallInfo
from installer_ext.host.model import HostFacts, PciFunction
from installer_ext.plan.reasons import Blocker
from installer_ext.plan.planner import blockers


def detect_blockers(facts: HostFacts) -> dict[str, tuple[Blocker, ...]]:
    """The planner's blockers with empty choices and no install config: what `plan`
    refuses an explicit address for before anything is chosen (NICs with a link and
    disk controllers are blocked as `tentative` candidates)."""
    return blockers(facts, Choices(), InstallInfo())


def detect_json(facts: HostFacts) -> dict[str, object]:
    """The `detect --json` document: the facts, each device with the planner's
    `blocked` (its reasons) and `blockers` (code, reason, subject, tentative, by)."""
    found = detect_blockers(facts)
    doc = facts.to_json()
    for dev in doc["devices"]:
        bs = found.get(dev["address"], ())
        dev["blocked"] = [b.reason for b in bs]
        dev["blockers"] = [b.to_json() for b in bs]
    return doc


def short_address(address: str) -> str:
    return address[5:] if address.startswith("0000:") else address


def role(dev: PciFunction) -> str:
    """What the host uses the function for, in a few words."""
    parts = []
    if dev.boot_vga:
        parts.append("boot display")
    if dev.net_interfaces:
        parts.append("net " + ",".join(dev.net_interfaces))
    if dev.block_devices:
        parts.append("disk " + ",".join(dev.block_devices))
    if dev.sriov is not None:
        parts.append(f"SR-IOV PF {dev.sriov.num_vfs}/{dev.sriov.total_vfs} VFs")
    if dev.physfn:
        parts.append(f"VF of {short_address(dev.physfn)}")
    return "; ".join(parts)


def device_label(dev: PciFunction) -> str:
    vendor = dev.vendor_name or (dev.vendor_id or "????")
    name = dev.device_name or (dev.device_id or "????")
    return f"{vendor} {name}"


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def iommu_sentence(facts: HostFacts) -> str:
    io = facts.iommu
    tables = "/".join(io.firmware_tables) or "none"
    if io.state == "enabled":
        return f"enabled ({len(facts.groups)} groups reported by the kernel; firmware table {tables})"
    if io.state == "available":
        return (
            f"available: firmware table {tables} present, off in this kernel; "
            f"on after install ({len(facts.groups)} groups predicted from the topology)"
        )
    return "absent: no DMAR or IVRS table, passthrough is impossible on this host"


def format_detect(facts: HostFacts) -> str:
    cpu = facts.cpu
    lines = [
        f"CPU:    {cpu.vendor} ({cpu.vendor_string or 'unknown'}) {cpu.model_name or ''}".rstrip(),
        f"        virtualization: {_yes_no(cpu.virtualization)}"
        + (f" ({', '.join(cpu.evidence)})" if cpu.evidence else " (no vmx/svm flag, no kvm device)"),
        f"IOMMU:  {iommu_sentence(facts)}",
        f"        interrupt remapping: {_yes_no(facts.iommu.interrupt_remapping)}",
        "",
    ]
    header = ("GROUP", "ADDRESS", "KIND", "IDS", "DRIVER", "DEVICE", "ROLE")
    rows = []
    for d in facts.devices:
        g = d.group
        gtext = "-" if g is None else (f"{g}*" if d.iommu_group is None else str(g))
        rows.append(
            (
                gtext,
                short_address(d.address),
                d.kind,
                d.ids or "????:????",
                d.driver or "-",
                device_label(d),
                role(d),
            )
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]
    name_width = 48

    def fmt(r: tuple[str, ...]) -> str:
        name = r[5] if len(r[5]) <= name_width else r[5][: name_width - 3] + "..."
        cells = [r[i].ljust(widths[i]) for i in range(5)] + [name.ljust(name_width), r[6]]
        return "  ".join(cells).rstrip()

    lines.append(fmt(header))
    found = detect_blockers(facts)
    for d, r in zip(facts.devices, rows):
        lines.append(fmt(r))
        for b in found.get(d.address, ()):
            lines.append(" " * (widths[0] + 2) + f"blocked: {b.reason}")
        if d.unknown:
            lines.append(" " * (widths[0] + 2) + f"unknown: {', '.join(d.unknown)}")
    if facts.groups_predicted:
        lines += ["", "* predicted group (the IOMMU is off in this kernel); re-checked on the installed system"]
    for p in facts.problems:
        lines.append(f"warning: {p}")
    return "\n".join(lines) + "\n"


def format_plan(plan) -> str:
    """The plan in words: what will be written and bound, and what was refused."""
    lines = []
    state = "on" if plan.enabled else "off"
    lines.append(f"PCI passthrough: {state}    GPU drivers: {'on' if plan.gpu_drivers else 'off'}")
    lines.append(f"Kernel arguments: {' '.join(plan.kernel_args) or '(none)'}")
    if plan.harvester_kernel_args:
        lines.append(f"  already set by Harvester (bootargs.cfg): {' '.join(plan.harvester_kernel_args)}")
    if plan.kernel_args:
        lines.append(f"  added by installer-ext (/oem/grubenv extra_cmdline): {' '.join(plan.added_kernel_args) or '(nothing)'}")
    if plan.passthrough:
        lines.append("Bound to vfio-pci at boot:")
        for p in plan.passthrough:
            group = "?" if p.iommu_group is None else str(p.iommu_group)
            how = "by id (vfio-pci options in modprobe.d)" if p.bind_at_boot == "ids" else "by address"
            extra = f", VF of {short_address(p.vf_of)}" if p.vf_of else ""
            pred = " (group predicted)" if p.group_predicted else ""
            lines.append(
                f"  {short_address(p.address)}  {p.vendor_id}:{p.device_id}  {p.kind:<7} group {group}{pred}  "
                f"{p.why}{extra}, {how}"
            )
    else:
        lines.append("Bound to vfio-pci at boot: nothing")
    for s in plan.sriov:
        dest = "to vfio-pci for VMs" if s.vfs_to_vfio else "left to the host driver"
        lines.append(f"SR-IOV: {short_address(s.address)} gets {s.num_vfs} of {s.total_vfs} VFs, {dest}")
    if plan.host_gpus:
        lines.append("Kept on the host for containers: " + ", ".join(short_address(a) for a in plan.host_gpus))
    if plan.device_plugins:
        lines.append("Device plugin expected: " + ", ".join(plan.device_plugins))
    if plan.settings:
        lines.append("Harvester settings: " + ", ".join(f"{k}={v}" for k, v in sorted(plan.settings.items())))
    if plan.addons:
        lines.append("Addons: " + ", ".join(f"{k}={'enabled' if v else 'disabled'}" for k, v in sorted(plan.addons.items())))
    if plan.claims:
        lines.append("PCIDeviceClaims: created at first boot for the bound devices")
    for r in plan.refused:
        tag = "REFUSED" if r.fatal else "skipped"
        lines.append(f"{tag}: {short_address(r.address) if r.address else 'host'}: {r.reason}")
    for w in plan.warnings:
        lines.append(f"warning: {w}")
    return "\n".join(lines) + "\n"
