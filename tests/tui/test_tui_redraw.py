"""The screen redraws what changed while the display still holds the last frame.

urwid's canvas cache drops a parent's canvas when a child it was drawn from changes.
urwid 5.0.1 (the version installer-ext.pyz ships) leaves a child that drew 0 rows out
of its parent's canvas (urwid/widget/pile.py `Pile.render`, urwid/widget/frame.py
`Frame.render` of the 5.0.1 wheel; 5.1.0 lists such children as "undrawn"), so a
message line that was empty and then gets text is never drawn while a real display
(urwid/display/_raw_display_base.py keeps `_screen_buf_canvas`) still holds the old
frame. `urwid.testing.render_text` keeps no canvas and cannot see this: these tests
run the widgets in a MainLoop on `urwid.testing.ScriptedScreen`, which keeps every
frame it drew, as the terminal screen does.
"""

from __future__ import annotations

import urwid
from urwid.testing import ScriptedScreen

from installer_ext.config.model import Choices
from installer_ext.tui.app import Guard
from installer_ext.tui.form import Form
from installer_ext.tui.palette import PALETTE
from installer_ext.tui.preview import Preview, preview_lines


def frames(widget, keys: list[str], size=(80, 24)) -> list[str]:
    """The text of the last frame drawn after each key, one key per input batch."""
    screen = ScriptedScreen(size=size, inputs=[[k] for k in keys])
    urwid.MainLoop(Guard(widget), PALETTE, screen=screen, handle_mouse=False).run()
    return [" ".join(" ".join(row.split()) for row in c.decoded_text) for c in screen.canvases]


def test_the_message_line_appears_after_a_key_while_the_last_frame_is_held(session_of):
    form = Form(session_of("intel-workstation"), lambda: None, lambda: None)
    drawn = frames(form, ["esc"])
    assert "Esc again leaves" not in drawn[0]
    assert "Esc again leaves" in drawn[-1]


def test_a_selection_shows_its_group_on_the_message_line(session_of):
    form = Form(session_of("intel-workstation", Choices(enabled=True)), lambda: None, lambda: None)
    keys = ["tab", "down", " "]  # to the list (01:00.0), down to 01:00.1, Space
    drawn = frames(form, keys)
    assert "whole IOMMU group 1" in drawn[-1], drawn[-1]


def test_the_preview_shows_an_error_after_enter(session_of):
    s = session_of("intel-workstation")
    preview: Preview | None = None

    def confirm() -> None:
        preview.message.show(["Cannot write /x: read-only file system"], error=True)

    preview = Preview(preview_lines(s, "/x"), confirm, lambda: None)
    drawn = frames(preview, ["enter"])
    assert "Cannot write /x" not in drawn[0]
    assert "Cannot write /x: read-only file system" in drawn[-1]
