"""The "given back" mark: `installer-ext unbind` gives the plan's devices back to the host
for good, until `installer-ext bind --again` takes them back.

The mark is a small file next to the plan, on the persistent OEM partition, that names
the plan it was made for by the SHA-256 of plan.json's bytes:

    {"version": 1, "plan_sha256": "...", "at": "2026-12-01T10:00:00Z"}

- `bind` (every boot, and the udev rule's runs) touches nothing while a mark for this
  plan is there: no VF count, no bind. Each planned device is reported `given-back`.
- A plan written after the mark (a new render, an edit) is a new request: its bind
  removes the stale mark and binds.
- A mark that cannot be read is honoured: keeping the devices with the host is the side
  to err on, and `bind --again` removes it.
- The yip stage that writes the udev rule and the modprobe.d options each boot tests
  for the file and leaves them out while it exists (so no driver_override and no
  `vfio-pci ids=` claim a given-back device before the binder runs): the condition is
  `[ ! -e /oem/installer-ext/given-back.json ]`.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass

from installer_ext import paths
from installer_ext.fsutil import atomic_write, fsync_dir

GIVEN_BACK_FILE = paths.GIVEN_BACK_FILE  # the yip stage tests it too (render/artifacts.py)
VERSION = 1
MAX_BYTES = 4096
_SHA256 = re.compile(r"\A[0-9a-f]{64}\Z")
_AT = re.compile(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z")


@dataclass(frozen=True)
class Mark:
    path: str
    plan_sha256: str | None  # None: the file is there but unreadable (`problem` says why)
    at: str | None
    problem: str | None = None

    def applies_to(self, digest: str) -> bool:
        """Whether the mark holds for the plan with this digest (an unreadable one does)."""
        return self.plan_sha256 is None or self.plan_sha256 == digest

    @property
    def when(self) -> str:
        return f"on {self.at}" if self.at else "at an unknown time"


def path_under(root: str) -> str:
    return os.path.join(root, GIVEN_BACK_FILE)


def read(root: str) -> Mark | None:
    """The mark under `root`, None when there is none."""
    path = path_under(root)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return Mark(path, None, None, f"cannot be read: {exc.strerror or exc}")
    try:
        data = json.loads(raw.decode("utf-8")) if len(raw) <= MAX_BYTES else None
    except (UnicodeDecodeError, ValueError):
        data = None
    if not (isinstance(data, dict) and data.get("version") == VERSION and isinstance(data.get("plan_sha256"), str)
            and _SHA256.match(data["plan_sha256"])):
        return Mark(path, None, None, "is not a given-back mark this program wrote")
    at = data.get("at")
    return Mark(path, data["plan_sha256"], at if isinstance(at, str) and _AT.match(at) else None)


def write(root: str, digest: str, now: float | None = None) -> str:
    """Mark the plan with `digest` as given back. Raises OSError."""
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    path = path_under(root)
    atomic_write(path, json.dumps({"version": VERSION, "plan_sha256": digest, "at": at}, indent=2) + "\n")
    return path


def clear(root: str) -> bool:
    """Remove the mark; whether there was one. Raises OSError (other than a missing file)."""
    path = path_under(root)
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    fsync_dir(os.path.dirname(path))
    return True
