"""What `installer-ext bind` and `unbind` say, as the journal sees it: the unit's stdout
and stderr both go to the journal, so each device gets one line in one of them, never
the same line twice (issue #15 item 13)."""

from __future__ import annotations

import collections
import re

from tests.cli import run
from tests.fakekernel import grp, plan_json, pt, write_plan
from tests.fakesys.builder import build
from tests.fakesys.machines import intel_workstation

GPU, AUDIO, PORT = "0000:01:00.0", "0000:01:00.1", "0000:00:01.0"


def _journal(out: str, err: str) -> list[str]:
    """The lines as the journal keeps them, a logger's name prefix taken off."""
    lines = [line for line in (out + err).splitlines() if line.strip()]
    return [re.sub(r"\Ainstaller_ext[\w.]*: ", "", line) for line in lines]


def test_bind_says_each_skip_once(tmp_path):
    root = build(intel_workstation(), str(tmp_path / "node"))
    # The plan expects another card at 01:00.0: the whole group is skipped, nothing written.
    write_plan(root, plan_json(
        passthrough=[pt(GPU, "10de:2204", 1, driver="nvidia"), pt(AUDIO, "10de:1aef", 1, why="same-group")],
        groups=[grp([PORT, GPU, AUDIO], [GPU, AUDIO], [PORT], 1)],
    ))
    r = run("bind", "--root", root)
    assert r.rc == 3  # refused by the every-boot re-check, nothing failed
    lines = _journal(r.out, r.err)
    repeated = [line for line, n in collections.Counter(lines).items() if n > 1]
    assert repeated == [], r.out + r.err
    # Nothing is said through logging on stderr: one copy, on stdout.
    assert r.err == ""
    assert sum(AUDIO in line for line in lines) == 1 and sum(GPU in line for line in lines) == 2  # the audio line names the GPU
    assert lines[-1].startswith("bind: 0 bound, 0 already bound, 2 skipped")


def test_rescue_skip_is_said_once(tmp_path):
    m = intel_workstation()
    m.cmdline += " installer_ext.skip=1"
    root = build(m, str(tmp_path / "node"))
    write_plan(root, plan_json(passthrough=[pt(GPU, "10de:2206", 1)], groups=[grp([PORT, GPU], [GPU], [PORT], 1)]))
    r = run("bind", "--root", root)
    assert r.rc == 0, r.err
    assert _journal(r.out, r.err) == [
        "bind: skipped for this boot (installer_ext.skip=1 on the kernel command line); nothing touched"
    ]


def test_unbind_says_each_device_once(tmp_path):
    root = build(intel_workstation(), str(tmp_path / "node"))
    write_plan(root, plan_json(passthrough=[pt(GPU, "10de:2204", 1)], groups=[grp([PORT, GPU], [GPU], [PORT], 1)]))
    r = run("unbind", "--root", root)
    lines = _journal(r.out, r.err)
    assert r.err == "" and len(lines) == 2, r.out + r.err
    assert lines[0].startswith(f"{GPU} [10de:2204]: skipped: holds 10de:2206")
