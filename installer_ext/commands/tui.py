"""`installer-ext tui [--root DIR] [--config FILE] [--output FILE]`.

Exit codes: 0 the user confirmed and the result was written; 1 the user left (Esc
twice, Esc while reading, Ctrl-C) and nothing was written, or the screen could not
run (no terminal, TERM=dumb, the host unreadable); 2 bad input (--config missing or
invalid, or naming what this host lacks; --root not a machine root), one line per
problem on stderr.

The result is the install config given with --config with only its pciPassthrough
section replaced (or the section alone without --config), written to --output
atomically, or printed on standard output once the screen is closed. The screen
draws on the terminal (/dev/tty when standard output is a file or a pipe). Every way
out ends with one line on stderr: what was written where, or that nothing was.
"""

from __future__ import annotations

import argparse
import os
import sys

from installer_ext.commands import Command
from installer_ext.commands.common import check_root, say
from installer_ext.errors import EXIT_BAD_INPUT, EXIT_ERROR, BadInput


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", default="/", metavar="DIR", help="machine root holding sys/ and proc/ (default /)")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="install config YAML: its pciPassthrough section pre-fills the screen, its install section "
        "(install disk, management network) is used for the safety checks, and the result is this "
        "config with the new section",
    )
    parser.add_argument(
        "--output",
        metavar="FILE",
        help="write the result here, atomically (default: standard output, once the screen is closed; "
        "the screen then draws on the terminal)",
    )


def run(args: argparse.Namespace) -> int:
    from installer_ext.config.load import load_config
    from installer_ext.config.model import Choices, Config, InstallInfo
    from installer_ext.tui.terminal import NoTerminal, check_term

    config = Config(choices=Choices(), install=InstallInfo())
    try:
        if args.config:
            config = load_config(args.config)
        check_root(args.root)
    except BadInput as exc:
        for line in exc.lines:
            say(line)
        return EXIT_BAD_INPUT
    try:
        check_term(os.environ.get("TERM"))
    except NoTerminal as exc:
        say(str(exc))
        return EXIT_ERROR

    from installer_ext.tui.logbuffer import held_logs
    from installer_ext.tui.reader import Reading

    with held_logs():
        reading = Reading(args.root)  # starts now: reading the host overlaps importing the screen
        from installer_ext.tui.app import App
        from installer_ext.tui.terminal import terminal

        try:
            with terminal() as screen:
                result = App(args.root, config, args.output, reading, screen).run()
        except NoTerminal as exc:
            say(str(exc))
            return EXIT_ERROR
    for line in config.warnings:
        say(f"warning: {line}")
    if result.code == 0 and not args.output and result.text is not None:
        sys.stdout.write(result.text)
        sys.stdout.flush()
    for line in result.lines:
        say(line)
    return result.code


COMMANDS = (
    Command("tui", "the install screen: choose devices, write the pciPassthrough section", add_arguments, run),
)
