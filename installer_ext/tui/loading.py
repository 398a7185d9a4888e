"""Reading the host in a worker thread while the screen shows progress.

`gather` reads every function under ROOT/sys; on a host with thousands of SR-IOV VFs
that takes a noticeable moment, so the main loop keeps drawing a spinner with the
elapsed time and wakes up through a pipe (`MainLoop.watch_pipe`) when it is done.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import urwid

from installer_ext.host.facts import gather
from installer_ext.host.model import HostFacts
from installer_ext.host.pciids import PciIds
from installer_ext.tui.form import fitting, title_widget

log = logging.getLogger(__name__)

SPIN = "|/-\\"


class CachedIds(PciIds):
    """pci.ids lookups remembered per id: thousands of VFs share one vendor:device,
    and each lookup otherwise searches the database again."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self._names: dict[tuple[str, str | None], str | None] = {}

    def vendor(self, vendor: str) -> str | None:
        key = (vendor, None)
        if key not in self._names:
            self._names[key] = super().vendor(vendor)
        return self._names[key]

    def device(self, vendor: str, device: str) -> str | None:
        key = (vendor, device)
        if key not in self._names:
            self._names[key] = super().device(vendor, device)
        return self._names[key]


def read_host(root: str) -> HostFacts:
    return gather(root, ids=CachedIds.load())


class Loading(urwid.WidgetWrap):
    """Title, "Reading the PCI devices of this machine..." with a spinner and the time."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.started = time.monotonic()
        self._n = 0
        self.text = urwid.Text("", align="center")
        self.footer = urwid.Text("")
        body = urwid.Filler(urwid.Padding(self.text, align="center", width=("relative", 90)), valign="middle")
        frame = urwid.Frame(body, header=title_widget(), footer=urwid.AttrMap(self.footer, "footer"))
        self.tick()
        super().__init__(urwid.AttrMap(frame, "text"))

    def tick(self) -> None:
        self._n += 1
        where = "this machine" if self.root == "/" else self.root
        elapsed = time.monotonic() - self.started
        self.text.set_text(
            f"Reading the PCI devices, IOMMU groups and network and disk links of {where}\n\n"
            f"{SPIN[self._n % len(SPIN)]}  {elapsed:.1f} s"
        )

    def render(self, size, focus=False):
        text = fitting(("Please wait: large hosts take a few seconds.  Esc leaves", "Esc leaves"), size[0])
        if self.footer.text != text:
            self.footer.set_text(text)
        return super().render(size, focus)


class Worker:
    """Runs `func` in a thread; `done(worker)` runs in the main loop afterwards, with
    `result` or `error` set."""

    def __init__(self, loop: urwid.MainLoop, func: Callable[[], object], done: Callable[[Worker], None]) -> None:
        self.result: object = None
        self.error: BaseException | None = None
        self._func = func
        self._done = done
        self._fd = loop.watch_pipe(self._wake)
        self._thread = threading.Thread(target=self._run, name="read-host", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.result = self._func()
        except BaseException as exc:  # noqa: BLE001 - reported in the main loop
            self.error = exc
        try:
            os.write(self._fd, b"done")
        except OSError:
            pass  # the loop is gone (the user left while reading)

    def _wake(self, _data: bytes) -> bool:
        os.close(self._fd)
        self._done(self)
        return False
