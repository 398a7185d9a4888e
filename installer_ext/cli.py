"""The `installer-ext` command line: one table from a command's name to the module of
its face (installer_ext/commands), the parser, and the contract of every command: one
line per error on stderr, the documented exit code, no traceback unless --debug.

A command's module is imported only when that command runs or a help that shows it is
printed, so `detect` imports nothing that another command needs (urwid, jinja2,
jsonschema, yaml, ssl) and starts fast on a big host.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from installer_ext import __version__
from installer_ext.commands import Command
from installer_ext.errors import EXIT_ERROR, EXIT_OK, ExtError

log = logging.getLogger(__name__)

# Every command, in the order of --help: its name and the module that declares it (in
# that module's COMMANDS). docs/commands.md: how to add one.
MODULES: dict[str, str] = {
    "detect": "installer_ext.commands.detect",
    "plan": "installer_ext.commands.plan",
    "render": "installer_ext.commands.plan",
    "tui": "installer_ext.commands.tui",
    "bind": "installer_ext.commands.bind",
    "unbind": "installer_ext.commands.bind",
    "firstboot": "installer_ext.commands.firstboot",
    "install-hook": "installer_ext.commands.install",
    "precheck": "installer_ext.commands.install",
    "kernel-args": "installer_ext.commands.kernel_args",
    "status": "installer_ext.commands.status",
    "schema": "installer_ext.commands.schema",
}


def command(name: str) -> Command:
    """The declaration of command `name`, its module imported."""
    declared = importlib.import_module(MODULES[name]).COMMANDS
    return next(c for c in declared if c.name == name)


def wanted_command(argv: Sequence[str]) -> str | None:
    """The command named on the line: its first word that is not an option (the
    top-level options take no value)."""
    return next((a for a in argv if not a.startswith("-")), None)


class _Parser(argparse.ArgumentParser):
    """The top-level parser. It is built with the modules of the wanted command only;
    its help lists every command with its help, so printing it imports them all."""

    complete = False

    def format_help(self) -> str:
        if self.complete:
            return super().format_help()
        return build_parser(everything=True).format_help()


def build_parser(wanted: str | None = None, everything: bool = False) -> argparse.ArgumentParser:
    """The parser. Only the `wanted` command's module is imported (every module when
    `everything`); the other commands are there by name."""
    parser = _Parser(
        prog="installer-ext",
        description="GPU drivers and PCI passthrough for the Harvester installer.",
        epilog="Exit codes: 0 ok, 1 error, 2 bad input, 3 refused by the safety policy.",
    )
    parser.complete = everything
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="log details and show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=argparse.ArgumentParser)
    sub.required = True
    for name in MODULES:
        if everything or name == wanted:
            c = command(name)
            p = sub.add_parser(name, help=c.help, description=c.help)
            c.add_arguments(p)
        else:
            p = sub.add_parser(name)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    wanted = wanted_command(argv)
    parser = build_parser(wanted if wanted in MODULES else None)
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return command(args.command).run(args)
    except ExtError as exc:
        if debug:
            raise
        for line in exc.lines:
            sys.stderr.write(f"installer-ext: {line}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("installer-ext: interrupted\n")
        return 130
    except BrokenPipeError:
        # `installer-ext detect | head`: the reader left; not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the contract: one line, no traceback
        if debug:
            raise
        sys.stderr.write(f"installer-ext: internal error: {type(exc).__name__}: {exc} (rerun with --debug)\n")
        return EXIT_ERROR


def entry() -> None:
    """The console script and `python -m installer_ext`: main(), then, after a one-shot
    report (Command.one_shot), a quick exit with its output flushed first."""
    argv = sys.argv[1:]
    wanted = wanted_command(argv)
    quick = wanted in MODULES and command(wanted).one_shot
    if quick:
        gc.disable()
    rc = main(argv)
    if quick:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            pass
        sys.stderr.flush()
        os._exit(rc)
    sys.exit(rc)
