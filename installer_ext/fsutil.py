"""Files, one home for how they are handled: atomic writes (a reader, or a power cut,
sees the old file or the new one: temp file in the same directory -> write -> fsync ->
rename over the target -> fsync the directory), bounded input reads, and the one-run-at-a-
time lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal, overload

from installer_ext.errors import BadInput, ExtError

if TYPE_CHECKING:
    from installer_ext.clock import Clock


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


@overload
def read_input(path: str, limit: int, what: str, *, missing_ok: Literal[False] = ...,
               error: type[BadInput] = ...) -> bytes: ...
@overload
def read_input(path: str, limit: int, what: str, *, missing_ok: bool, error: type[BadInput] = ...) -> bytes | None: ...


def read_input(path: str, limit: int, what: str, *, missing_ok: bool = False,
               error: type[BadInput] = BadInput) -> bytes | None:
    """The bytes of an input file (a config, a plan, a grubenv), or `error` with one line
    naming the file: missing (None instead with `missing_ok`), a directory, a path through
    something that is not a directory, unreadable, or larger than `limit` bytes."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not {what}") from None
    except NotADirectoryError:
        raise error(f"{path}: a part of the path is not a directory") from None
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise error(f"{path}: larger than {limit // 1024} KiB, not {what}")
    return data


FAILPOINT_ENV = "INSTALLER_EXT_FAILPOINT"


def failpoint(name: str) -> None:
    """Fault injection for the crash tests: when $INSTALLER_EXT_FAILPOINT names this
    point, the process kills itself with SIGKILL here (no cleanup, like a power cut
    or kill -9 at exactly this moment); `list` names each point on stderr as it passes."""
    wanted = os.environ.get(FAILPOINT_ENV)
    if wanted == "list":
        import sys

        sys.stderr.write(f"failpoint: {name}\n")
    elif wanted == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def exclusive_lock(path: str, busy: str, wait: float = 0.0, clock: Clock | None = None) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created 0600 if missing) for the block. When
    another process holds it: wait up to `wait` seconds (polling on `clock`), then raise
    ExtError(`busy`). A lock file that cannot be opened is ExtError naming it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ExtError(f"{path}: cannot open the lock: {exc.strerror or exc}") from None
    try:
        deadline = clock.now() + wait if clock is not None else 0.0
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                remaining = deadline - clock.now() if clock is not None else 0.0
                if remaining <= 0:
                    raise ExtError(busy) from None
                clock.sleep(min(0.1, remaining))
        yield
    finally:
        os.close(fd)
