"""What several command modules share: JSON and warning lines on the way out, and the
check that --root is a machine's root."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable

from installer_ext.errors import BadInput

ROOT_HELP = "machine root holding sys/ and proc/ (default /)"


def json_out(obj: object) -> None:
    """Indented for a person at a terminal; one compact line for a pipe (the C
    encoder: 10x faster on a host with thousands of functions)."""
    if sys.stdout.isatty():
        text = json.dumps(obj, indent=2)
    else:
        text = json.dumps(obj, separators=(",", ":"), check_circular=False)
    sys.stdout.write(text + "\n")


def say(line: str) -> None:
    """One line on stderr: `installer-ext: ...`."""
    sys.stderr.write(f"installer-ext: {line}\n")


def warn(lines: Iterable[str]) -> None:
    """Lines that stop nothing, on stderr: `installer-ext: warning: ...`."""
    for line in lines:
        sys.stderr.write(f"installer-ext: warning: {line}\n")


def check_root(root: str) -> None:
    """BadInput unless `root` looks like a machine's root: a directory with a PCI bus
    under sys/ (every machine this runs on has one; an empty or wrong directory would
    otherwise give an empty report and exit 0)."""
    if not os.path.isdir(root):
        raise BadInput(f"--root {root}: no such directory")
    if not os.path.isdir(os.path.join(root, "sys", "bus", "pci", "devices")):
        raise BadInput(f"--root {root}: no sys/bus/pci/devices under it: not the root of a machine (sys/ and proc/)")
