"""`installer-ext detect [--root DIR] [--json]`: the host report (CPU, IOMMU, PCI
functions, groups, what blocks each function), as a table or as the JSON contract."""

from __future__ import annotations

import argparse
import sys

from installer_ext.commands import Command
from installer_ext.commands.common import ROOT_HELP, check_root, json_out
from installer_ext.errors import EXIT_OK


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", default="/", help=ROOT_HELP)
    p.add_argument("--json", action="store_true", help="print the JSON report")


def run(args: argparse.Namespace) -> int:
    # Imported here: `installer-ext detect` must not pay for what other commands import.
    from installer_ext.host.facts import gather
    from installer_ext.report import detect_json, format_detect

    check_root(args.root)
    facts = gather(args.root)
    if args.json:
        json_out(detect_json(facts))
    else:
        sys.stdout.write(format_detect(facts))
    return EXIT_OK


COMMANDS = (
    Command("detect", "report CPU, IOMMU, PCI functions, groups and blockers", add_arguments, run, one_shot=True),
)
