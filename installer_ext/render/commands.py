"""`install-hook` and `kernel-args`: the render layer's commands for the ISO and the node."""

from __future__ import annotations

import argparse
import sys

from installer_ext.errors import EXIT_OK, BadInput
from installer_ext.fsutil import atomic_write
from installer_ext.plan.planfile import load_plan
from installer_ext.render import grubenv
from installer_ext.render.install_hook import DEFAULT_CHOICES, run_hook, running_app


def add_hook_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", default="/", help="machine root holding sys/ and proc/ (default /)")
    p.add_argument("--target", metavar="DIR", help="the installed system's root (its oem/ is written)")
    p.add_argument("--oem", metavar="DIR", help="the installed system's OEM partition, when mounted on its own")
    p.add_argument("--choices", metavar="FILE", help=f"the install screen's output (default {DEFAULT_CHOICES} if present)")
    p.add_argument("--config", metavar="FILE", help="the Harvester config of the install (default $HARVESTER_CONFIG)")
    p.add_argument("--app", metavar="FILE", help="installer-ext.pyz to copy for the node (default: the running one)")


def run_hook_command(args: argparse.Namespace) -> int:
    result = run_hook(args.root, args.target, args.oem, args.choices, args.config, args.app or running_app())
    if result.source == "none":
        sys.stdout.write("installer-ext: no pciPassthrough choices from the screen or the config: nothing to do\n")
        return EXIT_OK
    sys.stdout.write(f"installer-ext: rendering the choices from the {result.source}\n")
    for w in result.written:
        sys.stdout.write(f"{'wrote    ' if w.changed else 'unchanged'} {w.relpath}\n")
    for warning in result.warnings:
        sys.stderr.write(f"installer-ext: warning: {warning}\n")
    return EXIT_OK


def add_kernel_args_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plan", required=True, metavar="FILE", help="plan JSON (as render writes it)")
    p.add_argument("--grubenv", required=True, metavar="FILE", help="GRUB environment block to keep in step (/oem/grubenv)")


def run_kernel_args(args: argparse.Namespace) -> int:
    """Put the plan's kernel arguments back into the grubenv if something removed them
    (harv-install rewrites third_party_kernel_args after the install hooks when the
    config has os.additionalKernelArguments). Idempotent."""
    plan = load_plan(args.plan)
    try:
        with open(args.grubenv, "rb") as f:
            data: bytes | None = f.read()
    except FileNotFoundError:
        data = None
    except OSError as exc:
        raise BadInput(f"{args.grubenv}: cannot read: {exc.strerror}") from None
    merged = grubenv.merge_kernel_args(data, plan.kernel_args, plan.kernel_args, args.grubenv)
    if data is not None and grubenv.parse(merged, args.grubenv) == grubenv.parse(data, args.grubenv):
        sys.stdout.write(f"installer-ext: kernel arguments in {args.grubenv} are in place\n")
        return EXIT_OK
    atomic_write(args.grubenv, merged, 0o644)
    sys.stdout.write(f"installer-ext: restored the kernel arguments in {args.grubenv}; they apply from the next boot\n")
    return EXIT_OK


__all__ = ["add_hook_arguments", "run_hook_command", "add_kernel_args_arguments", "run_kernel_args"]
