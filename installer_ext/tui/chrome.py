"""What frames every screen: the title bar and the footer (the message lines above the
key line).

The footer is one widget that always draws at least one row (the keys). A message
line of its own that drew 0 rows while empty would not be redrawn when it gets text:
urwid 5.0.1, the version installer-ext.pyz ships, leaves a child that drew 0 rows out
of its parent's canvas (urwid/widget/pile.py `Pile.render` and urwid/widget/frame.py
`Frame.render` in the 5.0.1 wheel; 5.1.0 lists them as "undrawn" children), so the
canvas cache keeps the parent's old canvas while the terminal still holds the last
frame. Adding or removing the message as an item of this footer's Pile changes the
Pile's contents, which urwid always redraws. tests/tui/test_tui_redraw.py checks it.
"""

from __future__ import annotations

import logging

import urwid

log = logging.getLogger(__name__)

TITLE = "GPU drivers / PCI passthrough"

# The smallest terminal the screen is laid out for; below it, one line says so. The
# installer's own consoles are bigger: the VGA text console is 80x25 (tty1), a serial
# console 80x24 (see terminal.py).
MIN_COLS, MIN_ROWS = 60, 15


def fitting(texts: tuple[str, ...], cols: int) -> str:
    """The longest of `texts` that fits in `cols` after a leading space."""
    return " " + next((t for t in texts if len(t) + 1 <= cols), texts[-1])


def title_widget(text: str = TITLE) -> urwid.Widget:
    return urwid.AttrMap(urwid.Text(" " + text, wrap=urwid.WrapMode.ELLIPSIS), "title")


class Footer(urwid.WidgetWrap):
    """Messages (errors in red, as the Harvester installer's validator panel; news in
    plain colour) over the key line, which shows the longest of the given variants
    that fits the width."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self._text = urwid.Text("")
        self._message = urwid.AttrMap(urwid.Padding(self._text, left=1, right=1), "info")
        self._keys_text = urwid.Text("", wrap=urwid.WrapMode.ELLIPSIS)
        self._keyline = urwid.AttrMap(self._keys_text, "footer")
        self._pile = urwid.Pile([self._keyline])
        self.keys = keys
        self.lines: list[str] = []
        self.error = False
        super().__init__(self._pile)

    # -- messages --------------------------------------------------------------------
    def show(self, lines: list[str] | tuple[str, ...], error: bool) -> None:
        self.lines = list(lines)
        self.error = error and bool(self.lines)
        self._text.set_text("\n".join(self.lines))
        self._message.set_attr_map({None: "error" if self.error else "info"})
        items = [self._message, self._keyline] if self.lines else [self._keyline]
        self._pile.contents[:] = [(w, self._pile.options()) for w in items]

    def clear(self) -> None:
        if self.lines:
            self.show([], False)

    # -- keys ------------------------------------------------------------------------
    def set_keys(self, keys: tuple[str, ...]) -> None:
        if keys != self.keys:
            self.keys = keys
            self._invalidate()

    def render(self, size, focus=False):
        text = fitting(self.keys, size[0])
        if self._keys_text.text != text:
            self._keys_text.set_text(text)
        return super().render(size, focus)

    def rows(self, size, focus=False) -> int:
        text = fitting(self.keys, size[0])
        if self._keys_text.text != text:
            self._keys_text.set_text(text)
        return super().rows(size, focus)
