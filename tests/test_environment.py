"""The tests test what ships: the development venv holds the library versions that
installer-ext.pyz carries (iso-overlay/requirements.lock), through the constraints file
the README's first command and .ci/run install with."""

from __future__ import annotations

import os
from importlib import metadata

from tests.cli import REPO

LOCK = os.path.join(REPO, "iso-overlay", "requirements.lock")
CONSTRAINTS = os.path.join(REPO, "iso-overlay", "constraints.txt")


def _pins(path: str) -> dict[str, str]:
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0]
            fields = line.split()
            if fields and fields[1:2] != ["runtime"]:  # the optional CPython tarball is no library
                name, _, version = fields[0].partition("==")
                out[name.lower().replace("_", "-")] = version
    return out


def test_constraints_follow_the_lock():
    lock = _pins(LOCK)
    assert lock, "the lock pins nothing"
    assert _pins(CONSTRAINTS) == lock


def test_the_venv_runs_the_locked_versions():
    wrong = {
        name: (metadata.version(name), version)
        for name, version in _pins(LOCK).items()
        if metadata.version(name) != version
    }
    assert not wrong, f"installed (venv, lock): {wrong}; reinstall with -c iso-overlay/constraints.txt"
