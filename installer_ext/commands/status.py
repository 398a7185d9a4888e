"""`installer-ext status [--root DIR] [--json]`: what the install, first boot, the binder
and the kernel-args keeper say, as lines or as one JSON object (installer_ext/status.py
reads them). Reading never fails the command: an unreadable record is reported as such,
and the exit code is 0."""

from __future__ import annotations

import argparse
import json
import sys

from installer_ext.commands import Command
from installer_ext.errors import EXIT_OK


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", default="/", help="the node's root (default /)")
    p.add_argument("--json", action="store_true", help="print the status as JSON")


def run(args: argparse.Namespace) -> int:
    from installer_ext.status import collect, format_status

    st = collect(args.root)
    if args.json:
        text = json.dumps(st, indent=2 if sys.stdout.isatty() else None, sort_keys=True)
        sys.stdout.write(text + "\n")
    else:
        sys.stdout.write(format_status(st))
    return EXIT_OK


COMMANDS = (
    Command("status", "on the node: what the install, first boot, the binder and the kernel line say", add_arguments, run),
)
