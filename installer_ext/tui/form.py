"""The main screen: host state, the switches, the device list with its filter, the
details of what has the focus, the message lines and the key line.

Keys (as in the Harvester installer): arrows move, Space toggles, Enter validates and
goes on, Esc goes back; `/` filters, PgUp/PgDn/Home/End page, Tab goes between the
switches and the list. On a physical function, Right (or a digit) goes to its
"VFs at boot" count, Left folds its VFs. The details lines and the key line always
describe what has the focus.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import urwid

from installer_ext.plan.kernel_args import unsafe_interrupts_needed
from installer_ext.report import role as role_words
from installer_ext.report import short_address
from installer_ext.tui import hints
from installer_ext.tui import rows as r
from installer_ext.tui.chrome import Footer, title_widget
from installer_ext.tui.devicelist import DeviceList, DeviceRow, EntryWalker, GroupHeader, RowLayout, SriovRow
from installer_ext.tui.palette import FOCUS
from installer_ext.tui.session import Outcome, Session
from installer_ext.tui.switches import Switch, SwitchBar
from installer_ext.tui.words import device_words, host_lines, row_state

log = logging.getLogger(__name__)

HOST, SWITCHES, HEAD, LIST, RULE, DETAILS, DETAILS2 = range(7)  # positions in the body
COMPACT_ROWS = 20  # below this height each host line takes one row and the details two


class Form(urwid.WidgetWrap):
    def __init__(self, session: Session, on_next: Callable[[], None], on_back: Callable[[], None]) -> None:
        self.session = session
        self._on_next = on_next
        self._on_back = on_back
        self.listing = r.Listing(session.facts)
        self.layout = RowLayout(session.facts.devices)
        self.unfolded: set[str] = set()
        self.needle = ""
        self.bridges = False  # b shows the bridges (never bound, left out by default)
        self._states_rev, self._states = -1, {}
        self.leaving = False  # Esc pressed once: the next Esc leaves
        self._compact: bool | None = None
        self._host_lines: list[tuple[str, str]] | None = None

        self.host = urwid.Pile([urwid.Text("")])
        self.sw_enabled = Switch(hints.SWITCH_ENABLED, session.choices.enabled)
        self.sw_gpu = Switch(hints.SWITCH_GPU, session.choices.gpu_drivers)
        self.sw_unsafe = None
        boxes = {"enabled": self.sw_enabled, "gpu": self.sw_gpu}
        # "Allow unsafe interrupts" only where it changes anything: where the planner
        # refuses devices without it.
        if unsafe_interrupts_needed(session.facts.iommu):
            self.sw_unsafe = Switch(hints.SWITCH_UNSAFE, session.choices.allow_unsafe_interrupts)
            boxes["unsafe"] = self.sw_unsafe
        self._which = {id(box): name for name, box in boxes.items()}
        for name, box in boxes.items():
            urwid.connect_signal(box, "postchange", self._switch, user_args=[name])
        self.switches = SwitchBar(list(boxes.values()))

        self.filter_edit = urwid.Edit("Filter: ")
        urwid.connect_signal(self.filter_edit, "postchange", self._filter_changed)
        self.list_title = urwid.Text("", wrap=urwid.WrapMode.ELLIPSIS)
        self.list_head = urwid.Columns([("weight", 1, self.list_title)], dividechars=2)

        self.walker = EntryWalker(self._make_row)
        self.devlist = DeviceList(self.walker, self._space, self._fold, self._to_vf_count)
        self.details = urwid.Text("", wrap=urwid.WrapMode.ELLIPSIS)
        self.details2 = urwid.Text("")
        self.message = Footer(hints.KEYS_SWITCH)

        self.body = urwid.Pile(
            [
                ("pack", urwid.AttrMap(urwid.Padding(self.host, left=1, right=1), "text")),
                ("pack", urwid.Padding(self.switches, left=1)),
                ("pack", urwid.AttrMap(self.list_head, "listhead")),
                ("weight", 1, self.devlist),
                ("pack", urwid.AttrMap(urwid.Divider("-"), "group")),
                ("pack", urwid.AttrMap(urwid.Padding(self.details, left=1, right=1), "details")),
                ("given", 2, urwid.AttrMap(urwid.Filler(urwid.Padding(self.details2, left=1, right=1), valign="top"), "details")),
            ],
            focus_item=SWITCHES,
        )
        frame = urwid.Frame(self.body, header=title_widget(), footer=self.message)
        super().__init__(frame)
        self._rebuild(keep=None)
        self._show_header_of_focus()
        self._refresh()
        if session.errors or session.plan.fatal_refusals:
            self.message.show(session.problems(), error=True)

    # -- rows ------------------------------------------------------------------------
    def _make_row(self, entry: r.Entry) -> urwid.Widget:
        if entry.kind == r.HEADER:
            w = GroupHeader(entry)
        elif entry.kind == r.SRIOV:
            w = SriovRow(entry, self.session, self._sriov_changed)
        else:
            w = DeviceRow(entry, self.layout)
        w.refresh(self.session)
        return w

    def _state_text(self, dev) -> str:
        """The row's state words, remembered until the session changes (the filter
        looks at them for every function at each key)."""
        if self._states_rev != self.session.revision:
            self._states_rev, self._states = self.session.revision, {}
        text = self._states.get(dev.address)
        if text is None:
            text = self._states[dev.address] = row_state(self.session, dev).short
        return text

    def _rebuild(self, keep: tuple | None, entries: list[r.Entry] | None = None) -> None:
        if entries is None:
            entries = self.listing.entries(self.unfolded, self.needle, self._state_text, self.bridges)
        if keep is None and self.walker.entries:
            cur = self.walker.focus_entry()
            keep = cur.key if cur is not None else None
        self.walker.set_entries(entries, keep)
        self._update_list_title()

    def _show_header_of_focus(self) -> None:
        """Keep the group header above the focused row in view (after a new list)."""
        pos = self.walker.focus
        if 0 < pos < len(self.walker.entries) and self.walker.entries[pos - 1].kind == r.HEADER:
            self.devlist.top_offset = 1

    def _update_list_title(self) -> None:
        shown = sum(1 for e in self.walker.entries if e.kind in (r.DEVICE, r.VF) and not e.context)
        to_vms = len(self.session.passthrough)
        if self.needle:
            text = f" Devices: {shown} of {self.listing.total} match, {to_vms} to VMs"
        else:
            text = f" Devices by IOMMU group: {self.listing.total} functions, {to_vms} to VMs"
        if self.listing.bridges and not self.needle:
            text += f"; b {'hides' if self.bridges else 'shows'} {self.listing.bridges} bridges"
        self.list_title.set_text(text)

    def _refresh(self) -> None:
        """Bring every drawn row, the host lines and the details up to the session."""
        s = self.session
        lines = [(ln.style, ln.text) for ln in host_lines(s.facts, s.install, s.choices.allow_unsafe_interrupts)]
        if lines != self._host_lines:
            self._host_lines = lines
            wrap = urwid.WrapMode.ELLIPSIS if self._compact else urwid.WrapMode.SPACE
            self.host.contents[:] = [(urwid.Text(markup, wrap=wrap), self.host.options()) for markup in lines]
        for w in self.walker.cache.values():
            w.refresh(s)
        self._update_list_title()

    def _describe_focus(self) -> None:
        """The details lines and the key line for what has the focus now."""
        pos = self.body.focus_position
        if pos == SWITCHES:
            box = self.switches.focus_switch
            first, second = hints.switch_lines(self._which[id(box)], box.get_state())
            keys = hints.KEYS_SWITCH_STACKED if self.switches.stacked else hints.KEYS_SWITCH
        elif pos == HEAD:
            first, second = hints.FILTER_LINES
            keys = hints.KEYS_FILTER
        else:
            first, second, keys = self._describe_entry(self.walker.focus_entry())
        if self.details.text != first:
            self.details.set_text(first)
        if self.details2.text != second:
            self.details2.set_text(second)
        self.message.set_keys(keys)

    def _describe_entry(self, e: r.Entry | None) -> tuple[str, str, tuple[str, ...]]:
        if e is None or e.dev is None:
            if self.needle and not self.walker.entries:
                return f"Nothing matches \"{self.needle}\" (Esc clears the filter).", "", hints.KEYS_ROW
            return (f"IOMMU group {e.gid}" if e is not None and e.gid is not None else ""), "", hints.KEYS_HEADER
        d = e.dev
        group = "-" if d.group is None else (f"{d.group}*" if d.iommu_group is None else str(d.group))
        role = [role_words(d)] if role_words(d) else []
        pf = r.is_pf(d)
        if pf and e.kind == r.DEVICE:
            role.append("Right: VFs at boot")
        first = f"{short_address(d.address)} {d.ids or '????:????'} group {group}  {device_words(d)}"
        first += f"  [{'; '.join(role)}]" if role else ""
        if e.kind == r.SRIOV:
            box = self.walker[self.walker.focus]
            keys = hints.KEYS_VF_BOX if box.on_box else hints.KEYS_VF_COUNT
            return first, hints.VF_COUNT_HELP, keys
        if e.kind == r.VF:
            keys = hints.KEYS_VF
        elif pf:
            keys = hints.KEYS_PF_UNFOLDED if d.address in self.unfolded else hints.KEYS_PF
        else:
            keys = hints.KEYS_ROW
        return first, row_state(self.session, d).long, keys

    def render(self, size, focus=False):
        self._set_compact(len(size) > 1 and size[1] < COMPACT_ROWS)
        self.switches.arrange(size[0] - 1)  # as the draw will: the key line depends on it
        self._describe_focus()
        return super().render(size, focus)

    def _set_compact(self, compact: bool) -> None:
        """Small heights: one row per host line (cut with an ellipsis) and one details
        row, so the list keeps a few rows."""
        if compact == self._compact:
            return
        self._compact = compact
        wrap = urwid.WrapMode.ELLIPSIS if compact else urwid.WrapMode.SPACE
        for w, _ in self.host.contents:
            w.set_wrap_mode(wrap)
        widget, _ = self.body.contents[DETAILS2]
        self.body.contents[DETAILS2] = (widget, self.body.options("given", 1 if compact else 2))

    # -- edits -----------------------------------------------------------------------
    def _show(self, out: Outcome) -> None:
        if self.session.errors and out.ok:
            self.message.show(self.session.errors, error=True)
        else:
            self.message.show(out.lines, error=out.error)
        self._refresh()

    def _switch(self, which: str, box: Switch, _old: bool) -> None:
        on = box.get_state()
        s = self.session
        if which == "enabled":
            out = s.set_enabled(on)
            current = s.choices.enabled
        elif which == "gpu":
            out = s.set_gpu_drivers(on)
            current = s.choices.gpu_drivers
        else:
            out = s.set_allow_unsafe(on)
            current = s.choices.allow_unsafe_interrupts
        if current != on:  # refused: put the box back without calling us again
            box.set_state(current, do_callback=False)
        self._show(out)

    def _space(self, entry: r.Entry) -> None:
        if entry.kind not in (r.DEVICE, r.VF):
            return
        self._show(self.session.toggle(entry.dev.address))

    def _fold(self, entry: r.Entry, unfold: bool) -> None:
        dev = entry.dev
        pf = dev.physfn if entry.kind == r.VF else dev.address
        if pf not in self.listing.vfs:
            return
        if unfold and pf not in self.unfolded:
            self.unfolded.add(pf)
            self._rebuild(keep=entry.key)
        elif not unfold and pf in self.unfolded:
            self.unfolded.discard(pf)
            self._rebuild(keep=(r.DEVICE, pf))

    def _to_vf_count(self, entry: r.Entry) -> None:
        """Right (or a digit) on a physical function: show its VFs, focus its count."""
        pf = entry.dev.address
        if pf in self.listing.vfs:
            self.unfolded.add(pf)
        self._rebuild(keep=(r.SRIOV, pf))

    def _sriov_changed(self, address: str, text: str, to_vfio: bool) -> None:
        num = int(text) if text.isdigit() else None
        self._show(self.session.set_sriov(address, num, to_vfio))

    # -- filter ----------------------------------------------------------------------
    def open_filter(self) -> None:
        if len(self.list_head.contents) == 1:
            self.list_head.contents.append(
                (urwid.AttrMap(self.filter_edit, "edit", FOCUS["edit"]), self.list_head.options("given", 32))
            )
        self.list_head.focus_position = 1
        self.body.focus_position = HEAD

    def close_filter(self, clear: bool) -> None:
        if clear:
            self.filter_edit.set_edit_text("")
        if len(self.list_head.contents) > 1 and not self.needle:
            del self.list_head.contents[1]
        self.body.focus_position = LIST

    @property
    def filter_focused(self) -> bool:
        return self.body.focus_position == HEAD

    def _filter_changed(self, *_args) -> None:
        needle = self.filter_edit.edit_text
        if needle == self.needle:
            return
        self.needle = needle
        if not needle:
            # The filter emptied: stay on the row found with it, a VF with its PF unfolded.
            cur = self.walker.focus_entry()
            if cur is not None and cur.kind == r.VF:
                self.unfolded.add(cur.dev.physfn)
        entries = self.listing.entries(self.unfolded, self.needle, self._state_text, self.bridges)
        if needle:  # the first match
            keep = next((e.key for e in entries if e.kind in (r.DEVICE, r.VF) and not e.context), None)
        else:
            keep = None
        self._rebuild(keep=keep, entries=entries)
        self._show_header_of_focus()
        # A message about a row of the old list would now be about something else.
        if self.session.errors:
            self.message.show(self.session.errors, error=True)
        else:
            self.message.clear()

    # -- keys ------------------------------------------------------------------------
    def keypress(self, size, key):
        if key != "esc" and self.leaving:
            self.leaving = False
            self.message.clear()
        if self.filter_focused and key in ("enter", "down", "tab"):
            self.close_filter(clear=False)
            return None
        if self.filter_focused and key == "esc":
            self.close_filter(clear=True)
            return None
        key = super().keypress(size, key)
        if key is None:
            return None
        if key == "/":
            self.open_filter()
            return None
        if key == "b":
            self.bridges = not self.bridges
            self._rebuild(keep=None)
            return None
        if key == "tab":
            self.body.focus_position = SWITCHES if self.body.focus_position == LIST else LIST
            return None
        if key == "enter":
            self._on_next()
            return None
        if key == "esc":
            if self.needle:
                self.close_filter(clear=True)
                return None
            if self.leaving:
                self._on_back()
                return None
            self.leaving = True
            self.message.show(["Leave without writing anything? Esc again leaves, any other key stays."], error=False)
            return None
        return key
