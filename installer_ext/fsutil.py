"""Atomic file writes: a reader (or a power cut) sees the old file or the new one.

temp file in the same directory -> write -> fsync -> rename over the target -> fsync
the directory. Never a half-written file under the real name.
"""

from __future__ import annotations

import os
import tempfile

from installer_ext.errors import BadInput


def atomic_write(path: str, data: bytes | str, mode: int = 0o644) -> bool:
    """Write `data` to `path` atomically. Returns False when the file already held
    exactly these bytes and mode (nothing written: idempotent reruns leave mtimes)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        st = os.stat(path)
        if (st.st_mode & 0o7777) == mode and st.st_size == len(data):
            with open(path, "rb") as f:
                if f.read() == data:
                    return False
    except OSError:
        pass
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(directory)
    return True


def fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_input(path: str, limit: int, what: str) -> bytes:
    """The bytes of an input file (a config, a plan), or BadInput with one line naming
    the file: missing, a directory, unreadable, or larger than `limit` bytes."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a directory, not {what}") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise BadInput(f"{path}: larger than {limit // 1024} KiB, not {what}")
    return data
