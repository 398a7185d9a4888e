"""The screen in tmux, a terminal emulator of its own (the pty tests read it with pyte):
`installer-ext tui` at the sizes a person meets, TERM=linux, read back with
`tmux capture-pane`. Every step waits for the text it should show."""

from __future__ import annotations

import shlex
import subprocess
import time
import uuid

import pytest

from tests.conftest import require_tool
from tests.tui.ptyscreen import REPO, command


class Tmux:
    def __init__(self, tmux: str, cols: int, rows: int, argv: list[str], env: dict[str, str]) -> None:
        self.tmux = tmux
        self.name = f"installer-ext-{uuid.uuid4().hex[:8]}"
        shell = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + shlex.join(argv)
        # The pane stays after the program ends, so its last line can be read.
        self._run("new-session", "-d", "-s", self.name, "-x", str(cols), "-y", str(rows), "-c", REPO, shell)
        self._run("set-option", "-t", self.name, "remain-on-exit", "on")

    def _run(self, *args: str) -> str:
        p = subprocess.run([self.tmux, *args], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        return p.stdout

    def lines(self, history: bool = False) -> list[str]:
        """The visible lines; with `history`, those scrolled off above them too (tmux
        scrolls the last output up when it marks the pane dead)."""
        more = ["-S", "-100"] if history else []
        return self._run("capture-pane", "-p", "-t", self.name, *more).splitlines()

    def wait_for(self, text: str, timeout: float = 20, history: bool = False) -> list[str]:
        end = time.monotonic() + timeout
        while True:
            lines = self.lines(history)
            if any(text in line for line in lines):
                return lines
            if time.monotonic() > end:
                raise AssertionError(f"no {text!r} in tmux:\n" + "\n".join(lines))
            time.sleep(0.1)

    def keys(self, *keys: str) -> None:
        self._run("send-keys", "-t", self.name, *keys)

    def close(self) -> None:
        subprocess.run([self.tmux, "kill-session", "-t", self.name], capture_output=True, timeout=30)


@pytest.fixture
def tmux_tui(machine_root):
    tmux = require_tool("tmux")
    sessions: list[Tmux] = []

    def start(cols: int, rows: int, *args: str) -> Tmux:
        argv = [*command(), "--root", machine_root("intel-workstation"), *args]
        t = Tmux(tmux, cols, rows, argv, {"TERM": "linux", "LANG": "C.UTF-8"})
        sessions.append(t)
        return t

    yield start
    for t in sessions:
        t.close()


@pytest.mark.parametrize("cols,rows", [(80, 24), (60, 15), (200, 60)])
def test_every_switch_the_list_and_the_keys_are_on_screen(tmux_tui, tmp_path, cols, rows):
    t = tmux_tui(cols, rows, "--output", str(tmp_path / "o.yaml"))
    lines = t.wait_for("Install GPU drivers / device plugin")
    assert len(lines) <= rows and all(len(line) <= cols for line in lines)
    assert any("[ ] Enable PCI passthrough" in line for line in lines)
    assert any("-- IOMMU group 1, 3 functions" in line for line in lines)
    assert "Space" in lines[-1] and "Enter" in lines[-1] and "Esc" in lines[-1]
    t.keys("Tab")
    lines = t.wait_for(" 01:00.0 10de:2206 group 1 ")
    assert "Space select" in lines[-1]
    t.keys("Escape")
    t.wait_for("Esc again leaves")
    t.keys("Escape")
    t.wait_for("installer-ext: left the screen: nothing written", history=True)


def test_below_the_smallest_size_one_line_says_so(tmux_tui, tmp_path):
    t = tmux_tui(50, 12, "--output", str(tmp_path / "o.yaml"))
    lines = t.wait_for("Window too small (50x12): needs at least 60x15")
    assert [line for line in lines if line.strip()] == ["Window too small (50x12): needs at least 60x15"]
