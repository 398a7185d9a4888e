"""The command line as a person meets it: one line per mistake, the documented exit
codes, warnings that stop nothing."""

from __future__ import annotations

import pytest

from tests.cli import run


@pytest.mark.parametrize("command", ["detect", "plan", "render"])
def test_an_empty_root_is_one_line_exit_2(tmp_path, command):
    config = tmp_path / "c.yaml"
    config.write_text("pciPassthrough: {enabled: false}\n", encoding="utf-8")
    empty = tmp_path / "empty"
    empty.mkdir()
    extra = {
        "detect": [],
        "plan": ["--config", str(config)],
        "render": ["--config", str(config), "--target", str(tmp_path / "t")],
    }
    r = run(command, "--root", str(empty), *extra[command])
    assert (r.rc, r.out) == (2, "")
    assert r.err == (
        f"installer-ext: --root {empty}: no sys/bus/pci/devices under it: not the root of a machine (sys/ and proc/)\n"
    )
    assert not (tmp_path / "t").exists()
