"""`installer-ext precheck`: an automatic install's section, checked on the ISO before the
installer starts, from the config behind harvester.install.config_url."""

from __future__ import annotations

import os

import pytest
import yaml

from tests.cli import run
from tests.httpserve import serve
from tests.planning import WORKSTATION_INSTALL
from tests.fakesys.machines import ISO_CMDLINE


def live(tmp_path, root: str, extra: str) -> str:
    """The machine `root` with the live ISO's kernel line (sys/ and proc/ linked)."""
    m = tmp_path / "live"
    (m / "proc").mkdir(parents=True)
    os.symlink(os.path.join(root, "sys"), m / "sys")
    for n in os.listdir(os.path.join(root, "proc")):
        if n != "cmdline":
            os.symlink(os.path.join(root, "proc", n), m / "proc" / n)
    (m / "proc" / "cmdline").write_text(f"{ISO_CMDLINE} {extra}\n")
    return str(m)


@pytest.mark.parametrize("section, rc, words", [
    ({"enabled": True, "devices": [{"address": "0000:01:00.0"}]}, 0, "section is valid: 2 functions to VMs"),
    ({"enabled": True, "devices": [{"address": "0000:00:1f.6"}]}, 3, "management network eno1"),
    ({"enabled": True, "devices": [{"adress": "0000:01:00.0"}]}, 2, "unknown key"),
])
def test_the_section_is_checked_against_this_machine(tmp_path, machine_root, section, rc, words):
    config = {"install": {**WORKSTATION_INSTALL, "automatic": True}, "pciPassthrough": section}
    with serve({"/c.yaml": yaml.safe_dump(config).encode()}) as (base, requested):
        root = live(tmp_path, machine_root("intel-workstation-iommu-off"),
                    f"harvester.install.automatic=true harvester.install.config_url={base}/c.yaml")
        r = run("precheck", "--root", root, "--tries", "1")
    assert r.rc == rc and words in (r.out + r.err), r.out + r.err
    assert requested == ["/c.yaml"]


def test_nothing_to_check(tmp_path, machine_root):
    root = live(tmp_path, machine_root("intel-workstation-iommu-off"), "")
    r = run("precheck", "--root", root)
    assert r.rc == 0 and "not an automatic install" in r.out


def test_an_unreachable_config_is_one_line(tmp_path, machine_root):
    with serve({}) as (base, requested):
        root = live(tmp_path, machine_root("intel-workstation-iommu-off"),
                    f"harvester.install.automatic=true harvester.install.config_url={base}/gone.yaml")
        r = run("precheck", "--root", root, "--tries", "2")
    # a 404 is the server's answer: not asked again
    assert r.rc == 1 and r.err.strip().splitlines() == [f"installer-ext: install config {base}/gone.yaml: cannot fetch it: HTTP 404 Not Found (1 try)"]
    assert requested == ["/gone.yaml"]
    # nobody listening: asked `--tries` times
    closed = base.rsplit(":", 1)[0] + ":1"
    root = live(tmp_path / "b", machine_root("intel-workstation-iommu-off"),
                f"harvester.install.automatic=true harvester.install.config_url={closed}/c.yaml")
    r = run("precheck", "--root", root, "--tries", "2")
    assert r.rc == 1 and "Connection refused (2 tries)" in r.err and len(r.err.strip().splitlines()) == 1
