"""The only door through which the binder writes to sysfs.

Every sysfs write and read of a run goes through one `SysfsIO`, so that a test can put a
simulator of the kernel behind it (tests/fakekernel.py) and count what was written. A
write is one `write(2)` of the whole value on a descriptor opened without O_CREAT: sysfs
attributes take their value in a single write, and a missing attribute must fail with
ENOENT as it does on a real kernel instead of being created in a fake tree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from installer_ext.host.sysfs import read_attr, read_link


@dataclass
class SysfsIO:
    """Plain file I/O on a tree rooted anywhere; remembers each write (path, value)."""

    writes: list[tuple[str, str]] = field(default_factory=list)

    def write(self, path: str, value: str) -> None:
        """Write `value` to an existing attribute in one call. Raises OSError as the
        kernel's store handler answers (EBUSY, ENODEV, EINVAL, ...)."""
        data = value.encode("ascii")
        self.writes.append((path, value))
        # O_TRUNC is what `echo > attr` does; kernfs accepts it and a fake tree needs it.
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
        try:
            n = os.write(fd, data)
        finally:
            os.close(fd)
        if n != len(data):
            raise OSError(0, f"short write ({n} of {len(data)} bytes)", path)

    def read(self, path: str, limit: int = 4096) -> str | None:
        """At most `limit` bytes of an attribute as text, or None if it cannot be read."""
        return read_attr(path, limit)

    def read_bytes(self, path: str, limit: int) -> bytes | None:
        try:
            with open(path, "rb", buffering=0) as f:
                return f.read(limit)
        except OSError:
            return None

    def readlink(self, path: str) -> str | None:
        return read_link(path)

    def listdir(self, path: str) -> list[str] | None:
        """Entries of a directory, None when it is missing or unreadable."""
        try:
            return os.listdir(path)
        except OSError:
            return None

    def isdir(self, path: str) -> bool:
        return os.path.isdir(path)


