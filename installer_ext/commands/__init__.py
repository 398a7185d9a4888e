"""The faces of the command line: one small module per command, or per pair of commands
that share their options or their work (plan and render, bind and unbind, install-hook
and precheck).

Every command module declares its commands the same way, as a tuple `COMMANDS` of
`Command`: the name, the one-line help, a function that adds the options to an
argparse parser and a function that runs the command from the parsed arguments and
returns the exit code. `installer_ext.cli` holds the one table from a command's name to
its module, and imports a module only when its command runs or its help is printed.

A command module handles the arguments, calls into the layers below (host, config,
plan, render, boot, firstboot, install), prints the lines and returns the exit code; it
decides nothing. It imports the layers inside `run` where they are heavy (urwid,
jinja2, jsonschema, yaml, ssl), so that building the parser stays cheap.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    name: str
    help: str  # one line: the top-level --help lists it, the command's --help starts with it
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]  # the exit code; an ExtError for cli.py to print
    # A report that reads the machine once and prints: no garbage collection while it
    # runs, and no interpreter teardown afterwards (cli.entry).
    one_shot: bool = False
