"""The device list: a lazy list walker (widgets made only for rows that are drawn, so
a host with thousands of functions starts fast), the row widgets, and the keys of
the list (Space selects, Right/Left or +/- fold the VFs of a physical function).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import urwid

from installer_ext.report import short_address
from installer_ext.tui import rows as r
from installer_ext.tui.palette import FOCUS
from installer_ext.tui.session import Session
from installer_ext.tui.switches import Switch
from installer_ext.tui.words import device_words, group_words, row_state

log = logging.getLogger(__name__)

ELLIPSIS = urwid.WrapMode.ELLIPSIS


class CountEdit(urwid.Edit):
    """Digits only, at most 4: an empty field means "leave the VFs as the host has them"."""

    def valid_char(self, ch: str) -> bool:
        return ch.isdigit() and len(self.edit_text) < 4


class RowLayout:
    """Column widths shared by every row, from the terminal width and the longest
    names on this host: wide terminals give the names their room and the state the
    rest, narrow ones (80 columns) share what is left between the two."""

    MARK, ADDR, KIND, DRIVER = 3, 9, 7, 11
    STATE_WANT = 34

    def __init__(self, devices) -> None:
        self.name_want = min(64, max((len(device_words(d)) for d in devices), default=20))
        self.driver_want = min(18, max((len(d.driver or "-") for d in devices), default=self.DRIVER))
        self._cache: dict[int, list[int] | None] = {}

    def widths(self, maxcol: int) -> list[int] | None:
        if maxcol not in self._cache:
            driver = max(self.DRIVER, self.driver_want) if maxcol >= 120 else self.DRIVER
            avail = maxcol - (self.MARK + self.ADDR + self.KIND + driver + 5)
            if avail < 16:
                self._cache[maxcol] = None
            else:
                if avail >= self.name_want + self.STATE_WANT:
                    name = self.name_want
                else:
                    name = max(8, min(self.name_want, avail * 45 // 100))
                self._cache[maxcol] = [self.MARK, self.ADDR, self.KIND, name, driver, avail - name]
        return self._cache[maxcol]


class RowColumns(urwid.Columns):
    def __init__(self, cells, layout: RowLayout) -> None:
        super().__init__(cells, dividechars=1)
        self._layout = layout

    def column_widths(self, size, focus=False):
        widths = self._layout.widths(size[0])
        return widths if widths is not None else super().column_widths(size, focus)


class DeviceRow(urwid.WidgetWrap):
    """One function: mark, address, kind, vendor and device, driver, state."""

    def __init__(self, entry: r.Entry, layout: RowLayout) -> None:
        self.entry = entry
        dev = entry.dev
        indent = "  " if entry.kind == r.VF else ""
        self._mark = urwid.Text("", wrap=ELLIPSIS)
        self._state = urwid.Text("", wrap=ELLIPSIS)
        cols = RowColumns(
            [
                (3, self._mark),
                (9, urwid.Text(indent + short_address(dev.address), wrap=ELLIPSIS)),
                (7, urwid.Text(dev.kind, wrap=ELLIPSIS)),
                ("weight", 1, urwid.Text(device_words(dev), wrap=ELLIPSIS)),
                (11, urwid.Text(dev.driver or "-", wrap=ELLIPSIS)),
                ("weight", 1, self._state),
            ],
            layout,
        )
        self._attr = urwid.AttrMap(cols, "row", FOCUS["row"])
        self._rev = -1
        super().__init__(self._attr)

    def selectable(self) -> bool:
        return True

    def keypress(self, size, key):
        return key

    def refresh(self, session: Session) -> None:
        if self._rev == session.revision:
            return
        self._rev = session.revision
        st = row_state(session, self.entry.dev)
        self._mark.set_text(st.mark)
        self._state.set_text(st.short)
        self._attr.set_attr_map({None: st.style})
        self._attr.set_focus_map({None: FOCUS[st.style]})


class GroupHeader(urwid.WidgetWrap):
    def __init__(self, entry: r.Entry) -> None:
        self.entry = entry
        text = urwid.Text(("group", "-- " + group_words(entry.gid, entry.predicted, entry.count, entry.hidden) + " "), wrap=ELLIPSIS)
        super().__init__(text)

    def selectable(self) -> bool:
        return False

    def refresh(self, session: Session) -> None:
        pass


class SriovRow(urwid.WidgetWrap):
    """Under a physical function: VFs at boot [count] of max, [x] to VMs, and what
    the host has now. Edits go to the session (the planner validates them)."""

    def __init__(self, entry: r.Entry, session: Session, on_change: Callable[[str, str, bool], None]) -> None:
        self.entry = entry
        dev = entry.dev
        choice = session.sriov_choice(dev.address)
        self._on_change = on_change
        self.edit = CountEdit("", "" if choice is None else str(choice.num_vfs))
        self.check = Switch("VFs to VMs", choice.vfs_to_vfio if choice is not None else True)
        self._hint = urwid.Text("", wrap=ELLIPSIS)
        self._box = urwid.AttrMap(self.check, "switch", FOCUS["switch"])
        cols = urwid.Columns(
            [
                (13, urwid.Text("", wrap=ELLIPSIS)),
                ("pack", urwid.Text("VFs at boot:")),
                (6, urwid.AttrMap(self.edit, "edit", FOCUS["edit"])),
                ("pack", urwid.Text(f"of {dev.sriov.total_vfs}")),
                (14, self._box),
                ("weight", 1, self._hint),
            ],
            dividechars=1,
            focus_column=2,
        )
        urwid.connect_signal(self.edit, "postchange", self._changed)
        urwid.connect_signal(self.check, "postchange", self._changed)
        self._rev = -1
        super().__init__(cols)

    def _changed(self, *_args) -> None:
        self._on_change(self.entry.dev.address, self.edit.edit_text, self.check.get_state())

    @property
    def on_box(self) -> bool:
        """The focus is on the "VFs to VMs" box (else on the count)."""
        return self._w.focus is self._box


    def refresh(self, session: Session) -> None:
        if self._rev == session.revision:
            return
        self._rev = session.revision
        dev = self.entry.dev
        now = dev.sriov.num_vfs
        sp = session.sriov_plan(dev.address)
        choice = session.sriov_choice(dev.address)
        if choice is None:
            hint = f"now {now}; empty: left as is"
        elif sp is None or (sp.num_vfs, sp.vfs_to_vfio) != (choice.num_vfs, choice.vfs_to_vfio):
            hint = f"now {now}; not valid" if session.errors else f"now {now}; ignored (passthrough off)"
        else:
            hint = f"now {now}; at boot {sp.num_vfs}" + (" for VMs" if sp.vfs_to_vfio else " on host")
        self._hint.set_text(hint)


class EntryWalker(urwid.ListWalker):
    """Entries -> widgets on demand, cached by entry key across filter changes."""

    def __init__(self, make: Callable[[r.Entry], urwid.Widget]) -> None:
        self.entries: list[r.Entry] = []
        self.focus = 0
        self._make = make
        self.cache: dict[tuple, urwid.Widget] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, pos: int) -> urwid.Widget:
        if not isinstance(pos, int) or not 0 <= pos < len(self.entries):
            raise IndexError(pos)
        e = self.entries[pos]
        w = self.cache.get(e.key)
        if w is None:
            w = self._make(e)
            self.cache[e.key] = w
        return w

    def next_position(self, pos: int) -> int:
        if pos + 1 >= len(self.entries):
            raise IndexError(pos)
        return pos + 1

    def prev_position(self, pos: int) -> int:
        if pos <= 0:
            raise IndexError(pos)
        return pos - 1

    def positions(self, reverse: bool = False):
        n = len(self.entries)
        return range(n - 1, -1, -1) if reverse else range(n)

    def set_focus(self, pos: int) -> None:
        self.focus = pos
        self._modified()

    def focus_entry(self) -> r.Entry | None:
        if 0 <= self.focus < len(self.entries):
            return self.entries[self.focus]
        return None

    def set_entries(self, entries: list[r.Entry], keep: tuple | None) -> None:
        """Show `entries`, focus on the entry with key `keep` if it is there, else the
        nearest selectable row at or after the old position."""
        old = self.focus
        self.entries = entries
        pos = next((i for i, e in enumerate(entries) if e.key == keep), None)
        if pos is None:
            pos = min(old, max(0, len(entries) - 1))
            while pos < len(entries) - 1 and entries[pos].kind == r.HEADER:
                pos += 1
        self.focus = pos
        self._modified()


class DeviceList(urwid.ListBox):
    """Space: select/unselect the function at the focus. On a physical function,
    Right or + (or a digit) goes to its "VFs at boot" count, showing its VFs;
    Left or - folds them."""

    def __init__(
        self,
        walker: EntryWalker,
        on_space: Callable[[r.Entry], None],
        on_fold: Callable[[r.Entry, bool], None],
        on_vf_count: Callable[[r.Entry], None],
    ) -> None:
        super().__init__(walker)
        self.walker = walker
        self._on_space = on_space
        self._on_fold = on_fold
        self._on_vf_count = on_vf_count
        self.top_offset: int | None = None  # put the focus this many rows from the top at the next draw

    def render(self, size, focus=False):
        if self.top_offset is not None and self.walker.entries:
            offset, self.top_offset = self.top_offset, None
            self.change_focus(size, self.walker.focus, offset_inset=min(offset, size[1] - 1))
        return super().render(size, focus)

    def keypress(self, size, key):
        if key in ("home", "end") and self.walker.entries:
            # Before the focused row sees them: the VF count field would move its cursor.
            if key == "home":
                first = next((i for i, e in enumerate(self.walker.entries) if e.kind != r.HEADER), 0)
                self.change_focus(size, first, offset_inset=first, coming_from="below")
            else:
                self.scroll_to_bottom()
            return None
        key = super().keypress(size, key)
        entry = self.walker.focus_entry()
        if entry is None or key is None:
            return key
        if key == " ":
            self._on_space(entry)
            return None
        pf_row = entry.kind == r.DEVICE and r.is_pf(entry.dev)
        if pf_row and (key in ("right", "+") or (len(key) == 1 and key.isdigit())):
            self._on_vf_count(entry)
            if key.isdigit():  # typed on the function's row: it goes into the count
                return super().keypress(size, key)
            return None
        if key in ("right", "+") and entry.kind in (r.DEVICE, r.SRIOV, r.VF):
            self._on_fold(entry, True)
            return None
        if key in ("left", "-") and entry.kind in (r.DEVICE, r.SRIOV, r.VF):
            self._on_fold(entry, False)
            return None
        return key
