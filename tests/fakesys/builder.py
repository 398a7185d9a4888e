"""Write a fake sysfs/procfs tree from a `Machine` description.

A `Dev` is one PCI function. Bridges nest what is behind them (`parent`); SR-IOV PFs
with `num_vfs` get their VFs generated (addresses from offset/stride, ids from
`vf_device`), as the kernel would show them. `config` space is synthesised so the
capability list (PCIe type, ACS, multifunction) says what the description says.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from installer_ext.host.address import split_address, vf_address
from tests.fakesys.runtime import Runtime, write as write_runtime


# Drivers built into the kernel have no module link; some modules name their driver
# differently (the kernel's xhci_pci module registers the driver xhci_hcd).
BUILTIN_DRIVERS = {"pcieport"}
DRIVER_MODULES = {"xhci_hcd": "xhci_pci", "intel-spi": "spi_intel_pci", "skl_uncore": "intel_uncore"}


@dataclass
class Dev:
    address: str
    ids: str  # "vvvv:dddd"
    cls: str  # 6 hex digits, "030000"
    driver: str | None = None
    group: int | None = None  # the kernel's group when the IOMMU is on
    parent: str | None = None  # upstream bridge
    subsys: str = "0000:0000"
    boot_vga: bool | None = None  # None: file only for display class, value 0
    pcie_type: int | None = 0  # None: conventional PCI
    multifunction: bool = False
    acs: bool = False
    sriov_total: int = 0
    num_vfs: int = 0
    vf_device: str | None = None
    vf_offset: int = 1
    vf_stride: int = 1
    vf_driver: str | None = None
    vf_groups: int | None = None  # first group id of the generated VFs (IOMMU on)
    autoprobe: bool = True
    reset_methods: tuple[str, ...] = ("flr", "bus")
    net: tuple[tuple[str, str], ...] = ()  # (ifname, mac)
    link: str = "up"  # operstate of its interfaces
    disks: tuple[str, ...] = ()  # whole disks on this controller (sda, nvme0n1)
    partitions: int = 0  # partitions per disk
    nvme_subsys: str | None = None  # put namespaces under a virtual nvme-subsystem
    physfn: str | None = None  # set on generated VFs
    config_bytes: int | None = None  # override: 64 for an unprivileged read, ...
    header_type: int | None = None  # default from class (1 for 0604)


@dataclass
class Machine:
    name: str
    devices: list[Dev]
    cpu_vendor: str = "GenuineIntel"
    cpu_model: str = "Intel(R) Core(TM) i7-9700K CPU @ 3.60GHz"
    cpu_flags: tuple[str, ...] = ("fpu", "vme", "pae", "vmx", "sse4_2", "avx2")
    cpus: int = 2
    iommu: str = "on"  # on | off | none
    firmware_table: str | None = "DMAR"
    interrupt_remapping: bool = True
    kvm: bool = True
    cmdline: str = "BOOT_IMAGE=/boot/vmlinuz root=LABEL=COS_ACTIVE"
    disk_aliases: dict[str, str] = field(default_factory=dict)  # by-id name -> disk
    # A running node's mounts, swap, routes, bonds and bridges (tests/fakesys/runtime.py);
    # None for a machine as the installer sees it (no such files are written).
    runtime: Runtime | None = None


def _w(path: str, data: str | bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def _ln(target_abs: str, link: str) -> None:
    os.makedirs(os.path.dirname(link), exist_ok=True)
    rel = os.path.relpath(target_abs, os.path.dirname(link))
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(rel, link)


def config_space(d: Dev) -> bytes:
    vendor, device = (int(x, 16) for x in d.ids.split(":"))
    size = d.config_bytes or (4096 if d.pcie_type is not None else 256)
    b = bytearray(max(size, 256) if d.config_bytes is None else max(size, 64))
    b[0:2] = vendor.to_bytes(2, "little")
    b[2:4] = device.to_bytes(2, "little")
    b[4:6] = (0x0406).to_bytes(2, "little")
    cls = int(d.cls, 16)
    b[8] = 1  # revision
    b[9] = cls & 0xFF
    b[10] = (cls >> 8) & 0xFF
    b[11] = (cls >> 16) & 0xFF
    hdr = d.header_type if d.header_type is not None else (1 if d.cls[:4] == "0604" else 0)
    b[0x0E] = hdr | (0x80 if d.multifunction else 0)
    if d.pcie_type is not None:
        b[6] = 0x10  # status: capability list
        b[0x34] = 0x40
        b[0x40] = 0x10  # PCIe capability
        b[0x41] = 0x00
        b[0x42] = (d.pcie_type << 4) | 0x2
        pos = 0x100
        caps = [0x0001]  # AER
        if d.acs:
            caps.append(0x000D)
        if d.sriov_total:
            caps.append(0x0010)
        for i, cid in enumerate(caps):
            nxt = pos + 0x40 if i + 1 < len(caps) else 0
            if pos + 4 <= len(b):
                b[pos : pos + 4] = (cid | (1 << 16) | (nxt << 20)).to_bytes(4, "little")
                if cid == 0x000D and pos + 8 <= len(b):
                    b[pos + 4 : pos + 6] = (0x5F).to_bytes(2, "little")  # SV RR CR UF TB DT
            pos = nxt
    return bytes(b[:size])


def expand_vfs(devices: list[Dev]) -> list[Dev]:
    """The devices with the VFs of every PF that has `num_vfs`; refuses a description
    whose VFs would land on another function's address (too many VFs for the bus gap)."""
    out = []
    for d in devices:
        out.append(d)
        if d.num_vfs:
            vid = d.ids.split(":")[0]
            for n in range(d.num_vfs):
                addr = vf_address(d.address, d.vf_offset, d.vf_stride, n)
                assert addr is not None
                out.append(
                    Dev(
                        address=addr,
                        ids=f"{vid}:{d.vf_device}",
                        cls=d.cls,
                        driver=d.vf_driver,
                        group=None if d.vf_groups is None else d.vf_groups + n,
                        parent=d.parent,
                        subsys=d.subsys,
                        pcie_type=0,
                        physfn=d.address,
                        reset_methods=("flr",),
                    )
                )
    seen: set[str] = set()
    for d in out:
        if d.address in seen:
            raise ValueError(f"fake machine: two functions at {d.address} (VFs running into another device?)")
        seen.add(d.address)
    return out


def _cpuinfo(m: Machine) -> str:
    blocks = []
    for i in range(m.cpus):
        blocks.append(
            f"processor\t: {i}\nvendor_id\t: {m.cpu_vendor}\ncpu family\t: 6\nmodel\t\t: 158\n"
            f"model name\t: {m.cpu_model}\nstepping\t: 12\ncpu MHz\t\t: 3600.000\n"
            f"flags\t\t: {' '.join(m.cpu_flags)}\n"
        )
    return "\n".join(blocks) + "\n"


def _interrupts(m: Machine) -> str:
    ir = "IR-" if m.interrupt_remapping else ""
    cols = "".join(f"       CPU{i}" for i in range(m.cpus))
    zeros = "".join(f" {0:10d}" for _ in range(m.cpus))
    lines = [
        "    " + cols,
        f"  0:{zeros}  {ir}IO-APIC    2-edge      timer",
        f"  8:{zeros}  {ir}IO-APIC    8-edge      rtc0",
        f" 24:{zeros}  {ir}PCI-MSI 327680-edge      xhci_hcd",
        f"NMI:{zeros}   Non-maskable interrupts",
    ]
    return "\n".join(lines) + "\n"


def build(m: Machine, root: str) -> str:
    """Write `m` under `root` (created); returns root."""
    sys_ = os.path.join(root, "sys")
    devs = expand_vfs(m.devices)
    by_addr = {d.address: d for d in devs}
    vf_index: dict[str, int] = {}
    counts: dict[str, int] = {}
    for d in devs:
        if d.physfn:
            vf_index[d.address] = counts.get(d.physfn, 0)
            counts[d.physfn] = vf_index[d.address] + 1
    paths: dict[str, str] = {}

    def dev_path(d: Dev) -> str:
        if d.address in paths:
            return paths[d.address]
        if d.parent is not None:
            base = dev_path(by_addr[d.parent])
        else:
            dom, bus, _, _ = split_address(d.address)
            base = os.path.join(sys_, "devices", f"pci{d.address[:-8]}:{bus:02x}")
        paths[d.address] = os.path.join(base, d.address)
        return paths[d.address]

    bus_pci = os.path.join(sys_, "bus", "pci")
    for name in ("drivers_probe", "drivers_autoprobe", "rescan"):
        _w(os.path.join(bus_pci, name), "1\n" if name == "drivers_autoprobe" else "")
    drivers = {d.driver for d in devs if d.driver} | {"vfio-pci"}
    for drv in sorted(drivers):
        for f in ("bind", "unbind", "new_id", "remove_id"):
            _w(os.path.join(bus_pci, "drivers", drv, f), "")
        if drv not in BUILTIN_DRIVERS:
            mod = os.path.join(sys_, "module", DRIVER_MODULES.get(drv, drv.replace("-", "_")))
            _w(os.path.join(mod, "refcnt"), "1\n")
            _ln(mod, os.path.join(bus_pci, "drivers", drv, "module"))

    groups: dict[int, list[str]] = {}
    for d in devs:
        p = dev_path(d)
        vid, did = d.ids.split(":")
        svid, sdid = d.subsys.split(":")
        cls_int = int(d.cls, 16)
        _w(os.path.join(p, "vendor"), f"0x{vid}\n")
        _w(os.path.join(p, "device"), f"0x{did}\n")
        _w(os.path.join(p, "subsystem_vendor"), f"0x{svid}\n")
        _w(os.path.join(p, "subsystem_device"), f"0x{sdid}\n")
        _w(os.path.join(p, "class"), f"0x{d.cls}\n")
        _w(os.path.join(p, "revision"), "0x01\n")
        _w(os.path.join(p, "enable"), "1\n")
        _w(os.path.join(p, "numa_node"), "-1\n")
        _w(os.path.join(p, "driver_override"), "(null)\n")
        _w(os.path.join(p, "remove"), "")
        modalias = (
            f"pci:v0000{vid.upper()}d0000{did.upper()}sv0000{svid.upper()}sd0000{sdid.upper()}"
            f"bc{d.cls[0:2].upper()}sc{d.cls[2:4].upper()}i{d.cls[4:6].upper()}"
        )
        _w(os.path.join(p, "modalias"), modalias + "\n")
        uevent = ""
        if d.driver:
            uevent += f"DRIVER={d.driver}\n"
        uevent += (
            f"PCI_CLASS={cls_int:X}\nPCI_ID={vid.upper()}:{did.upper()}\n"
            f"PCI_SUBSYS_ID={svid.upper()}:{sdid.upper()}\nPCI_SLOT_NAME={d.address}\n"
            f"MODALIAS={modalias}\n"
        )
        _w(os.path.join(p, "uevent"), uevent)
        _w(os.path.join(p, "config"), config_space(d))
        if d.reset_methods:
            _w(os.path.join(p, "reset_method"), " ".join(d.reset_methods) + "\n")
            _w(os.path.join(p, "reset"), "")
        if d.boot_vga is not None or d.cls[:2] == "03":
            _w(os.path.join(p, "boot_vga"), "1\n" if d.boot_vga else "0\n")
        if d.sriov_total:
            _w(os.path.join(p, "sriov_totalvfs"), f"{d.sriov_total}\n")
            _w(os.path.join(p, "sriov_numvfs"), f"{d.num_vfs}\n")
            _w(os.path.join(p, "sriov_offset"), f"{d.vf_offset}\n")
            _w(os.path.join(p, "sriov_stride"), f"{d.vf_stride}\n")
            _w(os.path.join(p, "sriov_vf_device"), f"{int(d.vf_device, 16):x}\n")  # %x, as the kernel
            _w(os.path.join(p, "sriov_drivers_autoprobe"), "1\n" if d.autoprobe else "0\n")
        if d.physfn:
            _ln(dev_path(by_addr[d.physfn]), os.path.join(p, "physfn"))
            idx = vf_index[d.address]
            _ln(p, os.path.join(dev_path(by_addr[d.physfn]), f"virtfn{idx}"))
        _ln(bus_pci, os.path.join(p, "subsystem"))
        _ln(p, os.path.join(bus_pci, "devices", d.address))
        if d.driver:
            drv_dir = os.path.join(bus_pci, "drivers", d.driver)
            _ln(drv_dir, os.path.join(p, "driver"))
            _ln(p, os.path.join(drv_dir, d.address))
        if m.iommu == "on" and d.group is not None:
            gdir = os.path.join(sys_, "kernel", "iommu_groups", str(d.group))
            _ln(gdir, os.path.join(p, "iommu_group"))
            _ln(p, os.path.join(gdir, "devices", d.address))
            groups.setdefault(d.group, []).append(d.address)
        for ifname, mac in d.net:
            npath = os.path.join(p, "net", ifname)
            _w(os.path.join(npath, "address"), mac + "\n")
            _w(os.path.join(npath, "type"), "1\n")
            _w(os.path.join(npath, "operstate"), d.link + "\n")
            _ln(p, os.path.join(npath, "device"))
            _ln(npath, os.path.join(sys_, "class", "net", ifname))
        for disk in d.disks:
            if disk.startswith("nvme"):
                ctrl = disk[: disk.index("n", 4)]  # nvme0n1 -> nvme0
                cpath = os.path.join(p, "nvme", ctrl)
                _w(os.path.join(cpath, "serial"), "S4EWNX0R123456\n")
                _ln(cpath, os.path.join(sys_, "class", "nvme", ctrl))
                if d.nvme_subsys:
                    spath = os.path.join(sys_, "devices", "virtual", "nvme-subsystem", d.nvme_subsys)
                    _ln(cpath, os.path.join(spath, ctrl))
                    _ln(spath, os.path.join(sys_, "class", "nvme-subsystem", d.nvme_subsys))
                    bpath = os.path.join(spath, disk)
                else:
                    bpath = os.path.join(cpath, disk)
                part_fmt = disk + "p{}"
            else:
                bpath = os.path.join(p, "ata1", "host0", "target0:0:0", "0:0:0:0", "block", disk)
                part_fmt = disk + "{}"
            _w(os.path.join(bpath, "size"), "1953525168\n")
            _ln(bpath, os.path.join(sys_, "class", "block", disk))
            for i in range(1, d.partitions + 1):
                ppath = os.path.join(bpath, part_fmt.format(i))
                _w(os.path.join(ppath, "partition"), f"{i}\n")
                _ln(ppath, os.path.join(sys_, "class", "block", part_fmt.format(i)))

    for gid in groups:
        gdir = os.path.join(sys_, "kernel", "iommu_groups", str(gid))
        _w(os.path.join(gdir, "type"), "identity\n")
        _w(os.path.join(gdir, "reserved_regions"), "0x00000000fee00000 0x00000000feefffff msi\n")
    os.makedirs(os.path.join(sys_, "kernel", "iommu_groups"), exist_ok=True)
    if m.iommu in ("on", "off") and m.firmware_table:
        _w(os.path.join(sys_, "firmware", "acpi", "tables", m.firmware_table), b"\0" * 48)
    if m.iommu == "on":
        unit = "dmar0" if m.firmware_table == "DMAR" else "ivhd0"
        upath = os.path.join(sys_, "devices", "virtual", "iommu", unit)
        _w(os.path.join(upath, "uevent"), "")
        _ln(upath, os.path.join(sys_, "class", "iommu", unit))
    if m.kvm:
        kpath = os.path.join(sys_, "devices", "virtual", "misc", "kvm")
        _w(os.path.join(kpath, "dev"), "10:232\n")
        _ln(kpath, os.path.join(sys_, "class", "misc", "kvm"))
    lo = os.path.join(sys_, "devices", "virtual", "net", "lo")
    _w(os.path.join(lo, "address"), "00:00:00:00:00:00\n")
    _ln(lo, os.path.join(sys_, "class", "net", "lo"))
    os.makedirs(os.path.join(sys_, "class", "block"), exist_ok=True)

    proc = os.path.join(root, "proc")
    _w(os.path.join(proc, "cpuinfo"), _cpuinfo(m))
    _w(os.path.join(proc, "interrupts"), _interrupts(m))
    _w(os.path.join(proc, "cmdline"), m.cmdline + "\n")
    _w(os.path.join(proc, "modules"), "")
    for alias, disk in m.disk_aliases.items():
        link = os.path.join(root, "dev", "disk", "by-id", alias)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(f"../../{disk}", link)
    if m.runtime is not None:
        write_runtime(m.runtime, root)
    return root


def with_changes(m: Machine, name: str, **changes) -> Machine:
    """A copy of `m` under another name, with Machine fields changed."""
    return replace(m, name=name, devices=[replace(d) for d in m.devices], **changes)
