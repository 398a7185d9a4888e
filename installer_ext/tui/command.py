"""`installer-ext tui [--root DIR] [--config FILE] [--output FILE]`.

Exit codes: 0 the user confirmed and the section was written; 1 the user backed out
(Esc on the devices screen, Esc while reading, Ctrl-C) and nothing was written, or the
screen could not run (no terminal); 2 bad input (--config missing or invalid, or naming
what this host lacks; --root not a directory), one line per problem on stderr.

The section goes to --output atomically; without --output it is printed on standard
output once the screen is closed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from installer_ext.config.model import Choices, InstallInfo
from installer_ext.errors import EXIT_BAD_INPUT, EXIT_ERROR, BadInput

log = logging.getLogger(__name__)

PROG = "installer-ext tui"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", default="/", metavar="DIR", help="machine root holding sys/ and proc/ (default /)")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="install config YAML: its pciPassthrough section pre-fills the screen, its install section "
        "(install disk, management network) is used for the safety checks",
    )
    parser.add_argument(
        "--output",
        metavar="FILE",
        help="write the pciPassthrough section here, atomically (default: standard output, after the screen closes)",
    )


def _err(line: str) -> None:
    sys.stderr.write(f"installer-ext: {line}\n")


def run(args: argparse.Namespace) -> int:
    from installer_ext.config.load import load_config

    choices, install = Choices(), InstallInfo()
    if args.config:
        try:
            config = load_config(args.config)
        except BadInput as exc:
            for line in exc.lines:
                _err(line)
            return EXIT_BAD_INPUT
        choices, install = config.choices, config.install
    if not os.path.isdir(args.root):
        _err(f"--root {args.root}: not a directory")
        return EXIT_BAD_INPUT
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        _err("tui: needs a terminal on standard input and output (use `plan --config` unattended)")
        return EXIT_ERROR

    from installer_ext.tui.logbuffer import held_logs
    from installer_ext.tui.reader import Reading

    with held_logs():
        reading = Reading(args.root)  # starts now: reading the host overlaps importing the screen
        from installer_ext.tui.app import App

        result = App(args.root, choices, install, args.output, reading).run()
    for line in result.lines:
        _err(line)
    if result.code == 0:
        if args.output:
            log.info("wrote %s", args.output)
        elif result.text is not None:
            sys.stdout.write(result.text)
            sys.stdout.flush()
    return result.code


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry (until `installer-ext tui` is wired): same options, plus --debug."""
    parser = argparse.ArgumentParser(prog=PROG, description="The GPU drivers / PCI passthrough install screen.")
    add_arguments(parser)
    parser.add_argument("--debug", action="store_true", help="log details (shown after the screen closes)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING, format="%(name)s: %(message)s", stream=sys.stderr
    )
    try:
        return run(args)
    except Exception as exc:  # noqa: BLE001 - one line, no traceback
        if args.debug:
            raise
        _err(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug)")
        return EXIT_ERROR
