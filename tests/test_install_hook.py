"""The install hook on a fake installed target, and the boot-time kernel-args keeper."""

from __future__ import annotations

import json
import os
import subprocess

import yaml

from tests.cli import run
from tests.conftest import require_tool
from tests.planning import WORKSTATION_INSTALL
from tests.trees import snapshot

SCREEN = {"pciPassthrough": {"enabled": True, "devices": [{"address": "0000:01:00.0"}]}}
CONFIG = {
    "schemeVersion": 1,
    "install": WORKSTATION_INSTALL,
    "os": {"additionalKernelArguments": "console=ttyS0"},
}


def grub(target: str, *args: str) -> str:
    editenv = require_tool("grub-editenv")
    return subprocess.run([editenv, os.path.join(target, "oem", "grubenv"), *args], check=True, capture_output=True, text=True).stdout


def make(tmp_path, config: dict, screen: dict | None):
    target = tmp_path / "target"
    (target / "oem").mkdir(parents=True)
    grub(str(target), "create")
    grub(str(target), "set", "third_party_kernel_args=multipath=off", "saved_entry=cos")
    (tmp_path / "harvester.config").write_text(yaml.safe_dump(config))
    args = ["--config", str(tmp_path / "harvester.config"), "--target", str(target)]
    if screen is not None:
        (tmp_path / "choices.yaml").write_text(yaml.safe_dump(screen))
        args += ["--choices", str(tmp_path / "choices.yaml")]
    return str(target), args


def plan_of(target: str) -> dict:
    with open(os.path.join(target, "oem/installer-ext/plan.json")) as f:
        return json.load(f)


def test_screen_choices_are_planned_with_the_configs_install_section(tmp_path, machine_root):
    target, args = make(tmp_path, CONFIG, SCREEN)
    r = run("install-hook", "--root", machine_root("intel-workstation-iommu-off"), *args)
    assert r.rc == 0, r.err
    assert "choices from the screen" in r.out
    plan = plan_of(target)
    assert [p["address"] for p in plan["passthrough"]] == ["0000:01:00.0", "0000:01:00.1"]
    env = grub(target, "list")
    assert "third_party_kernel_args=multipath=off intel_iommu=on iommu=pt" in env
    assert "saved_entry=cos" in env
    saved = yaml.safe_load(open(os.path.join(target, "oem/installer-ext/install-config.yaml")))
    assert saved["install"] == WORKSTATION_INSTALL and saved["pciPassthrough"] == SCREEN["pciPassthrough"]
    # Twice: nothing changes.
    before = snapshot(target)
    r = run("install-hook", "--root", machine_root("intel-workstation-iommu-off"), *args)
    assert r.rc == 0 and "wrote" not in r.out
    assert snapshot(target) == before


def test_unattended_section_from_the_config(tmp_path, machine_root):
    config = {**CONFIG, "pciPassthrough": {"enabled": True, "devices": [{"kind": "nic"}]}}
    target, args = make(tmp_path, config, None)
    r = run("install-hook", "--root", machine_root("intel-workstation-iommu-off"), *args)
    assert r.rc == 0, r.err
    assert "choices from the config" in r.out
    assert [p["address"] for p in plan_of(target)["passthrough"]] == ["0000:03:00.0"]


def test_no_choices_nothing_to_do(tmp_path, machine_root):
    target, args = make(tmp_path, CONFIG, None)
    r = run("install-hook", "--root", machine_root("intel-workstation-iommu-off"), *args)
    assert r.rc == 0 and "nothing to do" in r.out
    assert not os.path.exists(os.path.join(target, "oem/installer-ext"))


def test_a_refused_choice_stops_the_hook_with_exit_3(tmp_path, machine_root):
    target, args = make(tmp_path, CONFIG, {"pciPassthrough": {"enabled": True, "devices": [{"address": "0000:00:1f.6"}]}})
    r = run("install-hook", "--root", machine_root("intel-workstation-iommu-off"), *args)
    assert r.rc == 3 and "management network eno1" in r.err
    assert not os.path.exists(os.path.join(target, "oem/installer-ext/plan.json"))


def test_oem_partition_mounted_on_its_own_and_the_app_copied(tmp_path, machine_root):
    target, args = make(tmp_path, CONFIG, SCREEN)
    app = tmp_path / "installer-ext.pyz"
    app.write_bytes(b"PK fake app")
    args = [a if a != target else "" for a in args]
    args = [a for a in args if a not in ("--target", "")]
    r = run("install-hook", "--root", machine_root("intel-workstation-iommu-off"), "--oem", os.path.join(target, "oem"), "--app", str(app), *args)
    assert r.rc == 0, r.err
    assert open(os.path.join(target, "oem/installer-ext/installer-ext.pyz"), "rb").read() == b"PK fake app"
    assert os.stat(os.path.join(target, "oem/installer-ext/installer-ext.pyz")).st_mode & 0o777 == 0o755
    assert os.path.isfile(os.path.join(target, "oem/91_installer_ext.yaml"))


def test_kernel_args_keeper_restores_what_harv_install_overwrote(tmp_path, machine_root):
    target, args = make(tmp_path, CONFIG, SCREEN)
    assert run("install-hook", "--root", machine_root("intel-workstation-iommu-off"), *args).rc == 0
    plan = os.path.join(target, "oem/installer-ext/plan.json")
    env = os.path.join(target, "oem/grubenv")
    # harv-install's update_grub_settings runs after the hooks and sets the variable anew.
    grub(target, "set", "third_party_kernel_args=console=ttyS0")
    r = run("kernel-args", "--plan", plan, "--grubenv", env)
    assert r.rc == 0 and "restored" in r.out
    assert "third_party_kernel_args=console=ttyS0 intel_iommu=on iommu=pt" in grub(target, "list")
    r = run("kernel-args", "--plan", plan, "--grubenv", env)
    assert r.rc == 0 and "in place" in r.out
    r = run("kernel-args", "--plan", str(tmp_path / "harvester.config"), "--grubenv", env)
    assert r.rc == 2 and "not valid JSON" in r.err
