"""The every-boot keeper of the node's kernel arguments (`installer-ext kernel-args`,
whose face is installer_ext/commands/kernel_args.py).

Run by the yip `boot` stage of /oem/91_installer_ext.yaml on every boot. It reads the
plan (strictly, like bind), applies the same argument policy as the planner (a plan
edited by hand to carry `intel_iommu=off` is refused, exit 3, nothing written), puts
into /oem/grubenv the arguments the node's line lacks (render/grubenv.py: in
`extra_cmdline`, its own tokens recorded so that nothing else is ever taken out), and
says what this boot's kernel line has, in /run/installer-ext/kernel-args.json (a
contract; `installer-ext status` shows it):

  {"wanted": [...], "harvester_sets": [...], "ours": [...], "on_cmdline": [...],
   "missing": [...], "state": "ok"|"reboot-pending"|"unsupported"|"unknown",
   "reason": str}

wanted: the plan's kernel_args. harvester_sets: those Harvester's own line gives
(bootargs.cfg, third_party_kernel_args). ours: the tokens installer-ext holds in the
grubenv now. on_cmdline / missing: wanted split by whether they take effect on this
boot's /proc/cmdline. state: ok when nothing is missing; reboot-pending when the
grubenv was changed during this boot (by this run or an earlier run of this boot, as
the previous status under /run says); unsupported when GRUB's configuration does not
read extra_cmdline; unknown otherwise (reason says what is known).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from installer_ext import paths
from installer_ext.errors import ExtError, Refused
from installer_ext.fsutil import atomic_write
from installer_ext.grubline import EXTRA_VAR, Bootargs, appends_extra_cmdline, parse_bootargs
from installer_ext.kernel_cmdline import missing, split_cmdline
from installer_ext.plan.kernel_args import plan_refusals
from installer_ext.plan.planfile import load_plan
from installer_ext.render import grubenv

log = logging.getLogger(__name__)

# Under the node's root.
STATUS_FILE = paths.KERNEL_ARGS_STATUS_FILE
BOOTARGS_FILE = "etc/cos/bootargs.cfg"  # of the running image (harvester-installer package/harvester-os/files)
# COS_STATE is mounted (read-only) here on an elemental node (harvester/docs,
# docs/troubleshooting/os.md: /run/initramfs/cos-state/grub2/grub.cfg).
STATE_GRUB_CFG = "run/initramfs/cos-state/grub2/grub.cfg"
# bootargs.cfg gives the recovery image no IOMMU arguments at all.
RECOVERY_ARG = "cos-img/filename=/cOS/recovery.img"
MAX_TEXT = 1 << 20

OK = "ok"
REBOOT_PENDING = "reboot-pending"
UNSUPPORTED = "unsupported"
UNKNOWN = "unknown"


@dataclass
class Status:
    wanted: list[str]
    harvester_sets: list[str] = field(default_factory=list)
    ours: list[str] = field(default_factory=list)
    on_cmdline: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    state: str = UNKNOWN
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "wanted": list(self.wanted),
            "harvester_sets": list(self.harvester_sets),
            "ours": list(self.ours),
            "on_cmdline": list(self.on_cmdline),
            "missing": list(self.missing),
            "state": self.state,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Kept:
    status: Status  # as written to STATUS_FILE
    changed: bool  # the grubenv was written by this run


def _read_text(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read(MAX_TEXT).decode("utf-8", "surrogateescape")
    except OSError:
        return None


def _previous(root: str) -> dict[str, Any]:
    text = _read_text(os.path.join(root, STATUS_FILE))
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _write_status(root: str, status: Status) -> None:
    path = os.path.join(root, STATUS_FILE)
    try:
        atomic_write(path, json.dumps(status.to_json(), indent=2) + "\n", 0o644)
    except OSError as exc:
        raise ExtError(f"{path}: cannot write: {exc.strerror or exc}") from None


def _mode(path: str) -> int:
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o644


def _bootargs(root: str) -> tuple[Bootargs, str]:
    """The node's own bootargs.cfg; an unreadable one counts as giving nothing (so every
    argument is added: duplicates are harmless, a gap is not)."""
    path = os.path.join(root, BOOTARGS_FILE)
    text = _read_text(path)
    parsed = parse_bootargs(text) if text is not None else None
    if parsed is None:
        return Bootargs((), False), f"{path} could not be read: no argument is taken as set by Harvester"
    return parsed, ""


def _state(status: Status, root: str, cmdline: list[str], changed: bool, grubenv_path: str) -> None:
    if not status.missing:
        status.state = OK
        return
    names = " ".join(status.missing)
    if RECOVERY_ARG in cmdline:
        status.state = UNKNOWN
        status.reason = f"a recovery boot: Harvester's recovery entry carries no IOMMU arguments ({names} missing)"
        return
    prev = _previous(root)
    if changed or (prev.get("state") == REBOOT_PENDING and prev.get("ours") == status.ours):
        status.state = REBOOT_PENDING
        status.reason = f"{names}: written to {grubenv_path} ({EXTRA_VAR}) during this boot; they apply from the next boot"
        return
    grub_cfg = os.path.join(root, STATE_GRUB_CFG)
    text = _read_text(grub_cfg)
    if text is not None and appends_extra_cmdline(text) is False:
        status.state = UNSUPPORTED
        status.reason = (
            f"{names}: {grub_cfg} does not append ${{{EXTRA_VAR}}} to the kernel line: this Harvester "
            f"version cannot take arguments from {grubenv_path}"
        )
        return
    status.state = UNKNOWN
    status.reason = (
        f"{names}: {grubenv_path} held them before this boot, yet the kernel line lacks them "
        "(the line was edited in the GRUB menu, or GRUB read another configuration)"
    )


def keep(root: str, plan_path: str, grubenv_path: str) -> Kept:
    """Keep the plan's kernel arguments in the grubenv and record this boot's state
    under `root`. Refused (nothing written to the grubenv, the refusal recorded) when
    the plan's arguments break the policy; BadInput for a bad plan."""
    plan = load_plan(plan_path)
    status = Status(wanted=list(plan.kernel_args))
    refused = plan_refusals(plan.kernel_args)
    if refused:
        status.reason = "refused by the safety policy: " + "; ".join(refused)
        _write_status(root, status)
        raise Refused(*(f"{plan_path}: {r}" for r in refused), f"{grubenv_path}: nothing written")
    grubenv.ensure_directory(grubenv_path)
    bootargs, note = _bootargs(root)
    merge = grubenv.merge_kernel_args(grubenv.read(grubenv_path), plan.kernel_args, grubenv_path, bootargs)
    if merge.changed:
        try:
            atomic_write(grubenv_path, merge.data, _mode(grubenv_path))
        except OSError as exc:
            raise ExtError(f"{grubenv_path}: cannot write: {exc.strerror or exc}") from None
    status.harvester_sets = list(merge.harvester_sets)
    status.ours = list(merge.ours)
    cmdline_text = _read_text(os.path.join(root, "proc", "cmdline"))
    if cmdline_text is None:
        status.state = UNKNOWN
        status.reason = f"{os.path.join(root, 'proc', 'cmdline')} could not be read"
    else:
        cmdline = split_cmdline(cmdline_text)
        status.missing = missing(status.wanted, cmdline)
        status.on_cmdline = [w for w in status.wanted if w not in status.missing]
        _state(status, root, cmdline, merge.changed, grubenv_path)
    if note and status.state != OK:
        status.reason = f"{status.reason}; {note}" if status.reason else note
    _write_status(root, status)
    return Kept(status, merge.changed)


__all__ = ["keep", "Kept", "Status", "STATUS_FILE", "OK", "REBOOT_PENDING", "UNSUPPORTED", "UNKNOWN"]
