"""`installer-ext bind` and `installer-ext unbind`: the every-boot binder and its undo.

Exit codes of bind: 0 every planned device on vfio-pci, or nothing to do, or the
rescue switch is on; 3 the every-boot re-check refused a device or a VF count and
nothing failed (each one is said, with the reason); 1 a write or a wait failed. Of
unbind: 0 every planned device given back or already off vfio-pci; 1 one was not
(failed, or skipped: not found as planned), or the given-back mark could not be written. Both: 2 bad input (plan missing,
unreadable or invalid, bad --address): one line, raised as BadInput for cli.py to print.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from installer_ext.boot.options import DEFAULT_TIMEOUT, Options
from installer_ext.commands import Command
from installer_ext.errors import EXIT_ERROR, EXIT_OK, BadInput
from installer_ext.host.address import normalize_address

MAX_TIMEOUT = 600.0


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or not 0 < value <= MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds between 0 and {MAX_TIMEOUT:g}")
    return value


def _common(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument("--root", default="/", help="machine root holding sys/, proc/, oem/, run/ (default /)")
    parser.add_argument("--plan", metavar="FILE", default=None,
                        help="plan JSON (default ROOT/oem/installer-ext/plan.json)")
    parser.add_argument("--timeout", metavar="SECONDS", type=_timeout, default=DEFAULT_TIMEOUT,
                        help=f"wait at most this long for each device to {verb} (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--address", metavar="ADDR", default=None,
                        help="handle this planned device only (0000:65:00.0)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of lines")


def add_bind_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser, "bind")
    parser.add_argument("--again", action="store_true",
                        help="take back the devices `unbind` gave back: bind them now and at every boot")


def add_unbind_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser, "be given back")


def options_from_args(args: argparse.Namespace, base: Options | None = None) -> Options:
    """Options from parsed arguments; `base` carries injected parts (tests)."""
    opts = base or Options()
    opts.root = args.root
    opts.plan_path = args.plan
    opts.timeout = args.timeout
    opts.address = None
    opts.again = getattr(args, "again", False)
    if opts.again and args.address is not None:
        raise BadInput("--again takes every device of the plan back; it does not go with --address")
    if args.address is not None:
        address = normalize_address(args.address)
        if address is None:
            shown = json.dumps(args.address, ensure_ascii=True)[:80]
            raise BadInput(f"--address: {shown} is not a PCI address (like 0000:65:00.0)")
        opts.address = address
    return opts


class _Quiet:
    """Swallows the per-device lines when --json asks for JSON alone."""

    def write(self, _text: str) -> int:
        return 0


def run_bind(args: argparse.Namespace, base: Options | None = None) -> int:
    from installer_ext.boot.binder import bind  # here: a help that lists every command need not import it

    opts = options_from_args(args, base)
    if args.json:
        opts.out = _Quiet()  # type: ignore[assignment]
    result = bind(opts)
    if args.json:
        sys.stdout.write(json.dumps(result.status.to_json(), indent=2, sort_keys=True) + "\n")
    else:
        opts.say(result.message)
    return result.exit_code


def run_unbind(args: argparse.Namespace, base: Options | None = None) -> int:
    from installer_ext.boot.unbinder import unbind

    opts = options_from_args(args, base)
    if args.json:
        opts.out = _Quiet()  # type: ignore[assignment]
    result = unbind(opts)
    if args.json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2, sort_keys=True) + "\n")
    else:
        opts.say(result.message)
    return EXIT_OK if result.ok else EXIT_ERROR


COMMANDS = (
    Command("bind", "every boot: bind the plan's devices to vfio-pci (and create SR-IOV VFs)",
            add_bind_arguments, run_bind),
    Command("unbind",
            "give the plan's devices back to the drivers they had before, for good (`bind --again` takes them back)",
            add_unbind_arguments, run_unbind),
)
