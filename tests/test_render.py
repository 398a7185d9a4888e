"""render: the node's files, byte-identical reruns, grubenv with the real grub-editenv,
units with the real systemd-analyze, atomic writes under kill -9."""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from tests.cli import run
from tests.conftest import require_tool
from tests.trees import snapshot

CONFIG = """\
install:
  device: /dev/sda
  dataDisk: /dev/nvme0n1
  managementInterface:
    interfaces: [{name: eno1}]
pciPassthrough:
  enabled: true
  gpuDrivers: false
  devices:
    - address: "0000:01:00.0"
    - address: "0000:03:00.0"
"""
CONFIG_B = CONFIG.replace('    - address: "0000:03:00.0"\n', "") + "  extraKernelArgs: [video=efifb:off]\n"


def make_target(tmp_path, grub_vars: dict[str, str] | None = None) -> str:
    target = tmp_path / "target"
    (target / "oem").mkdir(parents=True)
    if grub_vars is not None:
        editenv = require_tool("grub-editenv")
        env = str(target / "oem" / "grubenv")
        subprocess.run([editenv, env, "create"], check=True)
        if grub_vars:
            subprocess.run([editenv, env, "set", *(f"{k}={v}" for k, v in grub_vars.items())], check=True)
    return str(target)


@pytest.fixture
def rendered(tmp_path, machine_root):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(CONFIG)
    target = make_target(tmp_path, {"third_party_kernel_args": "multipath=off console=tty1", "saved_entry": "cos"})
    r = run("render", "--config", str(cfg), "--root", machine_root("intel-workstation"), "--target", target)
    assert r.rc == 0, r.err
    return target, str(cfg)


def yip(target: str) -> dict:
    with open(os.path.join(target, "oem", "91_installer_ext.yaml")) as f:
        return yaml.safe_load(f)


def node_files(target: str) -> dict[str, dict]:
    return {f["path"]: f for step in yip(target)["stages"]["initramfs"] for f in step["files"]}


PROGRAM = "/usr/local/lib/installer-ext/bin/installer-ext"
SUMS_CHECK = "grep ' /oem/' /oem/installer-ext/SHA256SUMS | sha256sum --status -c -"


def test_a_second_render_is_byte_identical_and_writes_nothing(rendered, machine_root):
    target, cfg = rendered
    before = snapshot(target)
    mtimes = {p: os.stat(os.path.join(target, p)).st_mtime_ns for p in before}
    r = run("render", "--config", cfg, "--root", machine_root("intel-workstation"), "--target", target)
    assert r.rc == 0 and all(line.startswith("unchanged") for line in r.out.splitlines())
    assert snapshot(target) == before
    assert {p: os.stat(os.path.join(target, p)).st_mtime_ns for p in before} == mtimes


def test_yip_file_has_the_stages_and_files_it_claims(rendered):
    target, _ = rendered
    doc = yip(target)
    assert list(doc["stages"]) == ["initramfs", "boot"]
    [heal] = doc["stages"]["boot"]
    assert heal["commands"] == [
        f"{PROGRAM} kernel-args --plan /oem/installer-ext/plan.json --grubenv /oem/grubenv"
    ]
    report, drivers, units = doc["stages"]["initramfs"]
    # Every step runs only while the manifest matches the set it belongs to.
    for step in (report, drivers, units, heal):
        assert step["if"].endswith(SUMS_CHECK), step["name"]
    # On a rescue boot the module options and the udev rule stay out; the units stay in
    # so the binder can record the skipped boot.
    assert "installer_ext.skip=1" in drivers["if"] and "installer_ext.skip" not in units["if"]
    assert {f["path"].split("/")[2] for f in drivers["files"]} == {"modprobe.d", "modules-load.d", "udev"}
    assert units["systemctl"]["enable"] == [
        "installer-ext-bind.service", "installer-ext-firstboot.service", "installer-ext-reconcile.timer"]
    assert report["systemctl"]["enable"] == ["installer-ext-report.service"]
    files = node_files(target)
    assert set(files) == {
        "/etc/modprobe.d/installer-ext-vfio.conf",
        "/etc/modules-load.d/installer-ext-vfio.conf",
        "/etc/udev/rules.d/40-installer-ext-vfio.rules",
        "/etc/systemd/system/installer-ext-bind.service",
        "/etc/systemd/system/installer-ext-bind@.service",
        "/etc/systemd/system/installer-ext-firstboot.service",
        "/etc/systemd/system/installer-ext-reconcile.service",
        "/etc/systemd/system/installer-ext-reconcile.timer",
        "/etc/systemd/system/installer-ext-report.service",
    }
    assert all(f["permissions"] == 0o644 and f["owner"] == 0 for f in files.values())
    modprobe = files["/etc/modprobe.d/installer-ext-vfio.conf"]["content"]
    assert "options vfio-pci ids=10de:1aef,10de:2206,8086:1533\n" in modprobe
    for module in ("igb", "nouveau", "nvidia", "snd_hda_intel"):
        assert f"softdep {module} pre: vfio-pci\n" in modprobe
    # File contents are literal blocks, the modes octal: readable, and YAML by construction.
    with open(os.path.join(target, "oem", "91_installer_ext.yaml")) as f:
        text = f.read()
    assert "content: |" in text and "permissions: 0644" in text


def test_every_program_a_unit_rule_or_step_runs_exists_in_the_target(rendered):
    """The units, the yip steps and the udev rule run installer-ext through one launcher,
    and render lays it down with the application beside it."""
    target, _ = rendered
    doc = yip(target)
    commands = [c for step in doc["stages"]["boot"] for c in step["commands"]]
    for f in node_files(target).values():
        for line in f["content"].splitlines():
            if line.startswith("ExecStart="):
                commands.append(line.split("=", 1)[1])
            assert "python3" not in line and ".pyz" not in line, line
    programs = {c.split()[0] for c in commands}
    assert PROGRAM in programs and programs <= {PROGRAM, "/usr/bin/cat"}
    launcher = os.path.join(target, PROGRAM.lstrip("/"))
    assert os.access(launcher, os.X_OK)
    assert os.path.isfile(os.path.join(target, "usr/local/lib/installer-ext/installer-ext.pyz"))


def test_udev_rule_binds_only_address_bound_devices_with_their_ids(tmp_path, machine_root):
    # One of two identical GPUs: bound by address, so the rule names each function.
    root = machine_root("intel-dual-gpu")
    (tmp_path / "d.yaml").write_text(CONFIG.replace('    - address: "0000:03:00.0"\n', ""))
    target = make_target(tmp_path)
    assert run("render", "--config", str(tmp_path / "d.yaml"), "--root", root, "--target", target).rc == 0
    rules = node_files(target)["/etc/udev/rules.d/40-installer-ext-vfio.rules"]["content"]
    device_lines = [l for l in rules.splitlines() if l.startswith("KERNEL==")]
    assert device_lines == [
        f'KERNEL=="{a}", ATTR{{vendor}}=="0x10de", ATTR{{device}}=="0x{d}", ATTR{{driver_override}}="vfio-pci", '
        f'TAG+="systemd", ENV{{SYSTEMD_WANTS}}+="installer-ext-bind@%k.service"'
        for a, d in (("0000:01:00.0", "2206"), ("0000:01:00.1", "1aef"))
    ]
    assert 'IMPORT{cmdline}="installer_ext.skip"' in rules


def test_units_pass_systemd_analyze_verify(rendered, tmp_path):
    analyze = require_tool("systemd-analyze")
    target, _ = rendered
    units = tmp_path / "units"
    units.mkdir()
    names = []
    for path, f in node_files(target).items():
        if path.startswith("/etc/systemd/system/"):
            name = os.path.basename(path).replace("@.service", "@test-instance.service")
            # systemd-analyze checks that each command exists and is executable: point
            # it at the launcher as laid down in the target.
            (units / name).write_text(f["content"].replace(PROGRAM, os.path.join(target, PROGRAM.lstrip("/"))))
            names.append(str(units / name))
    assert len(names) == 6
    p = subprocess.run([analyze, "verify", *names], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    bind = node_files(target)["/etc/systemd/system/installer-ext-bind.service"]["content"]
    assert f"ExecStart={PROGRAM} bind --plan /oem/installer-ext/plan.json" in bind
    # The binder itself honours installer_ext.skip=1 and records the skipped boot.
    assert "ConditionKernelCommandLine" not in bind and "TimeoutStartSec=30min" in bind
    firstboot = node_files(target)["/etc/systemd/system/installer-ext-firstboot.service"]["content"]
    assert "ConditionPathExists=!/usr/local/lib/installer-ext/firstboot/done" in firstboot
    assert "ConditionKernelCommandLine=!installer_ext.skip=1" in firstboot
    # A broken unit is caught by the same check (the check can fail).
    (units / "broken.service").write_text(bind.replace("ExecStart=", "ExecStar="))
    assert subprocess.run([analyze, "verify", str(units / "broken.service")], capture_output=True).returncode != 0


def test_harvester_fragment_carries_the_same_result(rendered):
    target, _ = rendered
    with open(os.path.join(target, "oem/installer-ext/harvester-config-fragment.yaml")) as f:
        frag = yaml.safe_load(f)
    with open(os.path.join(target, "oem/installer-ext/plan.json")) as f:
        plan_text = f.read()
    import json

    plan = json.loads(plan_text)
    # Harvester's bootargs.cfg has intel_iommu=on iommu=pt: nothing to add, and
    # harv-install keeps its default multipath=off.
    assert plan["kernel_args"] == ["intel_iommu=on", "iommu=pt"]
    assert "additionalKernelArguments" not in frag["os"]
    files = {f["path"]: f for f in frag["os"]["writeFiles"]}
    assert files["/oem/installer-ext/plan.json"]["content"] == plan_text
    with open(os.path.join(target, "oem/91_installer_ext.yaml")) as f:
        assert files["/oem/91_installer_ext.yaml"]["content"] == f.read()
    assert files["/oem/installer-ext/plan.json"]["permissions"] == "0644"
    assert frag["install"]["addons"]["harvester_pcidevices_controller"]["enabled"] is True


def test_harvester_fragment_adds_only_what_bootargs_lacks_and_keeps_multipath_off(tmp_path, machine_root):
    """additionalKernelArguments replaces harv-install's default multipath=off
    (harvester-installer pkg/console/util.go doInstall): the fragment keeps it and adds
    only the arguments Harvester's bootargs.cfg does not set."""
    cfg = tmp_path / "b.yaml"
    cfg.write_text(CONFIG_B)
    target = make_target(tmp_path)
    assert run("render", "--config", str(cfg), "--root", machine_root("intel-workstation"), "--target", target).rc == 0
    with open(os.path.join(target, "oem/installer-ext/harvester-config-fragment.yaml")) as f:
        frag = yaml.safe_load(f)
    assert frag["os"]["additionalKernelArguments"] == "multipath=off video=efifb:off"


def test_a_refused_plan_writes_nothing(tmp_path, machine_root):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG.replace('"0000:03:00.0"', '"0000:00:02.0"'))
    target = make_target(tmp_path)
    r = run("render", "--config", str(cfg), "--root", machine_root("intel-workstation"), "--target", target)
    assert r.rc == 3
    assert "refused: 00:02.0: boot display" in r.err and "nothing written" in r.err
    assert snapshot(target) == {}
    assert "Traceback" not in r.err


def test_strict_undefined_in_templates():
    import jinja2

    from installer_ext.templating import render_template

    with pytest.raises(jinja2.UndefinedError):
        render_template("node/installer-ext-bind.service.j2", plan_path="/x")
