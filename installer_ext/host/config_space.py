"""Parse the bits of a PCI function's configuration space that grouping depends on.

sysfs `config` gives 64 bytes to an unprivileged reader, 256 for conventional PCI and
4096 for PCIe functions when read as root. Anything we cannot see is reported as None,
and the grouping code treats None conservatively (no isolation).
"""

from __future__ import annotations

from dataclasses import dataclass

PCI_STATUS = 0x06
PCI_STATUS_CAP_LIST = 0x10
PCI_HEADER_TYPE = 0x0E
PCI_CAPABILITY_LIST = 0x34
PCI_CAP_ID_EXP = 0x10
PCI_EXT_CAP_START = 0x100
PCI_EXT_CAP_ID_ACS = 0x000D

# PCIe capability device/port types (PCI_EXP_FLAGS_TYPE >> 4).
PCIE_ENDPOINT = 0x0
PCIE_LEGACY_ENDPOINT = 0x1
PCIE_ROOT_PORT = 0x4
PCIE_UPSTREAM = 0x5
PCIE_DOWNSTREAM = 0x6
PCIE_PCI_BRIDGE = 0x7  # PCIe-to-PCI/PCI-X bridge
PCIE_PCIE_BRIDGE = 0x8  # PCI/PCI-X-to-PCIe bridge
PCIE_RC_END = 0x9  # root complex integrated endpoint
PCIE_RC_EC = 0xA  # root complex event collector

_MAX_CAPS = 48  # a capability list longer than this is a loop in a broken config


@dataclass(frozen=True)
class ConfigInfo:
    header_type: int | None  # 0 normal, 1 PCI-to-PCI bridge, 2 CardBus
    multifunction: bool | None
    pcie_type: int | None  # None: not PCIe, or unknown when `complete` is False
    acs: bool | None  # None when the extended space was not readable
    complete: bool  # the standard capability list could be walked


UNREADABLE = ConfigInfo(None, None, None, None, False)


def _u16(b: bytes, off: int) -> int:
    return b[off] | (b[off + 1] << 8)


def _u32(b: bytes, off: int) -> int:
    return b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24)


def parse_config(data: bytes | None) -> ConfigInfo:
    if not data or len(data) < 64 or data[:2] == b"\xff\xff":
        return UNREADABLE
    hdr = data[PCI_HEADER_TYPE]
    header_type = hdr & 0x7F
    multifunction = bool(hdr & 0x80)
    if len(data) < 256:
        # Only the header: the capability list lies beyond what we can see.
        return ConfigInfo(header_type, multifunction, None, None, False)

    pcie_type = None
    if _u16(data, PCI_STATUS) & PCI_STATUS_CAP_LIST:
        pos = data[PCI_CAPABILITY_LIST] & 0xFC
        seen = 0
        while pos and seen < _MAX_CAPS and pos + 3 < 256:
            if data[pos] == PCI_CAP_ID_EXP:
                pcie_type = (data[pos + 2] >> 4) & 0xF
                break
            pos = data[pos + 1] & 0xFC
            seen += 1

    acs: bool | None
    if pcie_type is None:
        acs = False  # conventional PCI never has ACS
    elif len(data) < 4096:
        acs = None
    else:
        acs = False
        pos = PCI_EXT_CAP_START
        seen = 0
        while pos and seen < _MAX_CAPS and pos + 4 <= len(data):
            header = _u32(data, pos)
            if header in (0, 0xFFFFFFFF):
                break
            if header & 0xFFFF == PCI_EXT_CAP_ID_ACS:
                acs = True
                break
            pos = (header >> 20) & 0xFFC
            seen += 1
    return ConfigInfo(header_type, multifunction, pcie_type, acs, True)
