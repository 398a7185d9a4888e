"""Tolerant readers for a sysfs/procfs tree under a root directory.

Every reader of host facts goes through `SysRoot`, so a test points it at a fake tree in
a temp dir and the real machine is just root `/`. Reads never raise for the usual
failures of a live or broken tree (missing file, dangling link, permission denied, EIO):
they return None and the caller records the attribute as unknown.
"""

from __future__ import annotations

import os

_READ_CHUNK = 65536


def read_attr(path: str, limit: int = 4096) -> str | None:
    """One sysfs attribute as text (at most `limit` bytes); None when it cannot be read.
    The hot path of a scan and of the binder: a bare open/read/close."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return os.read(fd, limit).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def read_link(path: str) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


class SysRoot:
    """A machine's root directory; all paths given to it are relative to ROOT."""

    __slots__ = ("root", "sys", "proc")

    def __init__(self, root: str | os.PathLike = "/") -> None:
        self.root = os.path.abspath(os.fspath(root))
        self.sys = os.path.join(self.root, "sys")
        self.proc = os.path.join(self.root, "proc")

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    @staticmethod
    def read_bytes(path: str, limit: int = _READ_CHUNK) -> bytes | None:
        """Read at most `limit` bytes of a file, or None when it cannot be read."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            return os.read(fd, limit)
        except OSError:
            return None
        finally:
            os.close(fd)

    @classmethod
    def read_text(cls, path: str, limit: int = _READ_CHUNK) -> str | None:
        data = cls.read_bytes(path, limit)
        if data is None:
            return None
        return data.decode("utf-8", "replace")

    @staticmethod
    def readlink(path: str) -> str | None:
        try:
            return os.readlink(path)
        except OSError:
            return None

    @staticmethod
    def listdir(path: str) -> list[str]:
        try:
            return os.listdir(path)
        except OSError:
            return []


def parse_int(text: str | None, base: int = 10) -> int | None:
    """Parse a sysfs number ("2\\n", "0x0300"); None when absent or garbage."""
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    try:
        return int(text, base if not text.lower().startswith("0x") else 16)
    except ValueError:
        return None
