"""The state dir: one record per finished step, the summary, the end markers, a lock.

Layout under STATE_DIR (default ROOT/usr/local/lib/installer-ext/firstboot, persistent):
  steps/<step>.json  {"step", "status": done|skipped|failed, "inputs", "result", "at"}
  status.json        {"state": running|waiting|done|failed, "steps": [{"name", "status",
                     "reason", "at"}], "message", "updated", "attempt", "max_attempts",
                     "node"}: rewritten whenever a step's state changes; `installer-ext
                     status` shows it
  done               the summary (JSON); its presence ends first boot: the rendered unit
                     has ConditionPathExists=!STATE_DIR/done
  gave-up            written after the last allowed attempt failed (the reason): the unit
                     has ConditionPathExists=!STATE_DIR/gave-up, so a failing first boot
                     ends instead of restarting for ever; `firstboot --retry` removes it
  lock               flock: one run at a time

Every file is written with `atomic_write`, so a kill -9 or a power cut leaves the old
record or the new one. A step is skipped on a rerun only when its record says done
(or skipped) for the same inputs; anything else runs again, and every step is
idempotent against the API, so the rerun converges.

State that cannot be read or written is an error, never "done" (#12 item 9): a state
dir that is not a directory (or lies under a file), or a state file that cannot be
written, is bad input (exit 2, which the unit does not restart); a done marker or step
record that exists but cannot be read is an error (exit 1) naming the file (a done
marker that exists also stops the unit through its ConditionPathExists). Only a step
record whose JSON is damaged is taken as "not done" (the step runs again: that is safe,
and it is not "done"), and a damaged status.json restarts the count of attempts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from typing import Any

from installer_ext.clock import utc_now_iso
from installer_ext.errors import BadInput, ExtError
from installer_ext.fsutil import atomic_write, exclusive_lock

log = logging.getLogger(__name__)

DONE = "done"
SKIPPED = "skipped"
FAILED = "failed"
# Only in status.json: a step under way, or one that waits for the cluster.
RUNNING = "running"
WAITING = "waiting"

DONE_MARKER = "done"  # file name; render's firstboot unit tests for it
GAVE_UP_MARKER = "gave-up"  # file name; the unit tests for it too
STATUS_FILE = "status.json"
MAX_STATE_BYTES = 4 << 20


now = utc_now_iso


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


class StateDir:
    def __init__(self, path: str) -> None:
        self.path = path
        self.steps_dir = os.path.join(path, "steps")
        self.done_path = os.path.join(path, DONE_MARKER)
        self.gave_up_path = os.path.join(path, GAVE_UP_MARKER)
        self.status_path = os.path.join(path, STATUS_FILE)

    # -- the directory -----------------------------------------------------------------------
    def check(self) -> None:
        """The state dir is a directory, or can become one. BadInput otherwise."""
        p = self.path
        if os.path.lexists(p) and not os.path.isdir(p):
            raise BadInput(f"{p}: not a directory (the first-boot state dir must be one)")
        if os.path.lexists(self.steps_dir) and not os.path.isdir(self.steps_dir):
            raise BadInput(f"{self.steps_dir}: not a directory (the first-boot state dir must hold one)")
        try:
            os.makedirs(self.steps_dir, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise BadInput(f"{p}: cannot use as the first-boot state dir: {_why(exc)}") from None

    # -- reading -----------------------------------------------------------------------------
    def _read_json(self, path: str, what: str) -> Any:
        """The document at `path`, None when it does not exist; ExtError when it exists
        but cannot be read or is not JSON."""
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_STATE_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ExtError(f"{path}: cannot read {what}: {_why(exc)}") from None
        if len(raw) > MAX_STATE_BYTES:
            raise ExtError(f"{path}: {what} larger than {MAX_STATE_BYTES} bytes")
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ExtError(f"{path}: not valid JSON ({what}): {exc}") from None

    def done(self) -> dict[str, Any] | None:
        """The summary of a finished first boot, None when not finished. A marker that
        is there but unreadable is an error: first boot cannot tell whether it ran."""
        try:
            doc = self._read_json(self.done_path, "the done marker")
        except ExtError as exc:
            raise ExtError(f"{exc.lines[0]}; remove it to run first boot again") from None
        if doc is None:
            return None
        if not isinstance(doc, dict):
            raise ExtError(f"{self.done_path}: not a first-boot summary (not a JSON object); "
                           f"remove it to run first boot again")
        return doc

    def gave_up(self) -> str | None:
        try:
            with open(self.gave_up_path, encoding="utf-8", errors="replace") as f:
                return f.read(4096).strip() or "gave up"
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ExtError(f"{self.gave_up_path}: cannot read: {_why(exc)}") from None

    def step(self, name: str) -> dict[str, Any] | None:
        path = os.path.join(self.steps_dir, f"{name}.json")
        try:
            doc = self._read_json(path, "a step record")
        except ExtError as exc:
            if "not valid JSON" not in exc.lines[0]:
                raise
            log.warning("%s; the step runs again", exc.lines[0])
            return None
        return doc if isinstance(doc, dict) else None

    def finished(self, name: str, inputs: Any) -> dict[str, Any] | None:
        """The record of `name` when it finished (done or skipped) with these inputs."""
        rec = self.step(name)
        if rec and rec.get("status") in (DONE, SKIPPED) and rec.get("inputs") == inputs:
            return rec
        return None

    def status(self) -> dict[str, Any] | None:
        """The last status; None when there is none or it cannot be read (a report, not
        state: the run rewrites it at once, and counts its attempts from 1 again)."""
        try:
            doc = self._read_json(self.status_path, "the status file")
        except ExtError as exc:
            log.warning("%s; the attempts are counted from 1 again", exc.lines[0])
            return None
        return doc if isinstance(doc, dict) else None

    # -- writing -----------------------------------------------------------------------------
    def _write(self, path: str, text: str, mode: int) -> None:
        """A state that cannot be written is a state dir that cannot be used: bad input
        (exit 2), which the unit does not restart (RestartPreventExitStatus=2): first
        boot could not count its attempts, so retrying could go on for ever."""
        try:
            atomic_write(path, text, mode)
        except OSError as exc:
            raise BadInput(f"{path}: cannot write: {_why(exc)}") from None

    def record(self, name: str, status: str, inputs: Any, result: dict[str, Any]) -> dict[str, Any]:
        rec = {"step": name, "status": status, "inputs": inputs, "result": result, "at": now()}
        self._write(os.path.join(self.steps_dir, f"{name}.json"), _dump(rec), 0o600)
        return rec

    def write_status(self, state: str, steps: list[dict[str, Any]], message: str, **extra: Any) -> None:
        doc = {"state": state, "steps": steps, "message": message, "updated": now(), **extra}
        self._write(self.status_path, _dump(doc), 0o644)

    def write_doc(self, filename: str, doc: dict[str, Any]) -> str:
        """Another JSON file of the state dir (the reconciler's status)."""
        path = os.path.join(self.path, filename)
        self._write(path, _dump(doc), 0o644)
        return path

    def finish(self, summary: dict[str, Any]) -> None:
        self._write(self.done_path, _dump({**summary, "finished_at": now()}), 0o644)

    def give_up(self, reason: str) -> None:
        self._write(self.gave_up_path, reason.rstrip("\n") + "\n", 0o644)

    def reset_gave_up(self) -> None:
        try:
            os.unlink(self.gave_up_path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ExtError(f"{self.gave_up_path}: cannot remove: {_why(exc)}") from None

    def lock(self) -> contextlib.AbstractContextManager[None]:
        self.check()
        return exclusive_lock(os.path.join(self.path, "lock"), f"{self.path}: another firstboot run holds the lock")
