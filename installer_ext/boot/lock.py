"""One binder at a time: the oneshot unit and the udev rule's runs (one per device,
in parallel) would otherwise race between reading a device's driver and unbinding it."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from installer_ext import paths
from installer_ext.boot.sysio import Clock
from installer_ext.errors import ExtError

LOCK_FILE = os.path.join(paths.RUN_DIR, "bind.lock")
LOCK_WAIT = 90.0  # below the units' TimeoutStartSec (120 s): fail cleanly, not be killed


@contextmanager
def run_lock(root: str, clock: Clock, wait: float = LOCK_WAIT) -> Iterator[None]:
    """Hold an exclusive flock on ROOT/run/installer-ext/bind.lock; wait at most `wait`
    seconds for it, then fail (exit 1)."""
    path = paths.under(root, LOCK_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = clock.now() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                remaining = deadline - clock.now()
                if remaining <= 0:
                    raise ExtError(f"{path}: another installer-ext bind/unbind still runs after {wait:g}s") from None
                clock.sleep(min(0.1, remaining))
        yield
    finally:
        os.close(fd)
