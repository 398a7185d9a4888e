"""`python -m installer_ext.firstboot [options]`: the first-boot command on its own.

The same contract as `installer-ext firstboot` (exit codes, one line per error, no
traceback unless --debug); the tests run it as a subprocess so they can kill -9 it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from installer_ext.errors import EXIT_ERROR, ExtError
from installer_ext.firstboot.command import add_arguments, run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="installer-ext firstboot", description="first-boot service")
    parser.add_argument("--debug", action="store_true", help="log details and show tracebacks")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(name)s: %(message)s")
    try:
        return run(args)
    except ExtError as exc:
        if args.debug:
            raise
        for line in exc.lines:
            sys.stderr.write(f"installer-ext: {line}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("installer-ext: interrupted\n")
        return 130
    except Exception as exc:  # noqa: BLE001 - the contract: one line, no traceback
        if args.debug:
            raise
        sys.stderr.write(f"installer-ext: internal error: {type(exc).__name__}: {exc} (rerun with --debug)\n")
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
