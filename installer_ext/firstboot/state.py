"""The state dir: one record per finished step, a done marker, a lock.

Layout under STATE_DIR (default ROOT/usr/local/lib/installer-ext/firstboot, persistent):
  steps/<step>.json  {"step", "status": done|skipped|failed, "inputs", "result", "at"}
  done               the summary (JSON); its presence ends first boot: the rendered unit
                     has ConditionPathExists=!STATE_DIR/done
  lock               flock: one run at a time

Every file is written with `atomic_write`, so a kill -9 or a power cut leaves the old
record or the new one. A step is skipped on a rerun only when its record says done
(or skipped) for the same inputs; anything else runs again, and every step is
idempotent against the API, so the rerun converges.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from typing import Any

from installer_ext.errors import BadInput, ExtError
from installer_ext.fsutil import atomic_write

log = logging.getLogger(__name__)

DONE = "done"
DONE_MARKER = "done"  # file name; render's firstboot unit tests for it
SKIPPED = "skipped"
FAILED = "failed"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


class StateDir:
    def __init__(self, path: str) -> None:
        self.path = path
        self.steps_dir = os.path.join(path, "steps")
        self.done_path = os.path.join(path, DONE_MARKER)

    def done(self) -> dict[str, Any] | None:
        try:
            with open(self.done_path, encoding="utf-8") as f:
                doc = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            # atomic writes make this unlikely; a marker we cannot read still ends first
            # boot, as the unit's ConditionPathExists does.
            log.warning("%s: unreadable done marker (%s)", self.done_path, exc)
            return {}
        return doc if isinstance(doc, dict) else {}

    def step(self, name: str) -> dict[str, Any] | None:
        path = os.path.join(self.steps_dir, f"{name}.json")
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable step record, the step runs again (%s)", path, exc)
            return None
        return doc if isinstance(doc, dict) else None

    def finished(self, name: str, inputs: Any) -> dict[str, Any] | None:
        """The record of `name` when it finished (done or skipped) with these inputs."""
        rec = self.step(name)
        if rec and rec.get("status") in (DONE, SKIPPED) and rec.get("inputs") == inputs:
            return rec
        return None

    def record(self, name: str, status: str, inputs: Any, result: dict[str, Any]) -> dict[str, Any]:
        rec = {"step": name, "status": status, "inputs": inputs, "result": result, "at": _now()}
        atomic_write(os.path.join(self.steps_dir, f"{name}.json"), _dump(rec), 0o600)
        return rec

    def finish(self, summary: dict[str, Any]) -> None:
        atomic_write(self.done_path, _dump({**summary, "finished_at": _now()}), 0o644)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        try:
            os.makedirs(self.steps_dir, mode=0o700, exist_ok=True)
            fd = os.open(os.path.join(self.path, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise BadInput(f"{self.path}: cannot use as state dir: {exc.strerror or exc}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise ExtError(f"{self.path}: another firstboot run holds the lock") from None
                raise
            yield
        finally:
            os.close(fd)
