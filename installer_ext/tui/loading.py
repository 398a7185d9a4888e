"""The progress screen while the host is read (`reader.Reading`, a thread).

`gather` reads every function under ROOT/sys; on a host with thousands of SR-IOV VFs
that takes a noticeable moment, so the main loop keeps drawing a spinner with the
elapsed time and wakes up through a pipe (`MainLoop.watch_pipe`) when it is done.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import urwid

from installer_ext.tui.chrome import Footer, title_widget
from installer_ext.tui.reader import Reading

log = logging.getLogger(__name__)

SPIN = "|/-\\"


class Loading(urwid.WidgetWrap):
    """Title, "Reading the PCI devices of this machine..." with a spinner and the time."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.started = time.monotonic()
        self._n = 0
        self.text = urwid.Text("", align="center")
        self.footer = Footer(("Please wait: large hosts take a few seconds.  Esc leaves", "Esc leaves"))
        body = urwid.Filler(urwid.Padding(self.text, align="center", width=("relative", 90)), valign="middle")
        frame = urwid.Frame(body, header=title_widget(), footer=self.footer)
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


def watch(loop: urwid.MainLoop, reading: Reading, done: Callable[[Reading], None]) -> None:
    """Call `done(reading)` in the main loop once the reading is over."""

    def wake(_data: bytes) -> bool:
        os.close(fd)
        done(reading)
        return False

    fd = loop.watch_pipe(wake)
    reading.notify(fd)
