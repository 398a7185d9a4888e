"""The mount table and the active swap areas, read from procfs under a root.

Formats (Linux fs/proc_namespace.c and mm/swapfile.c, unchanged since v3.x):
- ROOT/proc/self/mountinfo, show_mountinfo(): "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS
  [OPTIONAL FIELDS...] - FSTYPE SOURCE SUPEROPTIONS". MAJ:MIN is the device the
  filesystem lives on (0:N for proc, tmpfs, overlay and btrfs' anonymous devices).
- ROOT/proc/mounts, show_vfsmnt(): "SOURCE MOUNTPOINT FSTYPE OPTIONS 0 0", read only
  when mountinfo cannot be.
- ROOT/proc/swaps, swap_show(): a header line, then "PATH<spaces>TYPE\\tSIZE\\tUSED\\tPRIO"
  with TYPE "partition" or "file".
SOURCE is the string that was given to mount(2) (`/dev/sda5`, `/dev/disk/by-label/COS_OEM`,
`overlay`), not a resolved device. Paths and sources escape space, tab, newline and
backslash as three octal digits (mangle() / seq_file_path(.., " \\t\\n\\\\")).

A table that cannot be read is None, never an empty list: the caller must not take
"unreadable" for "nothing mounted".
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from installer_ext.host.sysfs import SysRoot

# A running node has a few dozen mounts at boot and some thousands once every pod has
# its own; 8 MiB is far above both and bounds the read.
MAX_TABLE_BYTES = 8 << 20
_OCTAL = re.compile(r"\\([0-7]{3})")
_DEVNO = re.compile(r"\A([0-9]{1,4}):([0-9]{1,7})\Z")


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    fstype: str
    devno: tuple[int, int] | None = None  # from mountinfo; None from /proc/mounts


@dataclass(frozen=True)
class Swap:
    path: str
    kind: str  # partition | file


def unescape(field: str) -> str:
    """Undo the kernel's octal escapes (`\\040` is a space). The tables are read as
    latin-1 (one character per byte), so the result is re-read as UTF-8, with bytes that
    are not UTF-8 kept as surrogates (os.fsdecode's convention)."""
    raw = _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)
    return raw.encode("latin-1").decode("utf-8", "surrogateescape")


def parse_mountinfo(text: str) -> list[Mount]:
    out = []
    for line in text.splitlines():
        fields = line.split(" ")
        try:
            sep = fields.index("-", 6)
        except ValueError:
            continue  # not a mountinfo line
        if len(fields) < sep + 3:
            continue
        m = _DEVNO.match(fields[2])
        devno = (int(m.group(1)), int(m.group(2))) if m else None
        out.append(Mount(unescape(fields[sep + 2]), unescape(fields[4]), fields[sep + 1], devno))
    return out


def parse_mounts(text: str) -> list[Mount]:
    out = []
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) >= 4:
            out.append(Mount(unescape(fields[0]), unescape(fields[1]), fields[2]))
    return out


def parse_swaps(text: str) -> list[Swap]:
    out = []
    for line in text.splitlines()[1:]:  # the header
        # The path is padded with spaces, the rest is tab-separated: split on the first
        # whitespace after the (escaped, so space-free) path.
        parts = line.split(None, 2)
        if len(parts) >= 2 and parts[1] in ("partition", "file"):
            out.append(Swap(unescape(parts[0]), parts[1]))
    return out


def _read(path: str) -> str | None:
    data = SysRoot.read_bytes(path, MAX_TABLE_BYTES + 1)
    if data is None or len(data) > MAX_TABLE_BYTES:
        return None
    return data.decode("latin-1")


def read_mounts(sr: SysRoot) -> tuple[list[Mount] | None, str]:
    """(mounts, the file they came from); mounts None when neither table can be read."""
    path = os.path.join(sr.proc, "self", "mountinfo")
    text = _read(path)
    if text is not None:
        return parse_mountinfo(text), path
    path = os.path.join(sr.proc, "mounts")
    text = _read(path)
    return (parse_mounts(text) if text is not None else None), path


def read_swaps(sr: SysRoot) -> list[Swap] | None:
    """The active swap areas; [] when the kernel has no swap support (no /proc/swaps
    at all, CONFIG_SWAP off); None when the file is there but cannot be read."""
    path = os.path.join(sr.proc, "swaps")
    if not os.path.lexists(path):
        return []
    text = _read(path)
    return parse_swaps(text) if text is not None else None
