"""Write a fake machine's tree: `python -m tests.fakesys NAME DIR` (NAME from machines.ALL).

examples/workstation is written this way; a test checks it still matches."""

from __future__ import annotations

import os
import shutil
import sys

from tests.fakesys.builder import build
from tests.fakesys.machines import ALL


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ALL:
        sys.stderr.write(f"usage: python -m tests.fakesys NAME DIR  (NAME: {', '.join(ALL)})\n")
        return 2
    name, target = argv
    if os.path.exists(target):
        shutil.rmtree(target)
    build(ALL[name](), target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
