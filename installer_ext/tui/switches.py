"""The check boxes of the screen, and the switches at the top, laid out like words
in a paragraph: side by side while they fit in the width, the next one on the next
row when it does not, so none of them is ever cut off (at 60 columns "Install GPU
drivers" would not fit next to "Enable PCI passthrough")."""

from __future__ import annotations

import logging

import urwid

from installer_ext.tui.palette import FOCUS

log = logging.getLogger(__name__)

GAP = 3  # columns between two switches side by side


class Switch(urwid.CheckBox):
    """A check box that leaves Enter to the screen (Enter = next, Space = toggle)."""

    def keypress(self, size, key):
        if key == "enter":
            return key
        return super().keypress(size, key)


def pack_rows(widths: list[int], maxcol: int) -> list[list[int]]:
    """Indexes of the switches on each row: as many as fit, in order, at least one."""
    rows: list[list[int]] = []
    used = 0
    for i, w in enumerate(widths):
        if rows and used + GAP + w <= maxcol:
            rows[-1].append(i)
            used += GAP + w
        else:
            rows.append([i])
            used = w
    return rows


class SwitchBar(urwid.WidgetWrap):
    """The switches in rows that fit the width. Left/Right move along a row, Up/Down
    between rows; the focused switch stays focused when the rows change."""

    def __init__(self, switches: list[Switch]) -> None:
        self.switches = switches
        self._cells = [urwid.AttrMap(s, "switch", FOCUS["switch"]) for s in switches]
        self._widths = [4 + len(s.label) for s in switches]  # "[ ] " and the label
        self._layout_rows: list[list[int]] = []
        self._focus = 0
        super().__init__(urwid.Pile([]))
        self.arrange(sum(self._widths) + GAP * len(self._widths))

    def arrange(self, maxcol: int) -> None:
        """Lay the switches out for `maxcol` columns (done before each draw)."""
        rows = pack_rows(self._widths, maxcol)
        if rows == self._layout_rows:
            return
        self._focus = self.focus_index if self._layout_rows else self._focus
        self._layout_rows = rows
        lines = [urwid.Columns([("pack", self._cells[i]) for i in row], dividechars=GAP) for row in rows]
        pile = urwid.Pile(lines)
        for y, row in enumerate(rows):
            if self._focus in row:
                pile.focus_position = y
                lines[y].focus_position = row.index(self._focus)
        self._w = pile

    @property
    def stacked(self) -> bool:
        """More than one row: Up/Down go between the switches."""
        return len(self._layout_rows) > 1

    @property
    def focus_index(self) -> int:
        y = self._w.focus_position
        return self._layout_rows[y][self._w.contents[y][0].focus_position]

    @property
    def focus_switch(self) -> Switch:
        return self.switches[self.focus_index]

    def rows(self, size, focus=False) -> int:
        self.arrange(size[0])
        return self._w.rows(size, focus)

    def render(self, size, focus=False):
        self.arrange(size[0])
        return self._w.render(size, focus)

    def keypress(self, size, key):
        self.arrange(size[0])
        return self._w.keypress(size, key)

    def get_cursor_coords(self, size):
        self.arrange(size[0])
        return self._w.get_cursor_coords(size)
