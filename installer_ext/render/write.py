"""Write the rendered files under a target root, each atomically, and merge the kernel
arguments into the target's grubenv. A second run with the same plan writes nothing."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass

from installer_ext import paths
from installer_ext.errors import BadInput
from installer_ext.fsutil import atomic_write
from installer_ext.plan.model import Plan
from installer_ext.render import grubenv
from installer_ext.render.artifacts import artifacts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Written:
    relpath: str
    changed: bool


def _previous_kernel_args(target: str) -> list[str]:
    """Kernel args of the plan rendered here before, so they can be replaced."""
    try:
        with open(paths.under(target, paths.PLAN_FILE), encoding="utf-8") as f:
            old = json.load(f)
        args = old.get("kernel_args", [])
        return [a for a in args if isinstance(a, str)]
    except (OSError, ValueError, AttributeError):
        return []


def write_target(plan: Plan, target: str) -> list[Written]:
    if not os.path.isdir(target):
        raise BadInput(f"{target}: target directory does not exist")
    out: list[Written] = []
    env_path = paths.under(target, paths.GRUBENV_FILE)
    try:
        with open(env_path, "rb") as f:
            env_data: bytes | None = f.read()
    except FileNotFoundError:
        env_data = None
    except OSError as exc:
        raise BadInput(f"{env_path}: cannot read: {exc.strerror}") from None
    merged = grubenv.merge_kernel_args(env_data, plan.kernel_args, _previous_kernel_args(target), env_path)
    # Everything is rendered before the first write, so a template error writes nothing.
    # The plan file goes last: the grubenv merge of a rerun reads it.
    files = [(paths.GRUBENV_FILE, merged, 0o644)] + [(a.relpath, a.data, a.mode) for a in artifacts(plan)]
    for relpath, data, mode in files:
        out.append(Written(relpath, atomic_write(paths.under(target, relpath), data, mode)))
    for w in out:
        log.info("%s %s", "wrote" if w.changed else "unchanged", w.relpath)
    return out
