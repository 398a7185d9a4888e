"""The main loop and the flow: reading the host (progress) -> the devices form ->
the preview -> write. Enter goes on, Esc goes back; Esc on the form leaves (exit 1).

Every key goes through `Guard`: an unexpected exception becomes a line in the red
panel (and a log record), never a traceback on the screen.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import urwid
import yaml

from installer_ext.config.load import parse_config
from installer_ext.config.model import Choices, InstallInfo
from installer_ext.errors import EXIT_BAD_INPUT, EXIT_ERROR, EXIT_OK, BadInput
from installer_ext.fsutil import atomic_write
from installer_ext.tui.form import Form
from installer_ext.tui.loading import Loading, watch
from installer_ext.tui.reader import Reading
from installer_ext.tui.palette import PALETTE
from installer_ext.tui.preview import Preview, preview_lines, section_yaml
from installer_ext.tui.session import Session

log = logging.getLogger(__name__)

EXIT_BACKED_OUT = 1


@dataclass
class Result:
    code: int = EXIT_BACKED_OUT
    lines: list[str] = field(default_factory=list)  # for stderr once the screen is gone
    text: str | None = None  # the YAML written (or to print)


class Guard(urwid.WidgetWrap):
    """Keys reach the view; an exception from handling one is shown, not raised."""

    def __init__(self, view: urwid.Widget) -> None:
        self.view = view
        super().__init__(view)

    def keypress(self, size, key):
        try:
            return self.view.keypress(size, key)
        except urwid.ExitMainLoop:
            raise
        except Exception as exc:  # noqa: BLE001 - the screen must not crash
            log.error("internal error on key %r: %s: %s", key, type(exc).__name__, exc)
            log.debug("traceback", exc_info=True)
            panel = getattr(self.view, "message", None)
            if panel is not None:
                panel.show([f"Internal error: {type(exc).__name__}: {exc}"], error=True)
            return None


class App:
    def __init__(
        self,
        root: str,
        choices: Choices,
        install: InstallInfo,
        output: str | None,
        reading: Reading,
        screen: urwid.BaseScreen | None = None,
    ) -> None:
        self.root = root
        self.choices = choices
        self.install = install
        self.output = output
        self.result = Result()
        self.session: Session | None = None
        self.form: Form | None = None
        self.reading = reading
        self.screen = screen
        self.loop: urwid.MainLoop | None = None
        self._spin = None

    # -- flow ------------------------------------------------------------------------
    def run(self) -> Result:
        screen = self.screen or urwid.display.raw.Screen(bracketed_paste_mode=False, focus_reporting=False)
        self.loading = Loading(self.root)
        self.loop = urwid.MainLoop(
            Guard(self.loading), PALETTE, screen, handle_mouse=False, unhandled_input=self._unhandled
        )
        self._spin = self.loop.set_alarm_in(0.1, self._tick)
        watch(self.loop, self.reading, self._loaded)
        try:
            self.loop.run()
        except KeyboardInterrupt:
            self.result.code = EXIT_BACKED_OUT
            self.result.lines.append("interrupted: nothing written")
        return self.result

    def _tick(self, loop, _data) -> None:
        if self.form is None:
            self.loading.tick()
            self._spin = loop.set_alarm_in(0.1, self._tick)

    def _unhandled(self, key) -> None:
        if key == "esc" and self.form is None:
            self.result.code = EXIT_BACKED_OUT
            raise urwid.ExitMainLoop()

    def _loaded(self, reading: Reading) -> None:
        if reading.error is not None:
            self.result.code = EXIT_ERROR
            self.result.lines.append(f"cannot read the host under {self.root}: {reading.error}")
            raise urwid.ExitMainLoop()
        facts = reading.result
        try:
            self.session = Session(facts, self.install, self.choices)
        except BadInput as exc:
            self.result.code = EXIT_BAD_INPUT
            self.result.lines.extend(exc.lines)
            raise urwid.ExitMainLoop() from None
        if self._spin is not None:
            self.loop.remove_alarm(self._spin)
        self.form = Form(self.session, self.next, self.leave)
        self.loop.widget = Guard(self.form)
        log.info("screen ready: %d functions", len(facts.devices))

    def leave(self) -> None:
        self.result.code = EXIT_BACKED_OUT
        raise urwid.ExitMainLoop()

    def next(self) -> None:
        problems = self.session.problems()
        if problems:
            self.form.message.show(["Cannot go on:"] + problems, error=True)
            return
        self.preview = Preview(preview_lines(self.session, self.output), self.confirm, self.back)
        self.loop.widget = Guard(self.preview)

    def back(self) -> None:
        self.loop.widget = Guard(self.form)

    def confirm(self) -> None:
        text = section_yaml(self.session.section())
        try:
            # What is written must load as an unattended config, with the same choices.
            again = parse_config(yaml.safe_load(text), "<screen>")
            if again.choices.to_section() != self.session.section():
                raise BadInput("the written section does not read back the same")
        except BadInput as exc:
            self.preview.message.show(["Internal error, nothing written:"] + exc.lines, error=True)
            return
        if self.output:
            try:
                atomic_write(self.output, text)
            except OSError as exc:
                self.preview.message.show([f"Cannot write {self.output}: {exc.strerror or exc}"], error=True)
                return
        self.result.code = EXIT_OK
        self.result.text = text
        raise urwid.ExitMainLoop()
