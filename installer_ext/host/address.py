"""Strict patterns for the identifiers that may reach a sysfs path or a kernel argument.

Everything from a config file, a plan file or a sysfs directory name is matched against
these before it is joined to a path: `0000:01:00.0/../../x` or a trailing newline never
passes.
"""

from __future__ import annotations

import re

# Domain: 4 hex digits, or more on hosts with VMD/Hyper-V style domains (10000:).
PCI_ADDRESS_RE = re.compile(r"\A[0-9a-f]{4,8}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]\Z")
# The short form lspci prints (01:00.0): domain 0000 is implied.
PCI_SHORT_RE = re.compile(r"\A[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]\Z")
PCI_ID_RE = re.compile(r"\A[0-9a-f]{4}\Z")
VENDOR_DEVICE_RE = re.compile(r"\A([0-9a-f]{4}):([0-9a-f]{4})\Z")
# A kernel driver or module name (read from a `driver` link, or recorded in a plan).
DRIVER_NAME_RE = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}\Z")
# A kernel argument token: name or name=value, no spaces, quotes or shell characters
# (the schema's pattern for extraKernelArgs).
KERNEL_ARG_RE = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]*(=[A-Za-z0-9_.,:/+@-]*)?\Z")


def is_driver_name(value: object) -> bool:
    return isinstance(value, str) and DRIVER_NAME_RE.match(value) is not None


def is_pci_address(value: object) -> bool:
    return isinstance(value, str) and PCI_ADDRESS_RE.match(value) is not None


def normalize_address(value: object) -> str | None:
    """`01:00.0` or `0000:01:00.0` (any case) -> `0000:01:00.0`; None if not an address."""
    if not isinstance(value, str):
        return None
    v = value.lower()
    if PCI_SHORT_RE.match(v):
        v = "0000:" + v
    return v if PCI_ADDRESS_RE.match(v) else None


def split_address(address: str) -> tuple[int, int, int, int]:
    """(domain, bus, device, function) of a validated address."""
    dom, bus, devfn = address.split(":")
    dev, fn = devfn.split(".")
    return int(dom, 16), int(bus, 16), int(dev, 16), int(fn, 16)


def join_address(domain: int, bus: int, device: int, function: int) -> str:
    width = max(4, len(f"{domain:x}"))
    return f"{domain:0{width}x}:{bus:02x}:{device:02x}.{function:x}"


def address_sort_key(address: str) -> tuple[int, str]:
    """Numeric order of validated addresses: bus, device and function have fixed widths
    and domains of more digits are larger, so (length, text) sorts like the numbers."""
    return (len(address), address)


def vf_address(pf_address: str, offset: int, stride: int, index: int) -> str | None:
    """Address of VF `index` (0-based) of a PF, from its SR-IOV offset and stride.

    Routing id = bus << 8 | devfn; VF n = PF + offset + n * stride (PCIe SR-IOV 3.3.9).
    None when it would fall off bus 255.
    """
    dom, bus, dev, fn = split_address(pf_address)
    rid = (bus << 8 | dev << 3 | fn) + offset + index * stride
    if rid > 0xFFFF:
        return None
    return join_address(dom, rid >> 8, (rid >> 3) & 0x1F, rid & 0x7)
