"""The `installer-ext` command line: a face over the layers, holding no decisions.

Heavy modules (urwid, jinja2, jsonschema) are imported inside the commands that need
them, so `detect` starts fast on a big host.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence

from installer_ext import __version__
from installer_ext.errors import EXIT_ERROR, EXIT_OK, BadInput, ExtError, Refused

log = logging.getLogger(__name__)


def _json_out(obj: object) -> None:
    """Indented for a person at a terminal; one compact line for a pipe (the C
    encoder: 10x faster on a host with thousands of functions)."""
    if sys.stdout.isatty():
        text = json.dumps(obj, indent=2)
    else:
        text = json.dumps(obj, separators=(",", ":"), check_circular=False)
    sys.stdout.write(text + "\n")


def _workers() -> int:
    """Processes to read a big host with: the command line is single-threaded."""
    return 2 if (os.cpu_count() or 1) > 1 else 1


def _check_root(root: str) -> None:
    if not os.path.isdir(root):
        raise BadInput(f"--root {root}: no such directory")


def cmd_detect(args: argparse.Namespace) -> int:
    from installer_ext.host.facts import gather
    from installer_ext.report import format_detect

    _check_root(args.root)
    facts = gather(args.root, workers=_workers())
    if args.json:
        _json_out(facts.to_json())
    else:
        sys.stdout.write(format_detect(facts))
    return EXIT_OK


def _plan(args: argparse.Namespace):
    """Config + facts -> (facts, config, plan); raises BadInput for a bad config."""
    from installer_ext.config.load import load_config
    from installer_ext.host.facts import gather
    from installer_ext.plan.planner import make_plan

    config = load_config(args.config)
    _check_root(args.root)
    facts = gather(args.root, workers=_workers())
    return facts, config, make_plan(facts, config.choices, config.install)


def _refusal_lines(plan) -> list[str]:
    from installer_ext.report import short_address

    return [
        f"refused: {short_address(r.address) if r.address else 'host'}: {r.reason}" for r in plan.fatal_refusals
    ]


def cmd_plan(args: argparse.Namespace) -> int:
    from installer_ext.report import format_plan

    _, _, plan = _plan(args)
    if args.json:
        _json_out(plan.to_json())
    else:
        sys.stdout.write(format_plan(plan))
    if plan.fatal_refusals:
        raise Refused(*_refusal_lines(plan))
    return EXIT_OK


def cmd_render(args: argparse.Namespace) -> int:
    from installer_ext.render.write import write_target

    _, _, plan = _plan(args)
    if plan.fatal_refusals:
        raise Refused(*_refusal_lines(plan), "nothing written")
    for w in write_target(plan, args.target):
        sys.stdout.write(f"{'wrote    ' if w.changed else 'unchanged'} {os.path.join(args.target, w.relpath)}\n")
    for warning in plan.warnings:
        sys.stderr.write(f"installer-ext: warning: {warning}\n")
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from installer_ext.config.load import load_schema

    # Indented even into a file: people keep it for their editor.
    sys.stdout.write(json.dumps(load_schema(), indent=2) + "\n")
    return EXIT_OK


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "detect": (cmd_detect, "report CPU, IOMMU, PCI functions, groups and blockers"),
    "plan": (cmd_plan, "validate a config against this host and print the plan (writes nothing)"),
    "render": (cmd_render, "write the plan's files (cloud-config, grubenv, units, plan) under a target root"),
    "schema": (cmd_schema, "print the JSON Schema of the pciPassthrough section"),
}


# Commands whose modules are imported only when they run (the binder, the first-boot
# client and the screen pull in pyudev, ssl, yaml or urwid): module, add-arguments
# function, run function, help.
LAZY_COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "tui": ("installer_ext.tui.command", "add_arguments", "run",
            "the install screen: choose devices, write the pciPassthrough section"),
    "bind": ("installer_ext.boot.command", "add_bind_arguments", "run_bind",
             "every boot: bind the plan's devices to vfio-pci (and create SR-IOV VFs)"),
    "unbind": ("installer_ext.boot.command", "add_unbind_arguments", "run_unbind",
               "give the plan's devices back to the drivers they had before"),
    "firstboot": ("installer_ext.firstboot.command", "add_arguments", "run",
                  "first boot: Harvester settings, addon, device claims, GPU device plugin"),
    "install-hook": ("installer_ext.render.commands", "add_hook_arguments", "run_hook_command",
                     "on the installer ISO: render the screen's or the config's choices into the installed system"),
    "kernel-args": ("installer_ext.render.commands", "add_kernel_args_arguments", "run_kernel_args",
                    "on the node: keep the plan's kernel arguments in the grubenv"),
}
ORDER = ["detect", "plan", "render", "tui", "bind", "unbind", "firstboot", "install-hook", "kernel-args", "schema"]


def _lazy_runner(module: str, func: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module), func)(args)

    return run


def build_parser(wanted: str | None = None) -> argparse.ArgumentParser:
    """The parser; only the `wanted` lazy command's module is imported for its options."""
    parser = argparse.ArgumentParser(
        prog="installer-ext",
        description="GPU drivers and PCI passthrough for the Harvester installer.",
        epilog="Exit codes: 0 ok, 1 error, 2 bad input, 3 refused by the safety policy.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="log details and show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    root_help = "machine root holding sys/ and proc/ (default /)"

    def add(name: str) -> argparse.ArgumentParser:
        if name in LAZY_COMMANDS:
            module, add_args, func, help_text = LAZY_COMMANDS[name]
            p = sub.add_parser(name, help=help_text, description=help_text)
            p.set_defaults(func=_lazy_runner(module, func))
            if name == wanted:
                getattr(importlib.import_module(module), add_args)(p)
        else:
            func, help_text = COMMANDS[name]
            p = sub.add_parser(name, help=help_text, description=help_text)
            p.set_defaults(func=func)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return p

    for name in ORDER:
        p = add(name)
        if name == "detect":
            p.add_argument("--root", default="/", help=root_help)
            p.add_argument("--json", action="store_true", help="print the JSON report")
        elif name in ("plan", "render"):
            p.add_argument("--config", required=True, metavar="FILE", help="install config YAML with a pciPassthrough section")
            p.add_argument("--root", default="/", help=root_help)
            if name == "plan":
                p.add_argument("--json", action="store_true", help="print the plan as JSON")
            else:
                p.add_argument("--target", required=True, metavar="DIR", help="root of the installed system (its /oem is written)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    wanted = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(wanted)
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False)
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return args.func(args)
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


# Reports that read the machine once and print: no garbage collection while thousands
# of functions are read (nothing they build is cyclic garbage), and no interpreter
# teardown afterwards (it grows with the host and frees memory the exit frees anyway).
ONE_SHOT = {"detect", "plan", "schema"}


def entry() -> None:
    """The console script and `python -m installer_ext`: main(), then a quick exit
    after a one-shot report, its output flushed first."""
    argv = sys.argv[1:]
    wanted = next((a for a in argv if not a.startswith("-")), None)
    quick = wanted in ONE_SHOT
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
