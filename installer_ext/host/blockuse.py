"""Which PCI functions hold a mounted filesystem or an active swap area.

From a mount (or a swap area) down to the PCI function under it:
- the block device: the MAJ:MIN of mountinfo through ROOT/sys/dev/block/MAJ:MIN (a link
  to the device's directory, drivers/base/core.c device_create_sys_dev_entry()), and the
  SOURCE string through the udev links under ROOT/dev (`/dev/disk/by-label/COS_OEM ->
  ../../sda2`, `/dev/mapper/vg-root -> ../dm-0`; `LABEL=` / `UUID=` spellings through
  by-label / by-uuid) or, for `/dev/mapper/NAME`, the `dm/name` attribute. Both are
  followed when both resolve: a disagreement refuses more, never less;
- down the stack: a partition to its disk (the partition's directory sits in its
  disk's), a device-mapper or md device to its members (`slaves/`, block/holder.c
  bd_link_disk_holder(); multipath is device-mapper), a loop device to the filesystem
  that holds its backing file (`loop/backing_file`, drivers/block/loop.c: how Elemental
  mounts `/` from /run/initramfs/cos-state/cOS/active.img);
- to the PCI function: the last PCI address on the device's sysfs path, or the
  controllers of an NVMe subsystem (host/links.py, shared with the install-time facts).
A swap file is held by the filesystem it lives on.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from installer_ext.host import links
from installer_ext.host.procmounts import Mount, Swap
from installer_ext.host.sysfs import SysRoot

_NAME_RE = re.compile(r"\A[A-Za-z0-9_.:@+-]{1,64}\Z")  # a block device or dm name
_SPEC = {"LABEL=": "disk/by-label/", "UUID=": "disk/by-uuid/", "PARTUUID=": "disk/by-partuuid/",
         "PARTLABEL=": "disk/by-partlabel/"}
MAX_DEPTH = 16  # dm on md on partitions on a loop on ...: far below this
MAX_LINK_HOPS = 8


def shown(text: str) -> str:
    """A path as it may appear inside a one-line message: control characters (and
    bytes that were not UTF-8) escaped."""
    return text if text.isprintable() else text.encode("unicode_escape", "backslashreplace").decode("ascii")


@dataclass(frozen=True)
class BlockNode:
    name: str
    controllers: tuple[str, ...]  # PCI functions on its sysfs path (or its NVMe subsystem's)
    disk: str | None  # the whole disk of a partition
    slaves: tuple[str, ...]  # device-mapper / md members
    backing_file: str | None  # a loop device's file


class BlockTree:
    """Every block device under ROOT/sys/class/block, and how to walk down from one."""

    def __init__(self, sr: SysRoot) -> None:
        self.sr = sr
        self.nodes: dict[str, BlockNode] = {}
        self.dm_names: dict[str, str] = {}
        base = os.path.join(sr.sys, "class", "block")
        for b in links.read_block(sr):
            slaves = tuple(sorted(n for n in sr.listdir(os.path.join(base, b.name, "slaves")) if _NAME_RE.match(n)))
            backing = sr.read_text(os.path.join(base, b.name, "loop", "backing_file"), 8192)
            dm_name = sr.read_text(os.path.join(base, b.name, "dm", "name"), 256)
            if dm_name and _NAME_RE.match(dm_name.strip()):
                self.dm_names[dm_name.strip()] = b.name
            self.nodes[b.name] = BlockNode(
                b.name, tuple(b.controllers), b.disk, slaves, backing.rstrip("\n") if backing else None
            )

    def carriers(self) -> frozenset[str]:
        """Every PCI function that carries a block device."""
        return frozenset(c for n in self.nodes.values() for c in n.controllers)

    def by_devno(self, devno: tuple[int, int] | None) -> str | None:
        if devno is None or devno[0] == 0:
            return None
        link = self.sr.readlink(os.path.join(self.sr.sys, "dev", "block", f"{devno[0]}:{devno[1]}"))
        name = link.rstrip("/").rsplit("/", 1)[-1] if link else None
        return name if name in self.nodes else None

    def by_path(self, source: str) -> str | None:
        """The block device a mount source or swap path names, through ROOT/dev links."""
        for spec, folder in _SPEC.items():
            if source.startswith(spec):
                source = "/dev/" + folder + source[len(spec):]
        if not source.startswith("/dev/"):
            return None
        path = os.path.normpath(source)
        for _ in range(MAX_LINK_HOPS):
            if not path.startswith("/dev/"):
                return None
            link = self.sr.readlink(self.sr.root + path)
            if link is None:
                break
            path = os.path.normpath(os.path.join(os.path.dirname(path), link))
        rel = path[len("/dev/"):]
        if rel.startswith("mapper/") and rel[len("mapper/"):] in self.dm_names:
            return self.dm_names[rel[len("mapper/"):]]
        name = os.path.basename(rel)
        return name if name in self.nodes else None

    def of_mount(self, m: Mount) -> list[str]:
        names = [n for n in (self.by_devno(m.devno), self.by_path(m.source)) if n]
        return list(dict.fromkeys(names))

    def functions(self, name: str, mounts: list[Mount], chain: tuple[str, ...] = (),
                  depth: int = 0) -> dict[str, tuple[str, ...]]:
        """PCI function -> the chain of names that leads to it, for everything under
        block device `name`."""
        out: dict[str, tuple[str, ...]] = {}
        node = self.nodes.get(name)
        if node is None or depth > MAX_DEPTH or name in chain:
            return out
        chain = (*chain, name)
        for c in node.controllers:
            out.setdefault(c, chain)
        below = [node.disk] if node.disk else []
        below += node.slaves
        for n in below:
            for c, ch in self.functions(n, mounts, chain, depth + 1).items():
                out.setdefault(c, ch)
        if node.backing_file:
            holder = containing(node.backing_file, mounts)
            if holder is not None:
                for n in self.of_mount(holder):
                    for c, ch in self.functions(n, mounts, (*chain, shown(node.backing_file)), depth + 1).items():
                        out.setdefault(c, ch)
        return out


def containing(path: str, mounts: list[Mount]) -> Mount | None:
    """The mount whose mount point is the longest prefix of `path` (the last mounted
    of equal ones: it hides the others)."""
    best: Mount | None = None
    for m in mounts:
        top = m.target.rstrip("/")
        if (path == m.target or path.startswith(top + "/")) and (best is None or len(top) >= len(best.target.rstrip("/"))):
            best = m
    return best


def functions_in_use(tree: BlockTree, mounts: list[Mount], swaps: list[Swap]) -> dict[str, list[str]]:
    """PCI function -> why it must stay with the host (one sentence per mount or swap)."""
    out: dict[str, list[str]] = {}

    def add(found: dict[str, tuple[str, ...]], what: str) -> None:
        for fn, chain in found.items():
            reason = f"{what} ({' → '.join(chain)})"
            if reason not in out.setdefault(fn, []):
                out[fn].append(reason)

    for m in mounts:
        for name in tree.of_mount(m):
            add(tree.functions(name, mounts), f"holds the filesystem mounted at {shown(m.target)}")
    for s in swaps:
        if s.kind == "partition":
            name = tree.by_path(s.path)
            if name:
                add(tree.functions(name, mounts), f"holds the active swap {shown(s.path)}")
        else:
            holder = containing(s.path, mounts)
            for name in tree.of_mount(holder) if holder else []:
                add(tree.functions(name, mounts, (shown(s.path),)), f"holds the active swap file {shown(s.path)}")
    return out
