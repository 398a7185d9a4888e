"""The main loop and the flow: reading the host (progress) -> the devices form ->
the preview -> write. Enter goes on, Esc goes back; Esc twice on the form leaves.

Every key goes through `Guard`: an unexpected exception becomes a line in the red
panel (and a log record), never a traceback on the screen; below the smallest size
the screen is laid out for, it shows one line saying so and takes no key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import urwid

from installer_ext.config.goyaml import parse_yaml
from installer_ext.config.load import parse_config
from installer_ext.config.model import Config
from installer_ext.config.rewrite import with_section
from installer_ext.errors import EXIT_BAD_INPUT, EXIT_ERROR, EXIT_OK, BadInput
from installer_ext.fsutil import atomic_write
from installer_ext.tui.chrome import MIN_COLS, MIN_ROWS
from installer_ext.tui.form import Form
from installer_ext.tui.loading import Loading, watch
from installer_ext.tui.palette import PALETTE
from installer_ext.tui.preview import Preview, preview_lines
from installer_ext.tui.reader import Reading
from installer_ext.tui.session import SECTION, Session

log = logging.getLogger(__name__)

EXIT_BACKED_OUT = 1
NOTHING_WRITTEN = "nothing written"


@dataclass
class Result:
    code: int = EXIT_BACKED_OUT
    lines: list[str] = field(default_factory=list)  # for stderr once the screen is gone
    text: str | None = None  # what was written (or is to be printed)


class Guard(urwid.WidgetWrap):
    """Keys reach the view; an exception from handling one is shown, not raised.
    Smaller than MIN_COLS x MIN_ROWS, the view is replaced by one line and gets no
    key (what a key would do could not be seen)."""

    def __init__(self, view: urwid.Widget) -> None:
        self.view = view
        self._small = urwid.Filler(urwid.Text("", wrap=urwid.WrapMode.ELLIPSIS), valign="top")
        super().__init__(view)

    @staticmethod
    def too_small(size) -> bool:
        return len(size) == 2 and (size[0] < MIN_COLS or size[1] < MIN_ROWS)

    def render(self, size, focus=False):
        if self.too_small(size):
            self._small.original_widget.set_text(
                f"Window too small ({size[0]}x{size[1]}): needs at least {MIN_COLS}x{MIN_ROWS}"
            )
            return self._small.render(size, focus)
        return self.view.render(size, focus)

    def keypress(self, size, key):
        if self.too_small(size):
            return None
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
        config: Config,
        output: str | None,
        reading: Reading,
        screen: urwid.BaseScreen,
    ) -> None:
        self.root = root
        self.config = config
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
        self.loading = Loading(self.root)
        self.loop = urwid.MainLoop(
            Guard(self.loading), PALETTE, self.screen, handle_mouse=False, unhandled_input=self._unhandled
        )
        self._spin = self.loop.set_alarm_in(0.1, self._tick)
        watch(self.loop, self.reading, self._loaded)
        try:
            self.loop.run()
        except KeyboardInterrupt:
            self.result = Result(EXIT_BACKED_OUT, [f"interrupted: {NOTHING_WRITTEN}"])
        return self.result

    def _tick(self, loop, _data) -> None:
        if self.form is None:
            self.loading.tick()
            self._spin = loop.set_alarm_in(0.1, self._tick)

    def _unhandled(self, key) -> None:
        if key == "esc" and self.form is None:
            self.leave()

    def _loaded(self, reading: Reading) -> None:
        if reading.error is not None:
            self.result = Result(EXIT_ERROR, [f"cannot read the host under {self.root}: {reading.error}; {NOTHING_WRITTEN}"])
            raise urwid.ExitMainLoop()
        facts = reading.result
        try:
            self.session = Session(facts, self.config.install, self.config.choices)
        except BadInput as exc:
            self.result = Result(EXIT_BAD_INPUT, list(exc.lines))
            raise urwid.ExitMainLoop() from None
        if self._spin is not None:
            self.loop.remove_alarm(self._spin)
        self.form = Form(self.session, self.next, self.leave)
        self.loop.widget = Guard(self.form)
        log.info("screen ready: %d functions", len(facts.devices))

    def leave(self) -> None:
        self.result = Result(EXIT_BACKED_OUT, [f"left the screen: {NOTHING_WRITTEN}"])
        raise urwid.ExitMainLoop()

    def next(self) -> None:
        problems = self.session.problems()
        if problems:
            self.form.message.show(["Cannot go on:"] + problems, error=True)
            return
        lines = preview_lines(self.session, self.output, self.config.source if self.config.text is not None else None)
        self.preview = Preview(lines, self.confirm, self.back)
        self.loop.widget = Guard(self.preview)

    def back(self) -> None:
        self.loop.widget = Guard(self.form)

    def confirm(self) -> None:
        section = self.session.section()
        out = with_section(self.config.text, self.config.document, section, self.output or "<output>")
        try:
            # What is written must load as an install config, with the same choices.
            again = parse_config(parse_yaml(out.text, "<screen>"), "<screen>")
            if again.choices.to_section() != section:
                raise BadInput(f"the written {SECTION} section does not read back the same")
        except BadInput as exc:
            self.preview.message.show(["Internal error, nothing written:"] + exc.lines, error=True)
            return
        if self.output:
            try:
                atomic_write(self.output, out.text)
            except OSError as exc:
                self.preview.message.show([f"Cannot write {self.output}: {exc.strerror or exc}"], error=True)
                return
        self.result = Result(EXIT_OK, [self._written_line(out.comments_kept)], out.text)
        raise urwid.ExitMainLoop()

    def _written_line(self, comments_kept: bool) -> str:
        where = self.output or "standard output"
        verb = "wrote" if self.output else "printed on"
        if self.config.text is None:
            return f"{verb} {where}: the {SECTION} section"
        kept = "" if comments_kept else " (its comments could not be kept)"
        return f"{verb} {where}: {self.config.source} with its {SECTION} section replaced{kept}"
