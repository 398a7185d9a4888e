"""What the device list shows, as plain entries: group headers, functions, the SR-IOV
line under each physical function, and its VFs when unfolded or matched by the filter.

Built once per host (`Listing`), then `entries()` gives the rows for the current fold
state and filter. Pure data: the widgets are made from entries in `devicelist`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from installer_ext.host.address import address_sort_key
from installer_ext.host.model import HostFacts, PciFunction
from installer_ext.report import short_address
from installer_ext.tui.words import device_words

log = logging.getLogger(__name__)

HEADER = "group"
DEVICE = "dev"
VF = "vf"
SRIOV = "sriov"


@dataclass(frozen=True)
class Entry:
    kind: str  # group | dev | vf | sriov
    key: tuple
    dev: PciFunction | None = None
    gid: int | None = None
    predicted: bool = False
    count: int = 0
    context: bool = False  # a PF shown only because some of its VFs match the filter
    hidden: int = 0  # bridges of the group not shown


def is_pf(dev: PciFunction) -> bool:
    """An SR-IOV physical function: it gets a "VFs at boot" line under its row."""
    return dev.sriov is not None and dev.sriov.total_vfs > 0


@dataclass
class _Section:
    gid: int | None
    predicted: bool
    devices: list[PciFunction]


class Listing:
    """The host's functions arranged by IOMMU group, VFs under their PF."""

    def __init__(self, facts: HostFacts) -> None:
        self.facts = facts
        present = {d.address for d in facts.devices}
        self.vfs: dict[str, list[PciFunction]] = {}
        top: list[PciFunction] = []
        for d in facts.devices:
            if d.physfn is not None and d.physfn in present:
                self.vfs.setdefault(d.physfn, []).append(d)
            else:
                top.append(d)
        for lst in self.vfs.values():
            lst.sort(key=lambda d: address_sort_key(d.address))
        by_gid: dict[int | None, list[PciFunction]] = {}
        for d in top:
            by_gid.setdefault(d.group, []).append(d)
        self.sections = [
            _Section(gid, facts.groups_predicted and gid is not None, sorted(devs, key=lambda d: address_sort_key(d.address)))
            for gid, devs in sorted(by_gid.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
        ]
        self.total = len(facts.devices)
        self.bridges = sum(1 for d in top if d.kind == "bridge")
        self._search: dict[str, str] = {}

    def search_text(self, dev: PciFunction) -> str:
        text = self._search.get(dev.address)
        if text is None:
            text = " ".join(
                x
                for x in (
                    dev.address,
                    short_address(dev.address),
                    dev.kind,
                    device_words(dev),
                    dev.vendor_name or "",
                    dev.ids or "",
                    dev.driver or "",
                    " ".join(dev.net_interfaces),
                    " ".join(dev.block_devices),
                    "" if dev.group is None else f"group {dev.group}",
                    "vf" if dev.physfn else "",
                )
                if x
            ).lower()
            self._search[dev.address] = text
        return text

    def entries(self, unfolded: set[str], needle: str = "", state_text=None, bridges: bool = False) -> list[Entry]:
        """Rows to show. `needle` filters functions (case-insensitive, against the
        address, kind, names, ids, driver, interfaces, group and `state_text(dev)`).
        Bridges (never bound) are left out unless `bridges` or the filter names them."""
        needle = needle.strip().lower()

        def match(dev: PciFunction) -> bool:
            if not needle:
                return True
            if needle in self.search_text(dev):
                return True
            return state_text is not None and needle in state_text(dev).lower()

        out: list[Entry] = []
        for sec in self.sections:
            rows: list[Entry] = []
            hidden = 0
            for d in sec.devices:
                if d.kind == "bridge" and not bridges and not (needle and match(d)):
                    hidden += 1
                    continue
                vfs = self.vfs.get(d.address, [])
                pf_match = match(d)
                matched = [v for v in vfs if match(v)] if needle else []
                if not pf_match and not matched:
                    continue
                vf_rows = vfs if d.address in unfolded else matched
                rows.append(Entry(DEVICE, (DEVICE, d.address), d, context=not pf_match))
                if is_pf(d) and pf_match:
                    rows.append(Entry(SRIOV, (SRIOV, d.address), d))
                rows.extend(Entry(VF, (VF, v.address), v) for v in vf_rows)
            if rows:
                out.append(Entry(HEADER, (HEADER, sec.gid, hidden), None, sec.gid, sec.predicted, len(sec.devices), hidden=hidden))
                out.extend(rows)
        return out
