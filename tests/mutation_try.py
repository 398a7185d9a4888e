"""Does a test kill a mutant? Check without a whole mutmut run.

    python tests/mutation_try.py --mutants /path/with/mutants NAME [NAME ...] -- PYTEST-ARGS

For each mutant NAME, takes its diff from `mutmut show` (run where the `mutants/`
directory of a mutmut run lives), applies it to a scratch copy of this checkout's
`installer_ext/` and `tests/`, runs pytest there with PYTEST-ARGS (and the mutation
plugin) and prints `killed` or `SURVIVED` (a run past TIMEOUT_S counts as killed,
as mutmut counts a timeout). Exit 0 when every mutant was killed.
The checkout itself is never changed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


TIMEOUT_S = 120  # a mutant that makes a loop endless counts as killed, as mutmut's timeouts do


def _diff(mutants_home: str, name: str) -> str:
    """The mutant's diff against the source. `mutmut show` prints a method's diff
    without its class's indentation (`xǁClassǁmethod__mutmut_N`): indent it back."""
    mutmut = os.path.join(os.path.dirname(sys.executable), "mutmut")
    out = subprocess.run([mutmut, "show", name], cwd=mutants_home, capture_output=True, text=True, check=True).stdout
    diff = out[out.index("---"):]
    if "ǁ" not in name:
        return diff
    return "".join(
        line if line.startswith(("---", "+++", "@@")) or not line[1:].strip() else line[0] + "    " + line[1:]
        for line in diff.splitlines(keepends=True)
    )


def try_one(mutants_home: str, name: str, pytest_args: list[str]) -> bool:
    """True when the tests fail with the mutant applied (killed)."""
    with tempfile.TemporaryDirectory(prefix="mutation-try-") as scratch:
        for part in ("installer_ext", "tests", "pyproject.toml"):
            src = os.path.join(REPO, part)
            (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, os.path.join(scratch, part))
        applied = subprocess.run(["patch", "-p0", "-s", "-F3"], input=_diff(mutants_home, name), cwd=scratch, text=True, capture_output=True)
        if applied.returncode != 0:
            raise SystemExit(f"{name}: the diff does not apply here: {applied.stdout}{applied.stderr}".strip())
        try:
            r = subprocess.run(
                [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "tests.mutation_plugin", *pytest_args],
                cwd=scratch, capture_output=True, text=True, timeout=TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            return True
        return r.returncode != 0


def main() -> int:
    argv = sys.argv[1:]
    tail = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", default=REPO, help="checkout that holds mutants/ (default: this one)")
    parser.add_argument("names", nargs="+")
    args = parser.parse_args(argv[:tail])
    survived = 0
    for name in args.names:
        killed = try_one(args.mutants, name, argv[tail + 1:])
        survived += not killed
        print(f"{'killed' if killed else 'SURVIVED'} {name}")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
