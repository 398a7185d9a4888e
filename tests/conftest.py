"""Shared fixtures: fake machines built once per session, the real kernel's recorded
sysfs trees, and a rule for tests that need a real tool (grub-editenv, systemd-analyze,
kubectl, lspci): skipped with a reason on a developer machine that lacks it, failed in
CI (CI=1 or INSTALLER_EXT_CI=1), where .ci/run installs it."""

from __future__ import annotations

import os
import shutil
import sys
import tarfile

import pytest

from tests.fakesys import build
from tests.fakesys import machines as fake_machines

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_KERNEL = os.path.join(REPO, "tests", "fixtures", "real-kernel")
PYTHON = sys.executable


def in_ci() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("INSTALLER_EXT_CI"))


def require_tool(name: str) -> str:
    """Path of a command the test needs: skip (developer machine) or fail (CI)."""
    path = shutil.which(name)
    if path is None:
        msg = f"{name} is not installed (.ci/run installs it)"
        if in_ci():
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def machine_root(tmp_path_factory):
    """machine_root(name) -> root of that fake machine's tree, built once a session."""
    cache: dict[str, str] = {}

    def get(name: str) -> str:
        if name not in cache:
            root = str(tmp_path_factory.mktemp(name))
            build(fake_machines.ALL[name](), root)
            cache[name] = root
        return cache[name]

    return get


@pytest.fixture(scope="session")
def real_kernel(tmp_path_factory):
    """real_kernel("on"|"off") -> root of the recorded q35 machine (IOMMU on / off)."""
    cache: dict[str, str] = {}

    def get(which: str) -> str:
        if which not in cache:
            root = str(tmp_path_factory.mktemp(f"q35-vtd-{which}"))
            with tarfile.open(os.path.join(REAL_KERNEL, f"q35-vtd-{which}.tar.gz")) as tar:
                tar.extractall(root, filter="tar")
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
