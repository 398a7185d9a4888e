"""What a running node adds to a fake tree: the mount table, active swap, routes, virtual
network interfaces (bond, bridge, VLAN), virtual block devices (device-mapper, md, loop),
the udev links under /dev and files under /etc. Written only for a `Machine` whose
`runtime` is set, so the trees of the install-time machines stay as they are.

Every file copies the format the kernel writes (Linux, v6.1 and later unchanged):
- proc/self/mountinfo: fs/proc_namespace.c show_mountinfo(): "ID PARENT MAJ:MIN ROOT
  MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS"; proc/mounts:
  show_vfsmnt(): "SOURCE MOUNTPOINT FSTYPE OPTIONS 0 0". Both escape space, tab, newline
  and backslash as octal (mangle() -> seq_escape(.., " \\t\\n\\\\")). SOURCE is the string
  given to mount(2) (mnt_devname): `/dev/sda5` or `/dev/disk/by-label/COS_OEM` alike.
- proc/swaps: mm/swapfile.c swap_show(): a header, then the path (seq_file_path, same
  escapes) padded to 40, "partition" or "file\\t", size, used, priority.
- proc/net/route: net/ipv4/fib_trie.c fib_route_seq_show(): "%-127s" header, rows of
  "%s\\t%08X\\t%08X\\t%04X\\t%d\\t%u\\t%d\\t%08X\\t%d\\t%u\\t%u" padded to 127; the __be32
  addresses are printed as host-order numbers (x86: bytes reversed, 192.168.1.1 ->
  0101A8C0). Flags: RTF_UP 0x1, RTF_GATEWAY 0x2, RTF_REJECT 0x200.
- proc/net/ipv6_route: net/ipv6/ip6_fib.c ipv6_route_native_seq_show(): "%pi6 %02x %pi6
  %02x %pi6 %08x %08x %08x %08x %8s"; the unreachable default on `lo` has flags 00200200.
- sys/class/net/X/lower_Y, upper_Y: net/core/dev.c netdev_adjacent_sysfs_add(); master:
  netdev_master_upper_dev_link(); bonding/slaves: drivers/net/bonding/bond_sysfs.c;
  brif/PORT: net/bridge/br_sysfs_if.c br_sysfs_addif().
- sys/class/block/X/slaves/Y and Y/holders/X: block/holder.c bd_link_disk_holder()
  (device-mapper and md); dm/name: drivers/md/dm-sysfs.c; loop/backing_file:
  drivers/block/loop.c; X/dev "MAJ:MIN" and sys/dev/block/MAJ:MIN: drivers/base/core.c
  (dev_attr, device_create_sys_dev_entry()).
- dev/disk/by-label/NAME -> ../../sda2 and dev/mapper/NAME -> ../dm-0: relative links as
  udev's rules (60-persistent-storage.rules, dm's 10-dm.rules) make them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Mount:
    source: str  # as given to mount(2)
    target: str
    fstype: str = "ext4"
    block: str | None = None  # kernel name of the block device, None for proc/tmpfs/...
    options: str = "rw,relatime"


@dataclass(frozen=True)
class Swap:
    path: str  # /dev/dm-1, /dev/sda3 or a swap file
    kind: str = "partition"  # partition | file
    size_kib: int = 8388604


@dataclass(frozen=True)
class Route:
    iface: str
    dest: str = "0.0.0.0"
    gateway: str = "0.0.0.0"
    mask: str = "0.0.0.0"
    flags: int = 0x0003  # RTF_UP | RTF_GATEWAY
    metric: int = 0


@dataclass(frozen=True)
class Route6:
    iface: str
    dest: str = "0" * 32
    plen: int = 0
    gateway: str = "0" * 32
    flags: int = 0x00000003
    metric: int = 1024


@dataclass(frozen=True)
class NetDev:
    name: str
    kind: str  # bond | bridge | vlan
    lowers: tuple[str, ...]


@dataclass(frozen=True)
class VirtBlock:
    name: str  # dm-0, md127, loop0
    slaves: tuple[str, ...] = ()
    backing_file: str | None = None  # loop
    dm_name: str | None = None  # dev/mapper/NAME


@dataclass
class Runtime:
    # None: the file is not there (a tree that cannot be read), () an empty table.
    mounts: tuple[Mount, ...] | None = ()
    mountinfo: bool = True  # False: only proc/mounts (an old or restricted /proc)
    swaps: tuple[Swap, ...] | None = ()
    routes: tuple[Route, ...] | None = ()
    routes6: tuple[Route6, ...] | None = ()
    netdevs: tuple[NetDev, ...] = ()
    virt_blocks: tuple[VirtBlock, ...] = ()
    dev_links: dict[str, str] = field(default_factory=dict)  # "disk/by-label/COS_OEM" -> "sda2"
    etc: dict[str, str] = field(default_factory=dict)  # "sysconfig/network/ifcfg-x" -> text


def _w(path: str, data: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(data)


def _ln(target: str, link: str) -> None:
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(os.path.relpath(target, os.path.dirname(link)), link)


def mangle(text: str) -> str:
    """fs/proc_namespace.c mangle(): octal escapes for space, tab, newline, backslash."""
    return "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in text)


def _devnos(sys_: str) -> dict[str, tuple[int, int]]:
    """Major:minor per block device as Linux numbers them (sd 8, nvme 259, dm 253, md 9,
    loop 7)."""
    out: dict[str, tuple[int, int]] = {}
    nvme = 0
    for name in sorted(os.listdir(os.path.join(sys_, "class", "block"))):
        m = re.fullmatch(r"sd([a-z])(\d*)", name)
        if m:
            out[name] = (8, 16 * (ord(m.group(1)) - ord("a")) + int(m.group(2) or 0))
        elif name.startswith("nvme"):
            out[name] = (259, nvme)
            nvme += 1
        elif m := re.fullmatch(r"(dm-|md|loop)(\d+)", name):
            out[name] = ({"dm-": 253, "md": 9, "loop": 7}[m.group(1)], int(m.group(2)))
    return out


def _ip4(dotted: str) -> str:
    a, b, c, d = (int(x) for x in dotted.split("."))
    return f"{(d << 24) | (c << 16) | (b << 8) | a:08X}"  # __be32 printed by a little-endian CPU


def _virt_blocks(rt: Runtime, sys_: str) -> None:
    for vb in rt.virt_blocks:
        d = os.path.join(sys_, "devices", "virtual", "block", vb.name)
        _w(os.path.join(d, "size"), "16777216\n")
        _w(os.path.join(d, "uevent"), f"DEVNAME={vb.name}\nDEVTYPE=disk\n")
        os.makedirs(os.path.join(d, "slaves"), exist_ok=True)
        os.makedirs(os.path.join(d, "holders"), exist_ok=True)
        for s in vb.slaves:
            sdir = os.path.realpath(os.path.join(sys_, "class", "block", s))
            _ln(sdir, os.path.join(d, "slaves", s))
            _ln(d, os.path.join(sdir, "holders", vb.name))
        if vb.backing_file is not None:
            _w(os.path.join(d, "loop", "backing_file"), vb.backing_file + "\n")
        if vb.dm_name is not None:
            _w(os.path.join(d, "dm", "name"), vb.dm_name + "\n")
        _ln(d, os.path.join(sys_, "class", "block", vb.name))


def _netdevs(rt: Runtime, sys_: str) -> None:
    virtual = {nd.name for nd in rt.netdevs}

    def devdir(name: str) -> str:
        if name in virtual:
            return os.path.join(sys_, "devices", "virtual", "net", name)
        return os.path.realpath(os.path.join(sys_, "class", "net", name))

    for i, nd in enumerate(rt.netdevs):
        d = devdir(nd.name)
        _w(os.path.join(d, "address"), f"02:00:00:00:00:{i:02x}\n")
        _w(os.path.join(d, "operstate"), "up\n")
        _w(os.path.join(d, "type"), "1\n")
        _w(os.path.join(d, "uevent"), f"DEVTYPE={nd.kind}\nINTERFACE={nd.name}\nIFINDEX={100 + i}\n")
        _ln(d, os.path.join(sys_, "class", "net", nd.name))
        for low in nd.lowers:
            ldir = devdir(low)
            _ln(ldir, os.path.join(d, f"lower_{low}"))
            _ln(d, os.path.join(ldir, f"upper_{nd.name}"))
            if nd.kind in ("bond", "bridge"):
                _ln(d, os.path.join(ldir, "master"))
            if nd.kind == "bridge":
                os.makedirs(os.path.join(ldir, "brport"), exist_ok=True)
                _ln(os.path.join(ldir, "brport"), os.path.join(d, "brif", low))
        if nd.kind == "bond":
            _w(os.path.join(d, "bonding", "slaves"), " ".join(nd.lowers) + "\n")


def _mount_tables(rt: Runtime, proc: str, devnos: dict[str, tuple[int, int]]) -> None:
    info, plain = [], []
    for i, mt in enumerate(rt.mounts or ()):
        major, minor = devnos[mt.block] if mt.block else (0, 20 + i)
        parent = 1 if i == 0 else 20
        info.append(
            f"{20 + i} {parent} {major}:{minor} / {mangle(mt.target)} {mt.options} shared:{i + 1} - "
            f"{mt.fstype} {mangle(mt.source)} rw\n"
        )
        plain.append(f"{mangle(mt.source)} {mangle(mt.target)} {mt.fstype} {mt.options} 0 0\n")
    if rt.mounts is not None:
        _w(os.path.join(proc, "mounts"), "".join(plain))
        if rt.mountinfo:
            _w(os.path.join(proc, "self", "mountinfo"), "".join(info))


def _swaps(rt: Runtime, proc: str) -> None:
    if rt.swaps is None:
        return
    rows = ["Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"]
    for i, s in enumerate(rt.swaps):
        path = mangle(s.path)
        pad = " " * (40 - len(path) if len(path) < 40 else 1)
        kind = "partition" if s.kind == "partition" else "file\t"
        used = 0
        rows.append(
            f"{path}{pad}{kind}\t{s.size_kib}\t{chr(9) if s.size_kib < 10000000 else ''}{used}\t"
            f"{chr(9) if used < 10000000 else ''}{-2 - i}\n"
        )
    _w(os.path.join(proc, "swaps"), "".join(rows))


def _routes(rt: Runtime, proc: str) -> None:
    if rt.routes is not None:
        head = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"
        rows = [f"{head:<127}\n"]
        for r in rt.routes:
            row = (f"{r.iface}\t{_ip4(r.dest)}\t{_ip4(r.gateway)}\t{r.flags:04X}\t0\t0\t{r.metric}\t"
                   f"{_ip4(r.mask)}\t0\t0\t0")
            rows.append(f"{row:<127}\n")
        _w(os.path.join(proc, "net", "route"), "".join(rows))
    if rt.routes6 is not None:
        rows = []
        for r in rt.routes6:
            rows.append(f"{r.dest} {r.plen:02x} {'0' * 32} 00 {r.gateway} {r.metric:08x} 00000001 00000000 "
                        f"{r.flags:08x} {r.iface:>8}\n")
        _w(os.path.join(proc, "net", "ipv6_route"), "".join(rows))


def write(rt: Runtime, root: str) -> None:
    """Add the running node's state to the tree under `root` (after the PCI tree)."""
    sys_ = os.path.join(root, "sys")
    proc = os.path.join(root, "proc")
    _virt_blocks(rt, sys_)
    devnos = _devnos(sys_)
    for name, (major, minor) in devnos.items():
        d = os.path.realpath(os.path.join(sys_, "class", "block", name))
        _w(os.path.join(d, "dev"), f"{major}:{minor}\n")
        _ln(d, os.path.join(sys_, "dev", "block", f"{major}:{minor}"))
    _netdevs(rt, sys_)
    _mount_tables(rt, proc, devnos)
    _swaps(rt, proc)
    _routes(rt, proc)
    for rel, name in rt.dev_links.items():
        _ln(os.path.join(root, "dev", name), os.path.join(root, "dev", rel))
    for rel, text in rt.etc.items():
        _w(os.path.join(root, "etc", rel), text)
