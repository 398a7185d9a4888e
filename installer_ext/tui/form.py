"""The main screen: host state, the two switches, the device list with its filter,
the details of the focused function, the message panel and the key footer.

Keys (as in the Harvester installer): arrows move, Space toggles, Enter validates and
goes on, Esc goes back; `/` filters, PgUp/PgDn/Home/End page, Right/Left fold VFs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import urwid

from installer_ext.report import role as role_words
from installer_ext.report import short_address
from installer_ext.tui import rows as r
from installer_ext.tui.devicelist import DeviceList, DeviceRow, EntryWalker, GroupHeader, RowLayout, SriovRow, Switch
from installer_ext.tui.palette import FOCUS
from installer_ext.tui.session import Outcome, Session
from installer_ext.tui.words import device_words, host_lines, row_state

log = logging.getLogger(__name__)

TITLE = "GPU drivers / PCI passthrough"
SWITCHES, HEAD, LIST = 1, 2, 3  # positions in the body
FOOTERS = (
    "Up/Down move  Space select  Right/Left show/fold VFs  / filter  PgUp/PgDn page  Enter next  Esc back",
    "Arrows move  Space select  Right VFs  / filter  PgUp/PgDn  Enter next  Esc back",
    "Space select  / filter  Enter next  Esc back",
)


def fitting(texts: tuple[str, ...], cols: int) -> str:
    """The longest of `texts` that fits in `cols` after a leading space."""
    return " " + next((t for t in texts if len(t) + 1 <= cols), texts[-1])


def footer_widget(text: str) -> urwid.Widget:
    return urwid.AttrMap(urwid.Text(text, wrap=urwid.WrapMode.ELLIPSIS), "footer")


def title_widget(text: str = TITLE) -> urwid.Widget:
    return urwid.AttrMap(urwid.Text(" " + text, wrap=urwid.WrapMode.ELLIPSIS), "title")


class MessagePanel(urwid.WidgetWrap):
    """Errors in red under the form (the Harvester validator panel), info in plain
    colour; takes no room when empty."""

    def __init__(self) -> None:
        self._text = urwid.Text("")
        self._attr = urwid.AttrMap(urwid.Padding(self._text, left=1, right=1), "info")
        self._pile = urwid.Pile([])
        self.lines: list[str] = []
        self.error = False
        super().__init__(self._pile)

    def show(self, lines: list[str] | tuple[str, ...], error: bool) -> None:
        self.lines = list(lines)
        self.error = error and bool(lines)
        self._text.set_text("\n".join(self.lines))
        self._attr.set_attr_map({None: "error" if error else "info"})
        self._pile.contents[:] = [(self._attr, self._pile.options())] if self.lines else []

    def clear(self) -> None:
        self.show([], False)


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

        self.host = urwid.Text("")
        self.sw_enabled = Switch("Enable PCI passthrough", session.choices.enabled)
        self.sw_gpu = Switch("Install GPU drivers / device plugin", session.choices.gpu_drivers)
        urwid.connect_signal(self.sw_enabled, "postchange", self._switch, user_args=["enabled"])
        urwid.connect_signal(self.sw_gpu, "postchange", self._switch, user_args=["gpu"])
        switches = [
            ("pack", urwid.AttrMap(self.sw_enabled, "switch", FOCUS["switch"])),
            ("pack", urwid.AttrMap(self.sw_gpu, "switch", FOCUS["switch"])),
        ]
        self.switches = urwid.Columns(switches, dividechars=3)
        switch_rows = [self.switches]
        self.sw_unsafe = None
        io = session.facts.iommu
        if (io.interrupt_remapping is False and io.state != "absent") or session.choices.allow_unsafe_interrupts:
            self.sw_unsafe = Switch(
                "Allow unsafe interrupts (no interrupt remapping: a device can disturb the host)",
                session.choices.allow_unsafe_interrupts,
            )
            urwid.connect_signal(self.sw_unsafe, "postchange", self._switch, user_args=["unsafe"])
            switch_rows.append(urwid.AttrMap(self.sw_unsafe, "switch", FOCUS["switch"]))

        self.filter_edit = urwid.Edit("Filter: ")
        urwid.connect_signal(self.filter_edit, "postchange", self._filter_changed)
        self.list_title = urwid.Text("", wrap=urwid.WrapMode.ELLIPSIS)
        self.list_head = urwid.Columns([("weight", 1, self.list_title)], dividechars=2)

        self.walker = EntryWalker(self._make_row)
        self.devlist = DeviceList(self.walker, self._space, self._fold)
        urwid.connect_signal(self.walker, "modified", self._focus_moved)
        self.details = urwid.Text("", wrap=urwid.WrapMode.ELLIPSIS)
        self.details2 = urwid.Text("")
        self.message = MessagePanel()
        self.footer = urwid.Text(" " + FOOTERS[0], wrap=urwid.WrapMode.ELLIPSIS)

        self.body = urwid.Pile(
            [
                ("pack", urwid.AttrMap(urwid.Padding(self.host, left=1, right=1), "text")),
                ("pack", urwid.Padding(urwid.Pile(switch_rows), left=1)),
                ("pack", urwid.AttrMap(self.list_head, "listhead")),
                ("weight", 1, self.devlist),
                ("pack", urwid.AttrMap(urwid.Divider("-"), "group")),
                ("pack", urwid.AttrMap(self.details, "details")),
                ("pack", urwid.AttrMap(urwid.BoxAdapter(urwid.Filler(self.details2, valign="top"), 2), "details")),
            ],
            focus_item=SWITCHES,
        )
        frame = urwid.Frame(
            self.body,
            header=title_widget(),
            footer=urwid.Pile([self.message, urwid.AttrMap(self.footer, "footer")]),
        )
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
        lines = host_lines(s.facts, s.install, s.choices.allow_unsafe_interrupts)
        self.host.set_text([(ln.style, ln.text + ("\n" if i < len(lines) - 1 else "")) for i, ln in enumerate(lines)])
        for w in self.walker.cache.values():
            w.refresh(s)
        self._update_list_title()
        self._focus_moved()

    def _focus_moved(self) -> None:
        e = self.walker.focus_entry()
        if e is None or e.dev is None:
            if self.needle and not self.walker.entries:
                self.details.set_text(f" Nothing matches \"{self.needle}\" (Esc clears the filter).")
            else:
                self.details.set_text(" " + (f"IOMMU group {e.gid}" if e is not None and e.gid is not None else ""))
            self.details2.set_text("")
            return
        d = e.dev
        group = "-" if d.group is None else (f"{d.group}*" if d.iommu_group is None else str(d.group))
        role = [role_words(d)] if role_words(d) else []
        if d.address in self.listing.vfs:
            role.append("Right: show VFs" if d.address not in self.unfolded else "Left: fold VFs")
        self.details.set_text(
            f" {short_address(d.address)} {d.ids or '????:????'} group {group}  {device_words(d)}"
            + (f"  [{'; '.join(role)}]" if role else "")
        )
        st = row_state(self.session, d)
        if e.kind == r.SRIOV:
            text = "VFs made at every boot (empty: left as the host has them); [X] VFs to VMs: bound to vfio-pci."
        else:
            text = st.long
        self.details2.set_text(" " + text)

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
        self._focus_moved()

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
        entries = self.listing.entries(self.unfolded, self.needle, self._state_text, self.bridges)
        first = next((e.key for e in entries if e.kind in (r.DEVICE, r.VF) and not e.context), None)
        self._rebuild(keep=first, entries=entries)
        self._show_header_of_focus()
        self._focus_moved()

    # -- keys ------------------------------------------------------------------------
    def keypress(self, size, key):
        if key != "esc":
            self.leaving = False
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
            self._focus_moved()
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

    def render(self, size, focus=False):
        text = fitting(FOOTERS, size[0])
        if self.footer.text != text:
            self.footer.set_text(text)
        return super().render(size, focus)
