"""Per-module figures of the last mutation run, and the survivors nobody has explained.

    .venv/bin/python tests/mutation_report.py [--markdown]

Reads `mutmut results --all true` (run where mutmut left `mutants/`) and
tests/mutation-survivors.md, where each survivor we decided not to kill has one line,
`- NAME: equivalent: ...` or `- NAME: wording: ...`. Per module it prints the mutants,
how many the tests killed (a timeout counts: the mutant made a test hang), the listed
equivalent ones, and the score: killed / (mutants - equivalent - not yet run). Wording
survivors stay in the denominator: they are real changes we chose not to pin.

Exit 1 when a survivor is not in the list, naming it: a new survivor stands out; and
when the list names a mutant the run does not have (the code changed under it and
mutmut numbers its mutants again: its line must be checked and written again). A
listed mutant the tests kill is named too (a timeout on a busy machine, or a line to
drop), without failing.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SURVIVORS = os.path.join(REPO, "tests", "mutation-survivors.md")
CAUGHT = {"killed", "timeout", "segfault", "caught by type check"}
_LINE = re.compile(r"^\s*(\S+): (.+?)\s*$")
_LISTED = re.compile(r"^- (installer_ext\.\S+?): (equivalent|wording)\b")


@dataclass
class Module:
    mutants: int = 0
    killed: int = 0
    not_run: int = 0
    equivalent: list[str] = field(default_factory=list)
    wording: list[str] = field(default_factory=list)
    unexplained: list[str] = field(default_factory=list)

    @property
    def counted(self) -> int:
        return self.mutants - len(self.equivalent) - self.not_run

    @property
    def score(self) -> float | None:
        return None if self.counted <= 0 else 100.0 * self.killed / self.counted


def module_of(name: str) -> str:
    """installer_ext.plan.planner.xǁ_Plannerǁrun__mutmut_3 -> installer_ext/plan/planner.py"""
    return name.split(".x", 1)[0].replace(".", "/") + ".py"


def listed_survivors(path: str = SURVIVORS) -> dict[str, str]:
    listed: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = _LISTED.match(line)
            if m:
                listed[m.group(1)] = m.group(2)
    return listed


def results(cwd: str) -> list[tuple[str, str]]:
    mutmut = os.path.join(os.path.dirname(sys.executable), "mutmut")
    out = subprocess.run([mutmut, "results", "--all", "true"], cwd=cwd, capture_output=True, text=True, check=True).stdout
    return [(m.group(1), m.group(2)) for m in map(_LINE.match, out.splitlines()) if m]


def tally(rows: list[tuple[str, str]], listed: dict[str, str]) -> dict[str, Module]:
    modules: dict[str, Module] = defaultdict(Module)
    for name, status in rows:
        mod = modules[module_of(name)]
        mod.mutants += 1
        if status in CAUGHT:
            mod.killed += 1
        elif status == "not checked":
            mod.not_run += 1
        elif listed.get(name) == "equivalent":
            mod.equivalent.append(name)
        elif listed.get(name) == "wording":
            mod.wording.append(name)
        else:
            mod.unexplained.append(f"{name} ({status})")
    return dict(sorted(modules.items()))


def problems(modules: dict[str, Module], rows: list[tuple[str, str]], listed: dict[str, str]) -> tuple[bool, list[str]]:
    """The lines to print after the figures, and whether they fail the report: a
    survivor not listed, a listed name the run does not have (failing); a listed
    mutant the tests caught (a note)."""
    status = dict(rows)
    unexplained = [f"unexplained survivor: {u}" for m in modules.values() for u in m.unexplained]
    stale = [f"listed, but no such mutant in this run: {name}" for name in listed if name not in status]
    caught = [f"listed, but {status[name]} in this run: {name}" for name in listed if status.get(name) in CAUGHT]
    return bool(unexplained or stale), unexplained + stale + caught


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="a table for the README")
    parser.add_argument("--mutants", default=REPO, help="checkout that holds mutants/ (default: this one)")
    args = parser.parse_args()
    rows, listed = results(args.mutants), listed_survivors()
    modules = tally(rows, listed)
    if args.markdown:
        print("| module | mutants | killed | equivalent | wording, not pinned | not run | killed of non-equivalent |")
        print("|---|---:|---:|---:|---:|---:|---:|")
    for path, m in modules.items():
        score = "-" if m.score is None else f"{m.score:.1f}%"
        if args.markdown:
            print(f"| `{path}` | {m.mutants} | {m.killed} | {len(m.equivalent)} | {len(m.wording)} | {m.not_run} | {score} |")
        else:
            print(f"{path:45} {m.mutants:5} mutants {m.killed:5} killed {len(m.equivalent):4} equivalent "
                  f"{len(m.wording):4} wording {m.not_run:5} not run  {score}")
    failed, lines = problems(modules, rows, listed)
    for line in lines:
        print(line, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
