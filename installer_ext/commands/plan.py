"""`installer-ext plan` and `installer-ext render`: a config against this host, the plan
printed (plan) or its files written under a target root (render). Both exit 3, with one
line per refusal, when the safety policy refuses the plan; render then writes nothing."""

from __future__ import annotations

import argparse
import os
import sys

from installer_ext.commands import Command
from installer_ext.commands.common import ROOT_HELP, check_root, json_out, warn
from installer_ext.errors import EXIT_OK, Refused


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, metavar="FILE", help="install config YAML with a pciPassthrough section")
    p.add_argument("--root", default="/", help=ROOT_HELP)


def add_plan_arguments(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--json", action="store_true", help="print the plan as JSON")


def add_render_arguments(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--target", required=True, metavar="DIR", help="root of the installed system (its /oem and /usr/local are written)")
    p.add_argument("--app", metavar="FILE", help="installer-ext.pyz for the node (default: the running one, or one packed from the running package)")
    p.add_argument("--runtime", metavar="DIR", help="a relocatable Python (bin/python3) for the node, copied beside the app")


def _plan(args: argparse.Namespace):
    """Config + facts -> plan; raises BadInput for a bad config or root."""
    from installer_ext.config.load import load_config
    from installer_ext.host.facts import gather
    from installer_ext.plan.planner import make_plan

    config = load_config(args.config)
    warn(config.warnings)
    check_root(args.root)
    return make_plan(gather(args.root), config.choices, config.install)


def _refusal_lines(plan) -> list[str]:
    from installer_ext.report import short_address

    return [
        f"refused: {short_address(r.address) if r.address else 'host'}: {r.reason}" for r in plan.fatal_refusals
    ]


def run_plan(args: argparse.Namespace) -> int:
    from installer_ext.report import format_plan

    plan = _plan(args)
    if args.json:
        json_out(plan.to_json())
    else:
        sys.stdout.write(format_plan(plan))
    if plan.fatal_refusals:
        raise Refused(*_refusal_lines(plan))
    return EXIT_OK


def run_render(args: argparse.Namespace) -> int:
    from installer_ext.render.app import app_bytes
    from installer_ext.render.write import write_target

    plan = _plan(args)
    if plan.fatal_refusals:
        raise Refused(*_refusal_lines(plan), "nothing written")
    for w in write_target(plan, args.target, app_bytes(args.app), args.runtime):
        sys.stdout.write(f"{'wrote    ' if w.changed else 'unchanged'} {os.path.join(args.target, w.relpath)}\n")
    warn(plan.warnings)
    return EXIT_OK


COMMANDS = (
    Command("plan", "validate a config against this host and print the plan (writes nothing)",
            add_plan_arguments, run_plan, one_shot=True),
    Command("render", "write the plan's files (cloud-config, grubenv, units, plan) under a target root",
            add_render_arguments, run_render),
)
