"""The argparse face of `installer-ext bind` and `installer-ext unbind`.

cli.py registers them: `add_bind_arguments(p)` + `run_bind(args)`, and the same for
unbind. Exit codes: 0 every planned device on vfio-pci (or given back), or nothing to
do, or the rescue switch is on; 1 a device or VF count was skipped or failed (each one
is reported); 2 bad input (plan missing/unreadable/invalid, bad --address): one line,
raised as BadInput for cli.py to print.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from installer_ext.boot.binder import bind
from installer_ext.boot.options import DEFAULT_TIMEOUT, Options
from installer_ext.boot.unbinder import unbind
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


def add_unbind_arguments(parser: argparse.ArgumentParser) -> None:
    _common(parser, "be given back")


def options_from_args(args: argparse.Namespace, base: Options | None = None) -> Options:
    """Options from parsed arguments; `base` carries injected parts (tests)."""
    opts = base or Options()
    opts.root = args.root
    opts.plan_path = args.plan
    opts.timeout = args.timeout
    opts.address = None
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
    opts = options_from_args(args, base)
    if args.json:
        opts.out = _Quiet()  # type: ignore[assignment]
    result = bind(opts)
    if args.json:
        sys.stdout.write(json.dumps(result.status.to_json(), indent=2, sort_keys=True) + "\n")
    else:
        opts.say(result.message)
    return EXIT_OK if result.ok else EXIT_ERROR


def run_unbind(args: argparse.Namespace, base: Options | None = None) -> int:
    opts = options_from_args(args, base)
    if args.json:
        opts.out = _Quiet()  # type: ignore[assignment]
    result = unbind(opts)
    if args.json:
        sys.stdout.write(json.dumps(result.to_json(), indent=2, sort_keys=True) + "\n")
    else:
        opts.say(result.message)
    return EXIT_OK if result.ok else EXIT_ERROR
