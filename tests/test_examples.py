"""The bundled example machine and configs stay what the builder and the schema say."""

from __future__ import annotations

import glob
import os

from installer_ext.config.load import load_config
from tests.cli import REPO, run
from tests.fakesys import build
from tests.fakesys.machines import intel_workstation_iommu_off


def tree(root: str) -> dict[str, str | bytes]:
    out: dict[str, str | bytes] = {}
    for dirpath, dirnames, files in os.walk(root):
        for name in files + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                out[rel] = "-> " + os.readlink(path)
            else:
                with open(path, "rb") as f:
                    out[rel] = f.read()
    return out


def test_example_machine_matches_the_builder(tmp_path):
    fresh = build(intel_workstation_iommu_off(), str(tmp_path / "w"))
    assert tree(os.path.join(REPO, "examples", "workstation")) == tree(fresh), (
        "examples/workstation is stale: python -m tests.fakesys intel-workstation-iommu-off examples/workstation"
    )


def test_example_configs_validate_and_plan():
    configs = glob.glob(os.path.join(REPO, "examples", "*.yaml"))
    assert configs
    for path in configs:
        config = load_config(path)  # raises BadInput if the schema rejects it
        assert config.warnings == (), path
    r = run("plan", "--root", os.path.join(REPO, "examples", "workstation"), "--config", os.path.join(REPO, "examples", "workstation.yaml"))
    assert r.rc == 0, r.err
    assert "01:00.1  10de:1aef  audio" in r.out and "same-group" in r.out
