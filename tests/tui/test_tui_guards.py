"""Never a crash, never stray output: exceptions in key handling become a red line;
log records wait until the screen is gone."""

from __future__ import annotations

import logging

from urwid.testing import press, render_text

from installer_ext.tui.app import Guard
from installer_ext.tui.form import Form
from installer_ext.tui.logbuffer import held_logs


def test_an_exception_while_handling_a_key_is_shown_not_raised(session_of, monkeypatch, caplog):
    s = session_of("intel-workstation")
    form = Form(s, lambda: None, lambda: None)

    def boom(*_a):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(s, "set_enabled", boom)
    guard = Guard(form)
    with caplog.at_level(logging.DEBUG):
        assert press(guard, (80, 24), " ") == []
    text = " ".join(" ".join(r.split()) for r in render_text(guard, (80, 24), focus=True))
    assert "Internal error: RuntimeError: disk on fire" in text
    assert any("disk on fire" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)


def test_logs_are_held_while_the_screen_is_up_and_replayed_after(capsys):
    root = logging.getLogger()
    saved_level = root.level
    stream = logging.StreamHandler()  # bound to sys.stderr now: capsys sees it
    stream.setLevel(logging.WARNING)
    root.addHandler(stream)
    root.setLevel(logging.DEBUG)
    try:
        with held_logs():
            logging.getLogger("installer_ext.x").warning("held %d", 1)
            logging.getLogger("installer_ext.x").debug("below the handler's level")
            assert capsys.readouterr().err == ""
        err = capsys.readouterr().err
        assert "held 1" in err and "below the handler" not in err
        assert root.handlers[-1] is stream
    finally:
        root.removeHandler(stream)
        root.setLevel(saved_level)
