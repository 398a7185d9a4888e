"""Run the install screen in a pseudo-terminal and read it as a user would: pexpect
drives the real program, pyte keeps the screen it draws. Used by the whole-program
tests and by bench/tui_bench.py.

Until the lead wires `installer-ext tui`, the program is started through
`installer_ext.tui.command.main`; TUI_COMMAND in the environment overrides it
(e.g. `TUI_COMMAND="-m installer_ext tui"`).
"""

from __future__ import annotations

import os
import shlex
import sys
import time

import pexpect
import pyte

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENTRY = ["-c", "import sys; from installer_ext.tui.command import main; sys.exit(main(sys.argv[1:]))"]

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
}


def command() -> list[str]:
    override = os.environ.get("TUI_COMMAND")
    return shlex.split(override) if override else list(ENTRY)


class ScreenTimeout(AssertionError):
    pass


class TuiRun:
    """One run of the program at `rows` x `cols`, its output fed into a pyte screen."""

    def __init__(self, *args: str, rows: int = 24, cols: int = 80, term: str = "linux", env: dict | None = None) -> None:
        full_env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLORTERM")}
        full_env.update({"TERM": term, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONPATH": REPO})
        if env:
            full_env.update(env)
        self.rows, self.cols = rows, cols
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()  # everything the program wrote, for the checks on stray output
        self.child = pexpect.spawn(
            sys.executable,
            [*command(), *args],
            dimensions=(rows, cols),
            env=full_env,
            cwd=REPO,
            timeout=10,
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

    def wait_for(self, predicate, timeout: float = 10.0, what: str = "") -> float:
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

    def settle(self, quiet: float = 0.15, timeout: float = 5.0) -> None:
        """Pump until the program has written nothing for `quiet` seconds."""
        end = time.monotonic() + timeout
        last = len(self.raw)
        quiet_since = time.monotonic()
        while time.monotonic() < end:
            if not self.pump(0.03):
                return
            if len(self.raw) != last:
                last = len(self.raw)
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= quiet:
                return

    # -- keys --------------------------------------------------------------------------
    def send(self, *keys: str, wait: str | None = None, settle: bool = True) -> None:
        """Send keys by name (see KEYS) or as text; then wait for `wait` or for quiet.
        A lone Esc is followed by a pause: urwid tells it from an escape sequence by time."""
        for key in keys:
            self.child.send(KEYS.get(key, key))
            if key == "esc":
                time.sleep(0.3)
                self.pump(0)
        if settle:
            self.settle()
        if wait is not None:
            self.wait_for(wait)

    def focus_line(self) -> str:
        """The first details line under the list: the focused function's address and ids."""
        for i, line in enumerate(self.lines):
            if line.startswith("-" * 20) and i + 1 < len(self.lines):
                return self.lines[i + 1]
        return ""

    def move_to(self, address: str, limit: int = 80) -> None:
        """Down (then up) until the details line names `address`."""
        short = address[5:] if address.startswith("0000:") else address
        for direction in ("down", "up"):
            for _ in range(limit):
                if self.focus_line().startswith(" " + short + " "):
                    return
                before = self.text
                self.send(direction)
                if self.text == before:
                    self.settle(quiet=0.6)  # a loaded machine may take longer to redraw
                    if self.text == before:
                        break
        raise ScreenTimeout(f"cannot move the focus to {address}; the screen:\n{self.dump()}")

    def to_vf_field(self, pf: str) -> None:
        """Focus the "VFs at boot" field under the physical function `pf`."""
        self.move_to(pf)
        if "VFs made at every boot" not in self.flat:
            self.send("down", wait="VFs made at every boot")
        if not self.focus_line().startswith(" " + pf[5:] + " "):
            raise ScreenTimeout(f"no VF field under {pf}; the screen:\n{self.dump()}")

    # -- ending ------------------------------------------------------------------------
    def finish(self, timeout: float = 10.0) -> int:
        """Wait for the program to end; its exit status."""
        end = time.monotonic() + timeout
        while self.child.isalive() and time.monotonic() < end:
            self.pump(0.05)
        while self.pump(0.01):
            if not self.child.isalive():
                # drain what is left after exit
                try:
                    rest = self.child.read_nonblocking(65536, timeout=0.1)
                    self.raw += rest
                    self.stream.feed(rest)
                except (pexpect.TIMEOUT, pexpect.EOF):
                    break
        if self.child.isalive():
            self.child.terminate(force=True)
            raise ScreenTimeout(f"the program did not end; the screen:\n{self.dump()}")
        self.child.close()
        return self.child.exitstatus if self.child.exitstatus is not None else 128 + (self.child.signalstatus or 0)

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)
        self.child.close()
