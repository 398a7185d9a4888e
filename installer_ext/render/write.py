"""Write a rendered set under a target so that a crash leaves the old set or the new one.

1. Check what can be checked before the first write: the target's directories exist and
   are writable, and each filesystem has room for everything that changes.
2. Finish a commit a killed earlier run left half done (its journal), and remove stale
   staged and temp files.
3. Stage every changed file next to its real name (`.NAME.installer-ext-new`, fsynced),
   the runtime as a directory beside the old one. A crash here leaves the old set.
4. Write the commit journal (the list of staged files), then rename each staged file
   over its real name; the manifest (SHA256SUMS, naming every file and its digest) is
   renamed last, then the journal is removed. A crash in this window (renames only) is
   finished by the next run from the journal; until then the node sees a manifest that
   does not match and acts on nothing (the yip steps and the launcher check it).

A second run with the same inputs changes nothing (unchanged files are not staged).
This module decides the set and checks the target (steps 1-2); `render/commit.py` does
the staging, the journal and the renames (steps 3-4), with `fsutil.failpoint` after
every step for the crash tests.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field

from installer_ext import paths
from installer_ext.errors import BadInput, ExtError
from installer_ext.fsutil import fsync_dir
from installer_ext.plan.model import Plan
from installer_ext.render import grubenv, manifest
from installer_ext.render.artifacts import Artifact, artifacts
from installer_ext.render.commit import JOURNAL_FILE, RUNTIME, clean_stale, commit, recover, stage
from installer_ext.render.record import InstallRecord

log = logging.getLogger(__name__)

MARGIN = 64 << 10  # bytes of slack per filesystem


@dataclass(frozen=True)
class Written:
    relpath: str
    changed: bool


@dataclass(frozen=True)
class RenderSet:
    """What one render writes: the plan's files (none for an install that rendered
    nothing), the install record, the application archive and the optional runtime."""

    plan: Plan | None
    record: InstallRecord
    app: bytes | None = None
    runtime: str | None = None  # a directory holding bin/python3
    extra: tuple[Artifact, ...] = field(default=())


def _same(path: str, data: bytes, mode: int) -> bool:
    try:
        st = os.stat(path)
        if (st.st_mode & 0o7777) != mode or st.st_size != len(data):
            return False
        with open(path, "rb") as f:
            return f.read() == data
    except OSError:
        return False


def _roots(target: paths.Target, relpaths: list[str]) -> list[str]:
    """The directories the set's files go to (each created if missing)."""
    return sorted({os.path.dirname(target.path(r)) for r in relpaths})


def _check_target(target: paths.Target, relpaths: list[str]) -> None:
    for base in filter(None, (target.root, target.oem, target.persistent)):
        if not os.path.isdir(base):
            raise BadInput(f"{base}: target directory does not exist")
    for d in _roots(target, relpaths):
        try:
            os.makedirs(d, exist_ok=True)
        except OSError as exc:
            raise ExtError(f"{d}: cannot create the directory: {exc.strerror}; nothing was changed") from None
        if not os.access(d, os.W_OK):
            reason = "read-only filesystem" if _read_only(d) else "not writable"
            raise ExtError(f"{d}: {reason}; nothing was changed")


def _read_only(d: str) -> bool:
    try:
        return bool(os.statvfs(d).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _tree_size(root: str) -> int:
    total = 0
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            if not os.path.islink(p):
                total += os.stat(p).st_size + 4096
    return total


def _check_room(needs: dict[str, int]) -> None:
    """`needs`: directory -> bytes to stage there. One line per short filesystem."""
    by_dev: dict[int, tuple[str, int]] = {}
    for d, n in needs.items():
        dev = os.stat(d).st_dev
        first, total = by_dev.get(dev, (d, 0))
        by_dev[dev] = (first, total + n)
    for d, total in by_dev.values():
        st = os.statvfs(d)
        free = st.f_bavail * st.f_frsize
        if total + MARGIN > free:
            raise ExtError(
                f"{d}: not enough room: the rendered files need {(total + MARGIN + 1023) // 1024} KiB, "
                f"{free // 1024} KiB free; nothing was changed"
            )


def _files(s: RenderSet, target: paths.Target) -> list[tuple[str, bytes, int]]:
    """The set in commit order: persistent files, OEM files, the grubenv, the plan."""
    out: list[tuple[str, bytes, int]] = []
    arts = artifacts(s.plan, s.record, s.app) + list(s.extra)
    persistent = [a for a in arts if a.relpath.startswith(paths.PERSISTENT_PREFIX)]
    plan_last = [a for a in arts if a.relpath == paths.PLAN_FILE]
    rest = [a for a in arts if a not in persistent and a not in plan_last]
    out += [(a.relpath, a.data, a.mode) for a in persistent + rest]
    if s.plan is not None:
        env_path = target.path(paths.GRUBENV_FILE)
        # The grubenv records which arguments are ours: no previous plan is needed.
        merged = grubenv.merge_kernel_args(grubenv.read(env_path), s.plan.kernel_args, env_path).data
        out.append((paths.GRUBENV_FILE, merged, 0o644))
    out += [(a.relpath, a.data, a.mode) for a in plan_last]
    return out


def _runtime_mark(runtime: str) -> bytes:
    if not os.path.isfile(os.path.join(runtime, "bin", "python3")):
        raise BadInput(f"--runtime {runtime}: no bin/python3 in it, not a Python runtime")
    return (manifest.tree_digest(runtime) + "\n").encode()


def _keep_time(s: RenderSet, target: paths.Target) -> RenderSet:
    """A rerun that records the same outcome keeps the earlier record's time, so it
    writes nothing."""
    try:
        with open(target.path(paths.INSTALL_STATUS_FILE), encoding="utf-8") as f:
            old = InstallRecord.from_json(json.load(f))
    except (OSError, ValueError):
        return s
    if old is not None and dataclasses.replace(old, at=s.record.at) == s.record:
        return dataclasses.replace(s, record=old)
    return s


def _changes(s: RenderSet, target: paths.Target, files: list[tuple[str, bytes, int]],
             mark: bytes | None) -> tuple[list[tuple[str, bytes, int]], bool]:
    """The files that differ from what the target has, whether the runtime does, and a
    check that each filesystem has room to stage them."""
    runtime_dir = target.path(paths.RUNTIME_DIR)
    changed = [(rel, data, mode) for rel, data, mode in files if not _same(target.path(rel), data, mode)]
    runtime_changed = mark is not None and not _same(os.path.join(runtime_dir, paths.RUNTIME_MARK), mark, 0o644)
    needs: dict[str, int] = {}
    for rel, data, _ in changed:
        d = os.path.dirname(target.path(rel))
        needs[d] = needs.get(d, 0) + len(data) + 4096
    if runtime_changed and s.runtime:
        d = os.path.dirname(runtime_dir)
        needs[d] = needs.get(d, 0) + _tree_size(s.runtime)
    _check_room(needs)
    return changed, runtime_changed


def write_set(s: RenderSet, target: paths.Target) -> list[Written]:
    """Write the set under `target` (see the module's docstring for the steps)."""
    base = [a.relpath for a in artifacts(s.plan, s.record, s.app)] + [paths.GRUBENV_FILE, paths.MANIFEST_FILE, JOURNAL_FILE]
    _check_target(target, base)
    s = _keep_time(s, target)
    files = _files(s, target)
    mark = _runtime_mark(s.runtime) if s.runtime else None
    runtime_dir = target.path(paths.RUNTIME_DIR)
    mark_rel = f"{paths.RUNTIME_DIR}/{paths.RUNTIME_MARK}"
    entries = {rel: data for rel, data, _ in files if rel != paths.GRUBENV_FILE}
    if mark is not None:
        entries[mark_rel] = mark
    files.append((paths.MANIFEST_FILE, manifest.build(entries), 0o644))
    relpaths = [rel for rel, _, _ in files] + [JOURNAL_FILE] + ([mark_rel] if mark else [])
    _check_target(target, relpaths)
    dirs = _roots(target, relpaths)
    recover(target)
    for p in clean_stale(target, dirs):
        log.warning("removed %s, left by an interrupted render", p)
    if s.runtime:
        clean_stale(target, [os.path.dirname(runtime_dir)])

    changed, runtime_changed = _changes(s, target, files, mark)
    stage(target, changed, (s.runtime, runtime_dir, mark) if runtime_changed and s.runtime and mark else None)
    for d in dirs:
        fsync_dir(d)
    # The runtime first (the launcher the new set names must find it), the manifest last.
    order = ([RUNTIME] if runtime_changed else []) \
        + [rel for rel, _, _ in changed if rel != paths.MANIFEST_FILE] \
        + [rel for rel, _, _ in changed if rel == paths.MANIFEST_FILE]
    commit(target, order)
    if s.plan is None:
        # No plan in the new set: an older one must not be taken for it.
        try:
            os.unlink(target.path(paths.PLAN_FILE))
        except FileNotFoundError:
            pass
    out = [Written(rel, (rel, data, mode) in changed) for rel, data, mode in files]
    if mark is not None:
        out.insert(0, Written(paths.RUNTIME_DIR, runtime_changed))
    for w in out:
        log.info("%s %s", "wrote" if w.changed else "unchanged", w.relpath)
    return out


def write_target(plan: Plan, target: str, app: bytes | None = None, runtime: str | None = None) -> list[Written]:
    """`render`: the plan's set under a whole root."""
    from installer_ext.render.record import RENDERED

    record = InstallRecord(RENDERED, source="render", warnings=tuple(plan.warnings), at=None)
    return write_set(RenderSet(plan, record, app, runtime), paths.Target(root=target))
