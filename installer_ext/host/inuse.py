"""What the running host itself needs, read at the moment of use: the PCI functions that
hold a mounted filesystem or an active swap area (host/blockuse.py) and the ones that
carry the default route or a port of Harvester's management bridge (host/netuse.py).

This is not the install-time view (which disk the config names): it is what this boot
has mounted and routed, so it holds whatever a plan says. When a table cannot be read,
every function of that kind (with a block device, with a network interface) is in use:
not knowing is no reason to take a disk or a NIC away.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from installer_ext.host import blockuse, netuse
from installer_ext.host.procmounts import read_mounts, read_swaps
from installer_ext.host.sysfs import SysRoot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HostUse:
    functions: dict[str, tuple[str, ...]] = field(default_factory=dict)  # address -> reasons
    # What could not be read, by the kind of function it leaves unknown ("block", "net").
    unknown: dict[str, str] = field(default_factory=dict)
    carriers: dict[str, frozenset[str]] = field(default_factory=dict)  # kind -> functions of that kind

    def reasons(self, address: str) -> list[str]:
        """Why `address` must stay with the host this boot; [] when nothing says so."""
        out = list(self.functions.get(address, ()))
        for kind, what in sorted(self.unknown.items()):
            if address in self.carriers.get(kind, frozenset()):
                noun = "block devices" if kind == "block" else "network interfaces"
                out.append(f"has {noun}, and {what} could not be read")
        return out


def read_host_use(root: str | os.PathLike = "/") -> HostUse:
    sr = SysRoot(root)
    found: dict[str, list[str]] = {}
    unknown: dict[str, str] = {}

    def merge(part: dict[str, list[str]]) -> None:
        for fn, reasons in part.items():
            found.setdefault(fn, []).extend(r for r in reasons if r not in found[fn])

    tree = blockuse.BlockTree(sr)
    mounts, mounts_path = read_mounts(sr)
    swaps = read_swaps(sr)
    if mounts is None:
        unknown["block"] = mounts_path
    elif swaps is None:
        unknown["block"] = os.path.join(sr.proc, "swaps")
    merge(blockuse.functions_in_use(tree, mounts or [], swaps or []))

    defaults, routes_path = netuse.read_default_routes(sr)
    if defaults is None:
        unknown["net"] = routes_path
        defaults = []
    net, problems = netuse.functions_in_use(sr, defaults)
    merge(net)
    if problems:
        unknown.setdefault("net", problems[0])

    use = HostUse(
        {fn: tuple(r) for fn, r in found.items()},
        unknown,
        {"block": tree.carriers(), "net": netuse.carriers(sr)},
    )
    log.debug("host use: %d functions in use, unknown: %s", len(use.functions), ", ".join(unknown) or "none")
    return use
