"""One binder at a time: the oneshot unit and the udev rule's runs (one per device,
in parallel) would otherwise race between reading a device's driver and unbinding it."""

from __future__ import annotations

import contextlib
import os

from installer_ext import paths
from installer_ext.clock import Clock
from installer_ext.fsutil import exclusive_lock

LOCK_FILE = os.path.join(paths.RUN_DIR, "bind.lock")
LOCK_WAIT = 90.0  # below the units' TimeoutStartSec (120 s): fail cleanly, not be killed


def run_lock(root: str, clock: Clock, wait: float = LOCK_WAIT) -> contextlib.AbstractContextManager[None]:
    """Hold an exclusive flock on ROOT/run/installer-ext/bind.lock; wait at most `wait`
    seconds for it, then fail (exit 1)."""
    path = paths.under(root, LOCK_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return exclusive_lock(path, f"{path}: another installer-ext bind/unbind still runs after {wait:g}s", wait, clock)
