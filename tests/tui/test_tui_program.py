"""The whole program in a pseudo-terminal, read with pyte, on the fake machines: what a
user sees and what ends up in --output."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from installer_ext.config.load import load_config
from installer_ext.config.model import Choices, InstallInfo, Selector
from installer_ext.plan.planner import make_plan
from installer_ext.tui.reader import read_host
from tests.tui.ptyscreen import REPO, TuiRun, command


@pytest.fixture
def tui():
    runs: list[TuiRun] = []

    def start(*args, **kw) -> TuiRun:
        run = TuiRun(*args, **kw)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.close()


def written(path) -> dict:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def test_select_gpu_try_blocked_confirm_at_80x24_on_the_linux_console(tui, machine_root, tmp_path):
    out = tmp_path / "pt.yaml"
    run = tui("--root", machine_root("intel-workstation"), "--output", str(out))
    run.wait_for("[ ] Enable PCI passthrough")
    assert "Use" not in run.text  # nothing but the screen
    run.send("space", wait="[X] Enable PCI passthrough")
    run.send("tab")
    run.move_to("0000:01:00.0")
    run.send("space", wait="whole IOMMU group 1")
    assert "[x] 01:00.0" in run.text and "[x] 01:00.1" in run.text
    assert "to VMs with 01:00.0" in run.text
    run.move_to("0000:00:02.0")
    assert "Blocked: boot display (boot_vga)" in run.text
    run.send("space", wait="cannot be given to VMs")
    assert "boot display" in run.flat
    assert " -  00:02.0" in run.text  # still not selected
    run.send("enter", wait="Confirm: what will be written")
    # The kernel arguments are the planner's for these choices, word for word.
    plan = make_plan(
        read_host(machine_root("intel-workstation")),
        Choices(enabled=True, devices=(Selector(address="0000:01:00.0"),)),
        InstallInfo(),
    )
    assert "intel_iommu=on" in plan.kernel_args
    assert " ".join(plan.kernel_args) in run.flat
    assert "settings: gpu-enable=false, pci-pt-enable=true" in run.text
    run.send("enter", settle=False)
    assert run.finish() == 0
    doc = written(out)
    assert list(doc) == ["pciPassthrough"]
    section = doc["pciPassthrough"]
    assert section["enabled"] is True and section["gpuDrivers"] is False
    assert section["devices"] == [{"address": "0000:01:00.0"}]
    assert section["sriov"] == []
    assert load_config(str(out)).choices.enabled


def test_set_vfs_and_gpu_drivers_on_a_big_terminal(tui, machine_root, tmp_path):
    out = tmp_path / "pt.yaml"
    run = tui("--root", machine_root("amd-epyc-server"), "--output", str(out), rows=60, cols=200, term="xterm-256color")
    run.wait_for("[ ] Enable PCI passthrough")
    run.send("space", "right", "space", wait="[X] Install GPU drivers / device plugin")
    run.send("tab")
    run.to_vf_field("0000:02:00.1")
    run.send("9", "9", wait="is more than 0000:02:00.1 supports (sriov_totalvfs 64)")
    run.send("enter", wait="Cannot go on:")  # Enter validates: the red panel stays
    assert "Confirm" not in run.text
    run.send("backspace", wait="at boot 9 for VMs")
    assert "sriov_totalvfs" not in run.text
    run.move_to("0000:04:00.0")
    run.send("space", wait="whole IOMMU group 16")
    assert "kept for containers" in run.text  # the other W5700 stays on the host
    run.send("enter", wait="Confirm: what will be written")
    assert "02:00.1: 9 of 64 VFs, to vfio-pci for VMs" in run.text
    assert "03:00.0  AMD/ATI Navi 10 [Radeon Pro W5700X]" in run.text
    assert "device plugin expected: amd" in run.text
    run.send("enter", settle=False)
    assert run.finish() == 0
    section = written(out)["pciPassthrough"]
    assert section["gpuDrivers"] is True
    assert section["devices"] == [{"address": "0000:04:00.0"}]
    assert section["sriov"] == [{"address": "0000:02:00.1", "numVfs": 9, "vfsToVfio": True}]


def test_prefilled_from_config_enter_enter_writes_the_same_choices(tui, machine_root, tmp_path):
    config = tmp_path / "harvester.yaml"
    config.write_text(
        """
schemeVersion: 1
install:
  mode: create
  device: /dev/sda
  managementInterface:
    interfaces:
      - name: eno1
pciPassthrough:
  enabled: true
  gpuDrivers: true
  devices:
    - kind: gpu
  hostGpus: []
  devicePlugin: nvidia
  harvester: {settings: true, addon: false, claims: true}
""",
        encoding="utf-8",
    )
    out = tmp_path / "pt.yaml"
    run = tui("--root", machine_root("intel-workstation"), "--config", str(config), "--output", str(out))
    run.wait_for("[X] Enable PCI passthrough")
    assert "[X] Install GPU drivers / device plugin" in run.text
    assert "not chosen yet" not in run.text  # the install section is known
    run.send("tab")
    run.move_to("0000:00:1f.6")
    assert "management net eno1" in run.text
    run.send("enter", wait="Confirm: what will be written")
    run.send("enter", settle=False)
    assert run.finish() == 0
    assert load_config(str(out)).choices.to_section() == load_config(str(config)).choices.to_section()


def test_esc_twice_backs_out_and_writes_nothing(tui, machine_root, tmp_path):
    out = tmp_path / "pt.yaml"
    run = tui("--root", machine_root("intel-workstation"), "--output", str(out))
    run.wait_for("Enable PCI passthrough")
    run.send("esc", wait="Esc again leaves")
    run.send("esc", settle=False)
    assert run.finish() == 1
    assert not out.exists()


def test_esc_on_the_preview_goes_back_to_the_devices(tui, machine_root, tmp_path):
    out = tmp_path / "pt.yaml"
    run = tui("--root", machine_root("intel-workstation"), "--output", str(out))
    run.wait_for("Enable PCI passthrough")
    run.send("enter", wait="Confirm: what will be written")
    run.send("esc", wait="Enable PCI passthrough")
    assert "Confirm" not in run.text
    run.send("enter", wait="Confirm: what will be written")
    run.send("enter", settle=False)
    assert run.finish() == 0
    assert written(out)["pciPassthrough"]["enabled"] is False


def test_without_colour_the_screen_uses_no_colour_and_reverse_video_for_focus(tui, machine_root, tmp_path):
    run = tui("--root", machine_root("intel-workstation"), "--output", str(tmp_path / "o.yaml"), env={"NO_COLOR": "1"})
    run.wait_for("Enable PCI passthrough")
    run.send("tab")
    run.move_to("0000:01:00.0")
    colours = {(c.fg, c.bg) for line in run.screen.buffer.values() for c in line.values()}
    assert colours == {("default", "default")}
    row = next(y for y, line in enumerate(run.lines) if "01:00.0   gpu" in line)
    assert all(run.screen.buffer[row][x].reverse for x in range(4, 30))
    other = next(y for y, line in enumerate(run.lines) if "01:00.1   audio" in line)
    assert not run.screen.buffer[other][5].reverse
    run.send("esc")
    run.send("esc", settle=False)
    assert run.finish() == 1


def test_colour_on_the_linux_console_uses_dark_backgrounds_only(tui, machine_root, tmp_path):
    run = tui("--root", machine_root("intel-workstation"), "--output", str(tmp_path / "o.yaml"), term="linux")
    run.wait_for("Enable PCI passthrough")
    backgrounds = {c.bg for line in run.screen.buffer.values() for c in line.values()}
    assert "blue" in backgrounds  # the title bar: colour is on
    assert not any(bg.startswith("bright") for bg in backgrounds)
    assert not any(c.blink for line in run.screen.buffer.values() for c in line.values())


@pytest.mark.slow
def test_big_host_shows_progress_then_the_folded_list_and_filters(tui, big_root, tmp_path):
    run = tui("--root", big_root, "--output", str(tmp_path / "o.yaml"))
    run.wait_for("4101 functions", timeout=30)
    assert b"Reading the PCI devices" in run.raw
    assert sum(1 for line in run.lines if "iavf" in line) == 0  # VFs folded
    run.send("tab", "/", wait="Filter:")
    run.send(*"3c:01.7", wait="1 of 4101 match")
    assert "3c:01.7 nic" in run.text
    run.send("enter")
    assert run.focus_line().startswith(" 3c:01.7 8086:1889")
    run.send("esc", wait="4101 functions")  # clears the filter, stays
    run.send("esc", wait="Esc again leaves")
    run.send("esc", settle=False)
    assert run.finish() == 1


def test_logs_wait_until_the_screen_is_closed(tui, machine_root, tmp_path):
    run = tui("--root", machine_root("intel-workstation"), "--output", str(tmp_path / "o.yaml"), "--debug")
    run.wait_for("Enable PCI passthrough")
    shown = bytes(run.raw)
    assert b"installer_ext" not in shown and b"Traceback" not in shown
    run.send("enter", wait="Confirm")
    run.send("enter", settle=False)
    assert run.finish() == 0
    tail = bytes(run.raw[len(shown):])
    assert b"installer_ext.tui.app: screen ready" in tail
    # ... written after urwid gave the terminal back (cursor shown again).
    assert tail.index(b"screen ready") > tail.rindex(b"\x1b[?25h")


def _plain(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *command(), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": REPO},
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def test_bad_config_is_exit_2_with_one_line_per_problem(machine_root, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("pciPassthrough:\n  enabled: maybe\n  devices:\n    - address: 0000:zz:00.0\n", encoding="utf-8")
    p = _plain("--root", machine_root("intel-workstation"), "--config", str(config))
    assert p.returncode == 2
    lines = p.stderr.splitlines()
    assert len(lines) == 2 and all(line.startswith("installer-ext: pciPassthrough.") for line in lines)
    assert "Traceback" not in p.stderr and p.stdout == ""
    p = _plain("--root", machine_root("intel-workstation"), "--config", str(tmp_path / "missing.yaml"))
    assert p.returncode == 2 and len(p.stderr.splitlines()) == 1


def test_a_config_naming_what_the_host_lacks_is_exit_2_after_reading_it(tui, machine_root, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("pciPassthrough:\n  enabled: true\n  devices:\n    - address: '0000:99:00.0'\n", encoding="utf-8")
    run = tui("--root", machine_root("intel-workstation"), "--config", str(config))
    assert run.finish() == 2
    assert "installer-ext: pciPassthrough.devices[0]: no PCI function 0000:99:00.0 on this host" in run.raw.decode()
    assert "Traceback" not in run.raw.decode()


def test_without_a_terminal_it_says_so(machine_root):
    p = _plain("--root", machine_root("intel-workstation"))
    assert p.returncode == 1
    assert p.stderr.startswith("installer-ext: tui: needs a terminal") and "Traceback" not in p.stderr


def test_without_output_the_section_is_printed_after_the_screen(tui, machine_root):
    run = tui("--root", machine_root("intel-workstation"))
    run.wait_for("Enable PCI passthrough")
    run.send("enter", wait="Enter prints this on leaving the screen")
    run.send("enter", settle=False)
    assert run.finish() == 0
    tail = run.raw.decode()[run.raw.decode().rindex("\x1b[?25h") :]
    assert "pciPassthrough:\r\n  enabled: false\r\n" in tail
