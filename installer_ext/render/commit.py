"""Stage and commit a set of files so that a crash leaves the old set or the new one.

`render/write.py` decides what the set is and checks the target; this module only moves
bytes, in two phases:

- **stage**: every changed file is written next to its real name
  (`.NAME.installer-ext-new`, fsynced), the runtime as a directory beside the old one.
  Nothing under a real name changes; a crash here leaves the old set, and the next run
  removes the staged files (`clean_stale`).
- **commit**: the journal (the staged names in rename order) is written and fsynced, then
  each staged file is renamed over its real name, the manifest last, then the journal is
  removed. A crash in this window is finished by the next run (`recover`); until then the
  node sees a manifest that does not match and acts on nothing.

Fault injection: `fsutil.failpoint` after every step, for the crash tests
(tests/test_write_set.py).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from installer_ext import paths
from installer_ext.errors import ExtError
from installer_ext.fsutil import failpoint, fsync_dir, fsync_file

log = logging.getLogger(__name__)

STAGE_SUFFIX = ".installer-ext-new"
OLD_SUFFIX = ".installer-ext-old"
JOURNAL_FILE = "oem/installer-ext/.installer-ext-commit"
RUNTIME = "runtime"  # the journal's name for the runtime directory swap


def _stage_name(path: str) -> str:
    d, b = os.path.split(path)
    return os.path.join(d, f".{b}{STAGE_SUFFIX}")


def clean_stale(target: paths.Target, dirs: list[str]) -> list[str]:
    """Remove staged files and temp files a killed run left (names no reader uses)."""
    removed = []
    for d in dirs:
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for n in names:
            p = os.path.join(d, n)
            if n.endswith(STAGE_SUFFIX) or n.endswith(OLD_SUFFIX) or (n.startswith(".tmp-") and os.path.isfile(p)):
                if os.path.isdir(p) and not os.path.islink(p):
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    try:
                        os.unlink(p)
                    except OSError:
                        continue
                removed.append(p)
    return removed


def _swap_runtime(final: str) -> None:
    new, old = final + STAGE_SUFFIX, final + OLD_SUFFIX
    if not os.path.isdir(new):
        return
    if os.path.isdir(final):
        if os.path.isdir(old):
            shutil.rmtree(old)
        os.rename(final, old)
    os.rename(new, final)
    fsync_dir(os.path.dirname(final))
    shutil.rmtree(old, ignore_errors=True)


def _journal_name(rel: object) -> bool:
    """A name the journal may hold: RUNTIME, or a normalized relative path with no `..`
    (so that a rename it leads stays inside the target)."""
    if rel == RUNTIME:
        return True
    return (isinstance(rel, str) and rel != "" and not os.path.isabs(rel) and "\0" not in rel
            and os.path.normpath(rel) == rel and ".." not in rel.split("/"))


def recover(target: paths.Target) -> bool:
    """Finish a commit that a killed run began (its journal lists staged files whose
    renames may not all have happened). Returns True when there was one.

    The journal is a file on the target: a name in it that is not a plain relative path
    is ignored, so that it cannot lead a rename out of the target."""
    journal = target.path(JOURNAL_FILE)
    try:
        with open(journal, encoding="utf-8") as f:
            entries = json.load(f)
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        entries = None
    if not isinstance(entries, list):
        # Written with fsync before the first rename: unreadable means it never was
        # complete, so no rename happened.
        os.unlink(journal)
        return False
    for rel in entries:
        if not _journal_name(rel):
            log.warning("%s: ignored %r in the commit journal: not a relative path inside the target", journal, rel)
            continue
        if rel == RUNTIME:
            _swap_runtime(target.path(paths.RUNTIME_DIR))
            continue
        dst = target.path(rel)
        tmp = _stage_name(dst)
        if os.path.exists(tmp):
            os.replace(tmp, dst)
            fsync_dir(os.path.dirname(dst))
    os.unlink(journal)
    fsync_dir(os.path.dirname(journal))
    log.warning("finished the commit of an interrupted render in %s", target.describe())
    return True


def stage(target: paths.Target, changed: list[tuple[str, bytes, int]],
          runtime: tuple[str, str, bytes] | None) -> None:
    """Write every changed file under its staged name; `runtime` is (source directory,
    final directory, mark) when the runtime changes. On an error, remove what was staged
    and say which file could not be written."""
    staged: list[str] = []
    try:
        for rel, data, mode in changed:
            tmp = _stage_name(target.path(rel))
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fchmod(f.fileno(), mode)
                os.fsync(f.fileno())
            staged.append(tmp)
            failpoint(f"stage:{rel}")
        if runtime is not None:
            source, final, mark = runtime
            new = final + STAGE_SUFFIX
            shutil.copytree(source, new, symlinks=True)
            with open(os.path.join(new, paths.RUNTIME_MARK), "wb") as f:
                f.write(mark)
                os.fchmod(f.fileno(), 0o644)
            for dirpath, _, names in os.walk(new):
                for n in names:
                    p = os.path.join(dirpath, n)
                    if not os.path.islink(p):
                        fsync_file(p)
            staged.append(new)
            failpoint("stage:runtime")
    except OSError as exc:
        for p in staged:
            if os.path.isdir(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)
        where = exc.filename or target.describe()
        raise ExtError(f"{where}: cannot write: {exc.strerror or exc}; nothing was changed") from None


def commit(target: paths.Target, order: list[str]) -> None:
    """Rename the staged files of `order` (relpaths, or RUNTIME) over their real names,
    behind a journal that `recover` finishes after a crash."""
    if not order:
        return
    journal = target.path(JOURNAL_FILE)
    with open(journal, "w", encoding="utf-8") as f:
        json.dump(order, f)
        f.flush()
        os.fsync(f.fileno())
    fsync_dir(os.path.dirname(journal))
    failpoint("journal")
    try:
        for rel in order:
            if rel == RUNTIME:
                _swap_runtime(target.path(paths.RUNTIME_DIR))
            else:
                dst = target.path(rel)
                os.replace(_stage_name(dst), dst)
                fsync_dir(os.path.dirname(dst))
            failpoint(f"commit:{rel}")
        os.unlink(journal)
        fsync_dir(os.path.dirname(journal))
    except OSError as exc:
        raise ExtError(
            f"{exc.filename or target.describe()}: {exc.strerror or exc} while putting the new files in place; "
            "the node does not use the set until a rerun finishes it"
        ) from None
