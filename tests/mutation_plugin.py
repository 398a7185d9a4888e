"""pytest plugin for mutation runs only (`[tool.mutmut] pytest_add_cli_args` loads it).

mutmut 3 switches a mutant on inside the pytest process (its trampoline reads
MUTANT_UNDER_TEST) and learns which tests reach which function by recording calls in
that process. A test that starts another Python process (`tests.cli.run`, `subprocess`)
runs the code where nothing is recorded, and the child's trampoline looks for mutmut's
configuration from its own working directory and fails. Those tests are about the
command line, not the safety core's decisions; the mutation run leaves them out and
names how many it left out, so nothing is dropped silently.

Property tests run with at most MUTATION_MAX_EXAMPLES examples (default 40) and
derandomized, without shrinking a failure: each mutant runs every test that reaches its function, so the CI budgets
(up to 3000 examples) would make the run take a day; a fixed seed makes a survivor a
survivor on every run rather than by chance.

The fake machines and the recorded real-kernel trees are read-only in the tests that
share them; here they are built once for the whole run, in a directory named after the
sources that build them (tests/conftest.py `_shared_tree`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile

from hypothesis import Phase, settings

from tests import cli, conftest

MAX_EXAMPLES = int(os.environ.get("MUTATION_MAX_EXAMPLES", "40"))

_STARTS_A_PROCESS = {"run": cli.run, "subprocess": subprocess}


def _starts_a_process(item) -> bool:
    function = getattr(item, "function", None)
    if function is None:
        return False
    names = set(function.__code__.co_names)
    module_globals = function.__globals__
    return any(name in names and module_globals.get(name) is obj for name, obj in _STARTS_A_PROCESS.items()) or (
        "subprocess" in names or "subprocess" in function.__code__.co_varnames
    )


def pytest_configure(config):
    if os.environ.get(conftest.SHARED_TREES):
        return
    digest = hashlib.sha256()
    here = os.path.dirname(os.path.abspath(__file__))
    for part in ("fakesys/builder.py", "fakesys/machines.py", "fakesys/__init__.py", "conftest.py"):
        with open(os.path.join(here, part), "rb") as f:
            digest.update(f.read())
    os.environ[conftest.SHARED_TREES] = os.path.join(
        tempfile.gettempdir(), f"installer-ext-mutation-trees-{digest.hexdigest()[:12]}"
    )


def _cap_examples(item) -> None:
    test = getattr(item, "obj", None)
    current = getattr(test, "_hypothesis_internal_use_settings", None)
    if current is None:
        return
    test._hypothesis_internal_use_settings = settings(
        current,
        max_examples=min(current.max_examples, MAX_EXAMPLES),
        derandomize=True,
        database=None,
        # a failure is all a mutation run needs to know; shrinking it can take minutes
        phases=[p for p in current.phases if p is not Phase.shrink],
        report_multiple_bugs=False,
    )


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        _cap_examples(item)
        (drop if _starts_a_process(item) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
        config._mutation_left_out = len(drop)


def pytest_report_header(config):
    return (
        "mutation run: tests that start a process are left out, property tests run "
        f"{MAX_EXAMPLES} derandomized examples at most (tests/mutation_plugin.py)"
    )
