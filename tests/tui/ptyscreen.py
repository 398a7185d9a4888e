"""Run the install screen in a pseudo-terminal and read it as a user would: pexpect
drives the real `installer-ext tui` (the console script this package installs, the
command the ISO runs), pyte keeps the screen it draws. Used by the whole-program
tests and by bench/tui_bench.py.

Every step waits for what the key should show (`send(..., wait=...)`, `wait_for`),
never for a quiet period: a loaded machine only makes a step slower, not wrong.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time

import pexpect
import pyte

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

KEYS = {
    "up": "\x1b[A",
    "down": "\x1b[B",
    "right": "\x1b[C",
    "left": "\x1b[D",
    "page down": "\x1b[6~",
    "page up": "\x1b[5~",
    "home": "\x1b[1~",
    "end": "\x1b[4~",
    "enter": "\r",
    "esc": "\x1b",
    "space": " ",
    "tab": "\t",
    "backspace": "\x7f",
    "ctrl c": "\x03",
}

# urwid tells a lone Esc from the start of an escape sequence by time (the raw
# display's `complete_wait`, 0.125 s): nothing may follow an Esc within that time.
ESC_GAP = 0.3


def installer_ext() -> str:
    """The `installer-ext` console script of this Python's environment."""
    here = os.path.join(os.path.dirname(sys.executable), "installer-ext")
    path = here if os.access(here, os.X_OK) else shutil.which("installer-ext")
    if path is None:
        raise RuntimeError("no installer-ext console script: pip install -e . into this venv (README)")
    return path


def command() -> list[str]:
    """argv of `installer-ext tui`."""
    return [installer_ext(), "tui"]


class ScreenTimeout(AssertionError):
    pass


def _as_at_a_terminal() -> None:
    """In the child: Ctrl-C interrupts, as at a terminal. A test run started in the
    background inherits SIGINT ignored (a shell ignores it for `cmd &`), and the
    program would then never see Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class TuiRun:
    """One run of `installer-ext tui ARGS` at `rows` x `cols`, its output fed into a
    pyte screen. `shell`: run it through `sh -c` with this redirection appended
    (e.g. "> out.yaml"), as a user would type it."""

    def __init__(
        self,
        *args: str,
        rows: int = 24,
        cols: int = 80,
        term: str = "linux",
        env: dict | None = None,
        shell: str | None = None,
    ) -> None:
        full_env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLORTERM")}
        full_env.update({"TERM": term, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"})
        if env:
            full_env.update(env)
        self.rows, self.cols = rows or 24, cols or 80  # 0x0 (a serial line): the program draws 80x24
        self.screen = pyte.Screen(self.cols, self.rows)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()  # everything the program wrote, for the checks on stray output
        argv = [*command(), *args]
        if shell is not None:
            import shlex

            program, argv = "/bin/sh", ["-c", shlex.join(argv) + " " + shell]
        else:
            program, argv = argv[0], argv[1:]
        self.child = pexpect.spawn(
            program, argv, dimensions=(rows, cols), env=full_env, cwd=REPO, timeout=10, preexec_fn=_as_at_a_terminal
        )
        # pexpect sleeps 50 ms before each send by default: keys go out at once here.
        self.child.delaybeforesend = None
        self.started = time.monotonic()
        self.last_read = self.started

    # -- reading -----------------------------------------------------------------------
    def pump(self, timeout: float = 0.05) -> bool:
        """Read what is there (waiting up to `timeout` for the first byte); False at EOF."""
        try:
            data = self.child.read_nonblocking(65536, timeout=timeout)
        except pexpect.TIMEOUT:
            return True
        except pexpect.EOF:
            return False
        self.last_read = time.monotonic()  # before pyte's work: what the program wrote, when
        chunks = [data]
        while True:
            try:
                more = self.child.read_nonblocking(65536, timeout=0)
            except (pexpect.TIMEOUT, pexpect.EOF):
                break
            self.last_read = time.monotonic()
            chunks.append(more)
        for chunk in chunks:
            self.raw += chunk
            self.stream.feed(chunk)
        return True

    @property
    def lines(self) -> list[str]:
        return list(self.screen.display)

    @property
    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    @property
    def flat(self) -> str:
        """The screen as one line of words, so a wrapped sentence is found whole."""
        return " ".join(" ".join(line.split()) for line in self.screen.display)

    def dump(self) -> str:
        return "\n".join(f"|{line}|" for line in self.screen.display)

    def wait_for(self, predicate, timeout: float = 15.0, what: str = "") -> float:
        """Pump until `predicate(self)` (or the text `predicate`) holds; the seconds it took."""
        if isinstance(predicate, str):
            needle = predicate
            what = what or repr(needle)

            def predicate(run: TuiRun) -> bool:
                return needle in run.text or needle in run.flat

        start = time.monotonic()
        while True:
            if predicate(self):
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise ScreenTimeout(f"timed out waiting for {what or predicate}; the screen:\n{self.dump()}")
            if not self.pump(0.05) and not predicate(self):
                raise ScreenTimeout(f"the program ended while waiting for {what or predicate}; the screen:\n{self.dump()}")

    # -- keys --------------------------------------------------------------------------
    def send(self, *keys: str, wait=None) -> None:
        """Send keys by name (see KEYS) or as text, then wait for `wait` (a text or a
        predicate) if given. An Esc is only ever the last key of a call: what follows
        it must wait until its effect is seen (see ESC_GAP)."""
        for i, key in enumerate(keys):
            if key == "esc" and i != len(keys) - 1:
                raise ValueError("send Esc last and wait for its effect before the next key")
            self.child.send(KEYS.get(key, key))
        if keys and keys[-1] == "esc":
            time.sleep(ESC_GAP)
        if wait is not None:
            self.wait_for(wait)

    # -- the focus ----------------------------------------------------------------------
    def _rule(self) -> int | None:
        """Row index of the rule under the device list."""
        return next((i for i, line in enumerate(self.lines) if line.startswith("-" * 20)), None)

    def focus_line(self) -> str:
        """The first details line under the list: what has the focus (for a function:
        its address and ids)."""
        i = self._rule()
        return self.lines[i + 1] if i is not None and i + 1 < len(self.lines) else ""

    def details(self) -> str:
        """Both details lines, as one line of words."""
        i = self._rule()
        if i is None:
            return ""
        return " ".join(" ".join(line.split()) for line in self.lines[i + 1 : i + 4])

    def focused(self, short: str) -> bool:
        return self.focus_line().startswith(" " + short + " ")

    def send_focus(self, key: str) -> str:
        """Send a key that moves the focus; wait until the details lines change (a
        function's row and its "VFs at boot" line share the first one)."""
        before = self.details()
        self.send(key, wait=lambda run: run.details() != before)
        return self.focus_line()

    def _row_of(self, short: str) -> int | None:
        """Screen row of the list line of `short` (a function or VF row)."""
        end = self._rule() or len(self.lines)
        return next((y for y, line in enumerate(self.lines[:end]) if f" {short} " in line[:16]), None)

    def move_to(self, address: str) -> None:
        """Put the focus on the function `address` as a user would: with the arrow keys
        when its row is on the screen, else through the filter first (/ address
        Enter, arrows among the matches, then Esc clears the filter and the focus
        stays)."""
        short = address[5:] if address.startswith("0000:") else address
        if self._row_of(short) is None:
            self.send("/", wait="Filter:")
            self.send(*short, wait=lambda run: f"Filter: {short}" in run.text)
            self.send("enter", wait=lambda run: not run.focus_line().startswith(" Filter:"))
            self._arrows_to(address, short)
            self.send("esc", wait="Devices by IOMMU group")
            if not self.focused(short):
                raise ScreenTimeout(f"clearing the filter moved the focus off {address}; the screen:\n{self.dump()}")
            return
        self._arrows_to(address, short)

    def _arrows_to(self, address: str, short: str) -> None:
        for _ in range(200):
            if self.focused(short):
                return
            target = self._row_of(short)
            here = self.focus_line().split()
            here_row = self._row_of(here[0]) if here else None
            if target is None or here_row is None:
                raise ScreenTimeout(f"cannot see {address} or the focused row; the screen:\n{self.dump()}")
            if "VFs made at every boot" in self.details():
                here_row += 1  # the "VFs at boot" line under its physical function
            self.send_focus("down" if target > here_row else "up")
        raise ScreenTimeout(f"cannot move the focus to {address}; the screen:\n{self.dump()}")

    def to_vf_field(self, pf: str) -> None:
        """Focus the "VFs at boot" field under the physical function `pf`."""
        self.move_to(pf)
        self.send("right", wait="VFs made at every boot")

    # -- ending ------------------------------------------------------------------------
    def finish(self, timeout: float = 15.0) -> int:
        """Wait for the program to end; its exit status."""
        end = time.monotonic() + timeout
        while self.child.isalive() and time.monotonic() < end:
            self.pump(0.05)
        if self.child.isalive():
            self.child.terminate(force=True)
            raise ScreenTimeout(f"the program did not end within {timeout:g} s; the screen:\n{self.dump()}")
        drain = time.monotonic() + 5
        while self.pump(0.05) and time.monotonic() < drain:
            pass  # what it wrote before it ended, up to the end of the pty
        self.child.close()
        return self.child.exitstatus if self.child.exitstatus is not None else 128 + (self.child.signalstatus or 0)

    @property
    def after(self) -> str:
        """What the program wrote once urwid gave the terminal back (cursor shown
        again): the exit line and, without --output, the YAML."""
        text = self.raw.decode("utf-8", "replace")
        cut = text.rfind("\x1b[?25h")
        return text[cut + len("\x1b[?25h") :] if cut >= 0 else text

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)
        self.child.close()
