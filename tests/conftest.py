"""Shared fixtures: fake machines built once per session, the real kernel's recorded
sysfs trees, and one rule for what CI must never skip.

`require_tool` / `unavailable`: a test that needs a real tool (grub-editenv,
systemd-analyze, kubectl, lspci, QEMU) skips with a one-line reason on a developer machine
that lacks it and FAILS in CI (`in_ci()`), where .ci/run installs it. On top of that, a CI
run with any skipped test at all ends red (`pytest_sessionfinish` below): a skip can hide
a missing install step, so CI counts it as a failure."""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from typing import NoReturn

import pytest

from tests.fakesys import build
from tests.fakesys import machines as fake_machines

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_KERNEL = os.path.join(REPO, "tests", "fixtures", "real-kernel")

_FALSE = ("", "0", "false", "no", "off")


def in_ci() -> bool:
    """CI=1 (or INSTALLER_EXT_CI=1); `CI=false`, `CI=0` and an empty value are not CI."""
    return any(os.environ.get(v, "").strip().lower() not in _FALSE for v in ("CI", "INSTALLER_EXT_CI"))


def unavailable(reason: str) -> NoReturn:
    """This machine lacks something the test needs: skip here, fail in CI."""
    if in_ci():
        pytest.fail(f"{reason} (CI must not skip)", pytrace=False)
    pytest.skip(reason)


def require_tool(name: str) -> str:
    """Path of a command the test needs: skip (developer machine) or fail (CI)."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed (.ci/run installs it)")
    return path


_skipped: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    """In CI a skip is a failure, whatever skipped it."""
    if in_ci() and _skipped and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if in_ci() and _skipped:
        terminalreporter.write_line(
            f"CI: {len(_skipped)} test(s) skipped, and CI counts a skip as a failure: {', '.join(_skipped[:5])}"
            + (" ..." if len(_skipped) > 5 else ""),
            red=True,
        )


SHARED_TREES = "INSTALLER_EXT_SHARED_TREES"


def _shared_tree(kind: str, name: str, make) -> str | None:
    """With $INSTALLER_EXT_SHARED_TREES set (mutation runs, tests/mutation_plugin.py), the
    read-only trees are built once into that directory and shared by every test process:
    a mutation run starts one process per mutant, and building the fake machines in each
    one cost more than the tests. Built under a temporary name and renamed, so a process
    never sees half a tree. None when the variable is unset: a per-session tree."""
    home = os.environ.get(SHARED_TREES)
    if not home:
        return None
    root = os.path.join(home, kind, name)
    if not os.path.isdir(root):
        os.makedirs(os.path.dirname(root), exist_ok=True)
        scratch = tempfile.mkdtemp(prefix=f".{name}.", dir=os.path.dirname(root))
        make(scratch)
        try:
            os.rename(scratch, root)
        except OSError:  # another process finished it first
            shutil.rmtree(scratch, ignore_errors=True)
    return root


@pytest.fixture(scope="session")
def machine_root(tmp_path_factory):
    """machine_root(name) -> root of that fake machine's tree, built once a session."""
    cache: dict[str, str] = {}

    def get(name: str) -> str:
        if name not in cache:
            cache[name] = _shared_tree("machine", name, lambda root: build(fake_machines.ALL[name](), root)) or ""
        if not cache[name]:
            root = str(tmp_path_factory.mktemp(name))
            build(fake_machines.ALL[name](), root)
            cache[name] = root
        return cache[name]

    return get


@pytest.fixture(scope="session")
def real_kernel(tmp_path_factory):
    """real_kernel("on"|"off") -> root of the recorded q35 machine (IOMMU on / off)."""
    cache: dict[str, str] = {}

    def extract(which: str, root: str) -> None:
        with tarfile.open(os.path.join(REAL_KERNEL, f"q35-vtd-{which}.tar.gz")) as tar:
            tar.extractall(root, filter="tar")

    def get(which: str) -> str:
        if which not in cache:
            cache[which] = _shared_tree("real-kernel", which, lambda root: extract(which, root)) or ""
        if not cache[which]:
            root = str(tmp_path_factory.mktemp(f"q35-vtd-{which}"))
            extract(which, root)
            cache[which] = root
        return cache[which]

    return get


@pytest.fixture
def fresh_machine(tmp_path):
    """fresh_machine(Machine) -> a new tree for one test (to break or to write into)."""

    def get(machine) -> str:
        root = str(tmp_path / machine.name)
        build(machine, root)
        return root

    return get
