"""The terminal the screen draws on.

- Standard input and output when both are a terminal; otherwise the controlling
  terminal, /dev/tty, so `installer-ext tui > choices.yaml` draws the screen and
  writes the result to the file.
- TERM=dumb (or no TERM) cannot move the cursor: refused with one line that names
  a terminal that works, instead of a screen of escape codes.
- A serial console reports a size of 0x0 (nothing sets the window size of a serial
  line; harvester-installer's setup-installer.sh runs the installer on ttyS0 with
  TERM=linux): the screen is then drawn at 80x24, the size agetty's peers assume.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from collections.abc import Iterator

log = logging.getLogger(__name__)

DUMB = ("", "dumb", "unknown")
FALLBACK_SIZE = (80, 24)


class NoTerminal(Exception):
    """The screen cannot run here: one line for stderr."""


def check_term(term: str | None) -> None:
    if (term or "").strip() in DUMB:
        shown = f"TERM={term}" if term else "no TERM"
        raise NoTerminal(f"tui: {shown} cannot draw the screen; run it with TERM=linux (console) or TERM=xterm")


def _screen_class():
    import urwid

    class Screen(urwid.display.raw.Screen):
        def get_cols_rows(self) -> tuple[int, int]:
            cols, rows = super().get_cols_rows()
            if cols <= 0 or rows <= 0:
                cols, rows = FALLBACK_SIZE
                self.maxrow = rows
            return cols, rows

    return Screen


@contextmanager
def terminal() -> Iterator[object]:
    """An urwid screen on standard input/output, or on /dev/tty when they are not both
    a terminal (closed afterwards). NoTerminal when there is none."""
    check_term(os.environ.get("TERM"))
    Screen = _screen_class()
    if sys.stdin.isatty() and sys.stdout.isatty():
        yield Screen(bracketed_paste_mode=False, focus_reporting=False)
        return
    try:
        tty_in = open("/dev/tty", "rb", buffering=0)  # noqa: SIM115 - closed below
    except OSError as exc:
        raise NoTerminal(
            "tui: needs a terminal: standard input and output are not one and there is no /dev/tty "
            f"({exc.strerror or exc}); use `plan --config FILE` unattended"
        ) from None
    try:
        tty_out = open("/dev/tty", "w", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        tty_in.close()
        raise NoTerminal(f"tui: cannot write to /dev/tty: {exc.strerror or exc}") from None
    log.debug("drawing on /dev/tty (standard input/output are not a terminal)")
    try:
        yield Screen(input=tty_in, output=tty_out, bracketed_paste_mode=False, focus_reporting=False)
    finally:
        tty_out.close()
        tty_in.close()
