"""The command's contract: options and defaults, node name, exit codes without a cluster."""

from __future__ import annotations

import argparse
import socket

import pytest

from installer_ext.errors import BadInput
from installer_ext.commands import firstboot as command
from installer_ext.firstboot.inputs import node_name


def parse(*args: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    command.add_arguments(p)
    return p.parse_args(list(args))


def test_defaults_follow_the_root() -> None:
    o = command.options(parse("--root", "/mnt/node"))
    assert o.kubeconfig == "/etc/rancher/rke2/rke2.yaml"  # RKE2's, never under --root
    assert o.plan == "/mnt/node/oem/installer-ext/plan.json"
    assert o.state_dir == "/mnt/node/usr/local/lib/installer-ext/firstboot"
    assert (o.deadline, o.claims_wait, o.allocatable_wait) == (900.0, 300.0, 300.0)  # < the unit's 30 min
    o = command.options(parse())
    assert o.plan == "/oem/installer-ext/plan.json" and o.state_dir == "/usr/local/lib/installer-ext/firstboot"


@pytest.mark.parametrize("bad", [["--deadline", "-1"], ["--deadline", "soon"], ["--retries", "0"],
                                 ["--nvidia-smi-timeout", "inf"]])
def test_bad_numbers_are_refused_by_argparse(bad: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        parse(*bad)
    assert exc.value.code == 2 and bad[1] in capsys.readouterr().err


def test_node_name_sources(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "harv-from-uname")
    assert node_name(str(tmp_path), None) == "harv-from-uname"
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "hostname").write_text("harv-7\n")
    assert node_name(str(tmp_path), None) == "harv-7"
    assert node_name(str(tmp_path), "override") == "override"
    (tmp_path / "etc" / "hostname").write_text("Harv_7\n")
    with pytest.raises(BadInput, match=r"etc/hostname: 'Harv_7' is not a valid Kubernetes node name"):
        node_name(str(tmp_path), None)


def test_progress_handler_is_removed_after_the_run() -> None:
    import logging

    logger = logging.getLogger("installer_ext")
    before = (list(logger.handlers), logger.level, logger.propagate)
    with command.progress(quiet=False):
        assert len(logger.handlers) == len(before[0]) + 1 and not logger.propagate
    assert (list(logger.handlers), logger.level, logger.propagate) == before
