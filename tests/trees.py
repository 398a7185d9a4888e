"""What a directory tree holds, for tests that compare a target before and after."""

from __future__ import annotations

import os


def snapshot(root: str) -> dict[str, bytes]:
    """Relative path -> bytes of every file under `root`."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = f.read()
    return out
