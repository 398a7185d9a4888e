"""`installer-ext schema [--plan]`: the JSON Schema of the pciPassthrough section, or of
plan.json."""

from __future__ import annotations

import argparse
import json
import sys

from installer_ext.commands import Command
from installer_ext.errors import EXIT_OK


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plan", action="store_true", help="the schema of plan.json instead")


def run(args: argparse.Namespace) -> int:
    if args.plan:
        from installer_ext.plan.planfile import load_schema
    else:
        from installer_ext.config.load import load_schema

    # Indented even into a file: people keep it for their editor.
    sys.stdout.write(json.dumps(load_schema(), indent=2) + "\n")
    return EXIT_OK


COMMANDS = (
    Command("schema", "print the JSON Schema of the pciPassthrough section (--plan: of plan.json)",
            add_arguments, run, one_shot=True),
)
