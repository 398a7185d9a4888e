"""`python -m installer_ext.firstboot [options]`: the first-boot command on its own.

The same command as `installer-ext firstboot` (same parser, exit codes, one line per
error, no traceback unless --debug); the tests run it as a subprocess so they can kill -9
it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from installer_ext.cli import main as cli_main


def main(argv: Sequence[str] | None = None) -> int:
    return cli_main(["firstboot", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
