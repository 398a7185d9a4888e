"""The manifest of a rendered set: `sha256sum -c` lines with the node's absolute paths,
written last. The node trusts a set only when the manifest exists and every file it
names matches (the yip file's steps test it with `sha256sum -c`, the launcher before
bind, firstboot and kernel-args; `installer-ext status` reports it).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from installer_ext import paths


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_digest(root: str) -> str:
    """sha256 over a directory tree: each file's relative path, mode bits and bytes, and
    each symlink's target, in sorted order."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if rel == paths.RUNTIME_MARK:
                continue
            if os.path.islink(path):
                h.update(b"L" + rel.encode() + b"\0" + os.readlink(path).encode() + b"\0")
                continue
            h.update(b"F" + rel.encode() + b"\0" + oct(os.stat(path).st_mode & 0o777).encode() + b"\0")
            h.update(file_digest(path).encode() + b"\0")
    return h.hexdigest()


def build(entries: dict[str, bytes]) -> bytes:
    """relpath -> bytes: the manifest text, sorted by path."""
    return "".join(f"{digest(data)}  {paths.node_path(rel)}\n" for rel, data in sorted(entries.items())).encode()


@dataclass(frozen=True)
class Check:
    present: bool
    complete: bool
    problems: tuple[str, ...] = ()
    names_plan: bool = False


def verify(target: paths.Target) -> Check:
    """Check the manifest of a target against its files."""
    sums = target.path(paths.MANIFEST_FILE)
    try:
        with open(sums, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return Check(False, False, (f"{paths.node_path(paths.MANIFEST_FILE)}: missing",))
    except (OSError, UnicodeDecodeError) as exc:
        return Check(True, False, (f"{paths.node_path(paths.MANIFEST_FILE)}: unreadable ({exc})",))
    problems = []
    names_plan = False
    for line in lines:
        want, sep, node = line.partition("  ")
        if not sep or len(want) != 64 or not node.startswith("/"):
            problems.append(f"{paths.node_path(paths.MANIFEST_FILE)}: bad line {line[:60]!r}")
            continue
        rel = node[1:]
        names_plan = names_plan or rel == paths.PLAN_FILE
        try:
            have = file_digest(target.path(rel))
        except OSError:
            problems.append(f"{node}: missing")
            continue
        if have != want:
            problems.append(f"{node}: not the file rendered with the manifest")
    return Check(True, not problems and bool(lines), tuple(problems), names_plan)
