"""Fixtures: a throwaway PKI per session, a fake API server per test, fast options."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.kube.certs import Pki, make_pki
from tests.kube.fakeapi import FakeApiServer
from tests.kube.hosts import Host

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Every wait in milliseconds: the tests exercise the logic, not the clock.
FAST = ["--poll-interval", "0.005", "--poll-max", "0.02", "--deadline", "5", "--claims-wait", "3",
        "--addon-wait", "3", "--cluster-wait", "10", "--allocatable-wait", "3", "--request-timeout", "3",
        "--nvidia-smi-timeout", "2"]


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture(scope="session")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Another CA: its kubeconfig trusts the wrong server, its client is unknown."""
    return make_pki(str(tmp_path_factory.mktemp("pki-other")), ca_name="some-other-ca")


@pytest.fixture
def api(pki: Pki) -> Iterator[FakeApiServer]:
    server = FakeApiServer(pki).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kubeconfig(api: FakeApiServer, tmp_path) -> str:
    return api.kubeconfig(str(tmp_path / "rke2.yaml"))


@pytest.fixture
def nvidia_smi_ok(tmp_path) -> str:
    return fake_tool(str(tmp_path / "bin" / "nvidia-smi"), "echo 'NVIDIA-SMI 570.86.15'\nexit 0\n")


def fake_tool(path: str, body: str) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return path


def argv(host: Host, kubeconfig: str, *extra: str, nvidia_smi: str | None = None, role: str = "server") -> list[str]:
    """A first boot on `host` with the admin `kubeconfig` (a server node, unless `role`
    says otherwise) and every wait in milliseconds."""
    out = ["--root", host.root, "--kubeconfig", kubeconfig, "--role", role, *FAST]
    if nvidia_smi:
        out += ["--nvidia-smi", nvidia_smi]
    return out + list(extra)


def run_inprocess(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from installer_ext.cli import main

    rc = main(["firstboot", *args])
    return rc, capsys.readouterr().err


def start_subprocess(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "installer_ext", "firstboot", *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
