"""`installer-ext install-hook` and `installer-ext precheck`: the ISO side's commands
(installer_ext/install does the work)."""

from __future__ import annotations

import argparse
import os
import sys

from installer_ext import paths
from installer_ext.commands import Command
from installer_ext.commands.common import warn
from installer_ext.errors import EXIT_OK, BadInput


def add_hook_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", default="/", help="machine root holding sys/ and proc/ (default /)")
    p.add_argument("--target", metavar="DIR", help="the installed system's root (its oem/ and usr/local/ are written)")
    p.add_argument("--oem", metavar="DIR", help="the installed system's COS_OEM, mounted on its own (elemental: /run/cos/oem)")
    p.add_argument("--persistent", metavar="DIR",
                   help="its COS_PERSISTENT, mounted on its own (elemental: /run/cos/persistent; /usr/local on the node)")
    p.add_argument("--choices", metavar="FILE", help="the install screen's output (default /run/installer-ext/choices.yaml if present)")
    p.add_argument("--config", metavar="FILE", help="the Go installer's copy of the config (default $HARVESTER_CONFIG)")
    p.add_argument("--config-url", metavar="URL",
                   help="the original config (default $HARVESTER_STREAMDISK_CLOUDINIT_URL, then harvester.install.config_url)")
    p.add_argument("--app", metavar="FILE", help="installer-ext.pyz for the node (default: the running one)")
    p.add_argument("--runtime", metavar="DIR", help="a relocatable Python (bin/python3) to copy for the node")


def _target(args: argparse.Namespace) -> paths.Target:
    if args.target is None and (args.oem is None or args.persistent is None):
        raise BadInput("give --target (the installed system's root), or --oem and --persistent (its partitions)")
    for flag, d in (("--target", args.target), ("--oem", args.oem), ("--persistent", args.persistent)):
        if d is not None and not os.path.isdir(d):
            raise BadInput(f"{flag} {d}: no such directory")
    return paths.Target(args.target, args.oem, args.persistent)


def run_hook_command(args: argparse.Namespace) -> int:
    # yaml, the HTTP client and ssl: imported when the hook runs, not for its --help.
    from installer_ext.install import installer_config, original
    from installer_ext.install.hook import HookInputs, default_choices, run_hook
    from installer_ext.render.app import app_bytes
    from installer_ext.render.record import NOTHING_ASKED

    target = _target(args)
    # Everything that can be checked is checked before the first write.
    if args.runtime is not None and not os.path.isfile(os.path.join(args.runtime, "bin", "python3")):
        raise BadInput(f"--runtime {args.runtime}: no bin/python3 in it, not a Python runtime")
    app = app_bytes(args.app)
    inputs = HookInputs(
        root=args.root,
        target=target,
        choices=args.choices or default_choices(),
        installer_config=args.config or installer_config.locate(target_root=args.target),
        original_url=args.config_url or original.locate(args.root),
        app=app,
        runtime=args.runtime,
    )
    result = run_hook(inputs)
    if result.record.outcome == NOTHING_ASKED:
        sys.stdout.write("installer-ext: no pciPassthrough choices from the screen or the config: nothing to do\n")
        return EXIT_OK
    sys.stdout.write(f"installer-ext: rendering the choices from the {result.record.source}\n")
    for w in result.written:
        sys.stdout.write(f"{'wrote    ' if w.changed else 'unchanged'} {w.relpath}\n")
    warn(result.record.warnings)
    return EXIT_OK


def add_precheck_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", default="/", help="machine root holding sys/, proc/ (default /)")
    p.add_argument("--tries", type=int, default=None, help="tries to fetch the config (default 30, 10 s apart)")


def run_precheck_command(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from installer_ext.install.precheck import PRECHECK_FETCH, run_precheck

    how = PRECHECK_FETCH if args.tries is None else replace(PRECHECK_FETCH, tries=max(1, args.tries))
    result = run_precheck(args.root, how)
    sys.stdout.write(f"installer-ext: {result.message}\n")
    for w in result.warnings:
        sys.stdout.write(f"installer-ext: warning: {w}\n")
    return EXIT_OK


COMMANDS = (
    Command("install-hook",
            "on the installer ISO: render the screen's or the config's choices into the installed system",
            add_hook_arguments, run_hook_command),
    Command("precheck",
            "on the installer ISO, automatic installs: check the pciPassthrough section before the install",
            add_precheck_arguments, run_precheck_command),
)
