"""Fixtures of the screen's tests: host facts of the fake machines (read once a
session), the 4k-function host, and a Form/Session made from them."""

from __future__ import annotations

import pytest

from installer_ext.config.model import Choices, InstallInfo
from installer_ext.tui.reader import read_host
from installer_ext.tui.session import Session
from tests.fakesys import build
from tests.fakesys.builder import with_changes
from tests.fakesys.machines import intel_workstation
from tests.tui.machines import big_sriov_host


@pytest.fixture(scope="session")
def big_root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("big-sriov-host"))
    build(big_sriov_host(), root)
    return root


@pytest.fixture(scope="session")
def ir_off_root(tmp_path_factory) -> str:
    """The workstation with its IOMMU on but no interrupt remapping."""
    root = str(tmp_path_factory.mktemp("ir-off"))
    build(with_changes(intel_workstation(), "ir-off", interrupt_remapping=False), root)
    return root


@pytest.fixture(scope="session")
def facts_of(machine_root, request):
    """facts_of(name) -> HostFacts of a fake machine (tests/fakesys ALL, "big", or "ir-off")."""
    cache = {}
    special = {"big": "big_root", "ir-off": "ir_off_root"}

    def get(name: str):
        if name not in cache:
            root = request.getfixturevalue(special[name]) if name in special else machine_root(name)
            cache[name] = read_host(root)
        return cache[name]

    return get


@pytest.fixture
def session_of(facts_of):
    """session_of(name, choices=Choices(), install=InstallInfo()) -> a fresh Session."""

    def get(name: str, choices: Choices | None = None, install: InstallInfo | None = None) -> Session:
        return Session(facts_of(name), install or InstallInfo(), choices or Choices())

    return get
