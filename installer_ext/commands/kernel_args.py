"""`installer-ext kernel-args --plan FILE --grubenv FILE [--root DIR]`: every boot, keep
the plan's kernel arguments in the grubenv and say which are on this boot's kernel line
(installer_ext/boot/kernel_args.py does the work and writes the status file).

Exit codes: 0 kept (a line on stdout; a warning on stderr when the line lacks
arguments for a reason a reboot does not cure); 2 bad input (no such --root, a bad
plan); 3 the plan's arguments break the safety policy (nothing written to the grubenv);
1 a write failed.
"""

from __future__ import annotations

import argparse
import os
import sys

from typing import TYPE_CHECKING

from installer_ext.commands import Command
from installer_ext.errors import EXIT_OK, BadInput

if TYPE_CHECKING:
    from installer_ext.boot.kernel_args import Status


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plan", required=True, metavar="FILE", help="plan JSON (as render writes it)")
    p.add_argument("--grubenv", required=True, metavar="FILE", help="GRUB environment block to keep in step (/oem/grubenv)")
    p.add_argument("--root", default="/", help="the node's root: proc/cmdline, etc/cos/bootargs.cfg, run/ (default /)")


def run(args: argparse.Namespace) -> int:
    from installer_ext.boot import kernel_args  # here: a help that lists every command need not import it

    if not os.path.isdir(args.root):
        raise BadInput(f"--root {args.root}: no such directory")
    kept = kernel_args.keep(args.root, args.plan, args.grubenv)
    _say(kept.status, kept.changed, args.grubenv)
    return EXIT_OK


def _say(status: Status, changed: bool, path: str) -> None:
    from installer_ext.boot.kernel_args import OK, REBOOT_PENDING
    from installer_ext.grubline import EXTRA_VAR

    wrote = f"; updated {path} ({EXTRA_VAR}: {' '.join(status.ours) or 'nothing of ours'})" if changed else ""
    if status.state == OK:
        sys.stdout.write(f"installer-ext: kernel arguments: all {len(status.wanted)} of the plan are on the kernel line{wrote}\n")
    elif status.state == REBOOT_PENDING:
        sys.stdout.write(f"installer-ext: kernel arguments: reboot pending: {status.reason}\n")
    else:
        sys.stderr.write(f"installer-ext: warning: kernel arguments {status.state}: {status.reason}{wrote}\n")


COMMANDS = (
    Command("kernel-args",
            "every boot: keep the plan's kernel arguments in the grubenv; say which are on the kernel line",
            add_arguments, run),
)
