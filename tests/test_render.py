"""render: the node's files, byte-identical reruns, grubenv with the real grub-editenv,
units with the real systemd-analyze, atomic writes under kill -9."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import yaml

from installer_ext.render.grubenv import build, merge_kernel_args, parse
from tests.cli import REPO, run
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


def grub_list(target: str) -> dict[str, str]:
    editenv = require_tool("grub-editenv")
    out = subprocess.run([editenv, os.path.join(target, "oem", "grubenv"), "list"], check=True, capture_output=True, text=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


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


def test_grubenv_keeps_other_variables_and_arguments(rendered):
    target, _ = rendered
    env = grub_list(target)
    assert env["saved_entry"] == "cos"
    assert env["third_party_kernel_args"] == (
        "multipath=off console=tty1 intel_iommu=on iommu=pt"
    )
    assert os.path.getsize(os.path.join(target, "oem", "grubenv")) == 1024


def test_a_second_render_is_byte_identical_and_writes_nothing(rendered, machine_root):
    target, cfg = rendered
    before = snapshot(target)
    mtimes = {p: os.stat(os.path.join(target, p)).st_mtime_ns for p in before}
    r = run("render", "--config", cfg, "--root", machine_root("intel-workstation"), "--target", target)
    assert r.rc == 0 and all(line.startswith("unchanged") for line in r.out.splitlines())
    assert snapshot(target) == before
    assert {p: os.stat(os.path.join(target, p)).st_mtime_ns for p in before} == mtimes


def test_a_changed_plan_replaces_only_our_arguments(rendered, machine_root, tmp_path):
    target, cfg = rendered
    (tmp_path / "b.yaml").write_text(CONFIG_B)
    r = run("render", "--config", str(tmp_path / "b.yaml"), "--root", machine_root("intel-workstation"), "--target", target)
    assert r.rc == 0, r.err
    env = grub_list(target)
    assert env["third_party_kernel_args"] == (
        "multipath=off console=tty1 intel_iommu=on iommu=pt video=efifb:off"
    )
    assert env["saved_entry"] == "cos"


def test_a_target_without_grubenv_gets_one_grub_can_read(tmp_path, machine_root):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    target = make_target(tmp_path)
    assert run("render", "--config", str(cfg), "--root", machine_root("intel-workstation"), "--target", target).rc == 0
    assert grub_list(target)["third_party_kernel_args"].startswith("intel_iommu=on iommu=pt")


def test_grubenv_escapes_round_trip_with_grub_editenv(tmp_path):
    editenv = require_tool("grub-editenv")
    env = str(tmp_path / "grubenv")
    subprocess.run([editenv, env, "create"], check=True)
    subprocess.run([editenv, env, "set", "weird=a\\b", "third_party_kernel_args=quiet"], check=True)
    with open(env, "rb") as f:
        data = f.read()
    assert parse(data) == [("weird", "a\\b"), ("third_party_kernel_args", "quiet")]
    merged = merge_kernel_args(data, ["iommu=pt"], [])
    with open(env, "wb") as f:
        f.write(merged)
    out = subprocess.run([editenv, env, "list"], check=True, capture_output=True, text=True).stdout
    assert out.splitlines() == ["weird=a\\b", "third_party_kernel_args=quiet iommu=pt"]
    with pytest.raises(Exception, match="more than the 1024-byte block"):
        build([("x", "y" * 2000)])


def test_yip_file_has_the_stages_and_files_it_claims(rendered):
    target, _ = rendered
    doc = yip(target)
    assert list(doc["stages"]) == ["initramfs", "boot"]
    [heal] = doc["stages"]["boot"]
    assert heal["commands"] == [
        "/usr/bin/python3 /oem/installer-ext/installer-ext.pyz kernel-args --plan /oem/installer-ext/plan.json --grubenv /oem/grubenv"
    ]
    drivers, units = doc["stages"]["initramfs"]
    # On a rescue boot the module options and the udev rule stay out; the units stay in
    # so the binder can record the skipped boot.
    assert "installer_ext.skip=1" in drivers["if"] and "installer_ext.skip" not in units["if"]
    assert {f["path"].split("/")[2] for f in drivers["files"]} == {"modprobe.d", "modules-load.d", "udev"}
    assert units["systemctl"]["enable"] == ["installer-ext-bind.service", "installer-ext-firstboot.service"]
    files = node_files(target)
    assert set(files) == {
        "/etc/modprobe.d/installer-ext-vfio.conf",
        "/etc/modules-load.d/installer-ext-vfio.conf",
        "/etc/udev/rules.d/40-installer-ext-vfio.rules",
        "/etc/systemd/system/installer-ext-bind.service",
        "/etc/systemd/system/installer-ext-bind@.service",
        "/etc/systemd/system/installer-ext-firstboot.service",
    }
    assert all(f["permissions"] == 0o644 and f["owner"] == 0 for f in files.values())
    modprobe = files["/etc/modprobe.d/installer-ext-vfio.conf"]["content"]
    assert "options vfio-pci ids=10de:1aef,10de:2206,8086:1533\n" in modprobe
    for module in ("igb", "nouveau", "nvidia", "snd_hda_intel"):
        assert f"softdep {module} pre: vfio-pci\n" in modprobe


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
            (units / name).write_text(f["content"])
            names.append(str(units / name))
    assert len(names) == 3
    p = subprocess.run([analyze, "verify", *names], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    bind = (units / "installer-ext-bind.service").read_text()
    assert "ExecStart=/usr/bin/python3 /oem/installer-ext/installer-ext.pyz bind --plan /oem/installer-ext/plan.json" in bind
    # The binder itself honours installer_ext.skip=1 and records the skipped boot.
    assert "ConditionKernelCommandLine" not in bind and "TimeoutStartSec=30min" in bind
    firstboot = (units / "installer-ext-firstboot.service").read_text()
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
    assert frag["os"]["additionalKernelArguments"] == " ".join(plan["kernel_args"])
    files = {f["path"]: f for f in frag["os"]["writeFiles"]}
    assert files["/oem/installer-ext/plan.json"]["content"] == plan_text
    with open(os.path.join(target, "oem/91_installer_ext.yaml")) as f:
        assert files["/oem/91_installer_ext.yaml"]["content"] == f.read()
    assert files["/oem/installer-ext/plan.json"]["permissions"] == "0644"
    assert frag["install"]["addons"]["harvester_pcidevices_controller"]["enabled"] is True


def test_a_refused_plan_writes_nothing(tmp_path, machine_root):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG.replace('"0000:03:00.0"', '"0000:00:02.0"'))
    target = make_target(tmp_path)
    r = run("render", "--config", str(cfg), "--root", machine_root("intel-workstation"), "--target", target)
    assert r.rc == 3
    assert "refused: 00:02.0: boot display" in r.err and "nothing written" in r.err
    assert snapshot(target) == {}


def test_strict_undefined_in_templates():
    import jinja2

    from installer_ext.templating import render_template

    with pytest.raises(jinja2.UndefinedError):
        render_template("node/installer-ext-bind.service.j2", plan_path="/x")


def test_kill_during_render_leaves_each_file_old_or_new(tmp_path, machine_root):
    """SIGKILL render at random moments: every file is the old or the new version."""
    root = machine_root("intel-workstation")
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(CONFIG)
    b.write_text(CONFIG_B)
    versions: dict[str, set[bytes]] = {}
    for cfg in (a, b):
        t = make_target(tmp_path / f"ref-{cfg.stem}", {"third_party_kernel_args": "quiet", "x": "1"})
        assert run("render", "--config", str(cfg), "--root", root, "--target", t).rc == 0
        for path, data in snapshot(t).items():
            versions.setdefault(path, set()).add(data)
    target = make_target(tmp_path, {"third_party_kernel_args": "quiet", "x": "1"})
    assert run("render", "--config", str(a), "--root", root, "--target", target).rc == 0
    start = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "installer_ext", "render", "--config", str(b), "--root", root, "--target", target], cwd=REPO, capture_output=True)
    full = time.monotonic() - start
    assert p.returncode == 0
    rng = random.Random(7)
    killed = 0
    for i in range(25):
        cfg = a if i % 2 else b
        proc = subprocess.Popen([sys.executable, "-m", "installer_ext", "render", "--config", str(cfg), "--root", root, "--target", target], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.0) * full)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
        for path, data in snapshot(target).items():
            if os.path.basename(path).startswith(".tmp-"):
                continue  # a temp file of the killed run: never under a real name
            assert data in versions[path], f"{path} is neither the old nor the new version"
    assert killed > 0
