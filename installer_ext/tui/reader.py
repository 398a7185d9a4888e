"""Reading the host in a thread that starts before the screen's modules are imported,
so `gather` (thousands of sysfs directories on a big host) and importing urwid overlap.

No urwid here. The main loop learns that the reading is over through a pipe:
`Reading.notify(fd)` writes one byte to it then (at once if it is already over).
"""

from __future__ import annotations

import logging
import os
import threading

from installer_ext.host.facts import gather
from installer_ext.host.model import HostFacts

log = logging.getLogger(__name__)


def read_host(root: str) -> HostFacts:
    return gather(root)


class Reading:
    """`read(root)` in a daemon thread, started at once; `result` or `error` once over."""

    def __init__(self, root: str, read=read_host) -> None:
        self.root = root
        self.result: HostFacts | None = None
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._over = False
        self._fd: int | None = None
        self._read = read
        self._thread = threading.Thread(target=self._run, name="read-host", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.result = self._read(self.root)
        except BaseException as exc:  # noqa: BLE001 - reported by the screen
            self.error = exc
        with self._lock:
            self._over = True
            fd = self._fd
        if fd is not None:
            self._wake(fd)

    @staticmethod
    def _wake(fd: int) -> None:
        try:
            os.write(fd, b"x")
        except OSError:
            pass  # the loop is gone (the user left while reading)

    def notify(self, fd: int) -> None:
        with self._lock:
            self._fd = fd
            over = self._over
        if over:
            self._wake(fd)
