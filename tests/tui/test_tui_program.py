"""The whole program in a pseudo-terminal, read with pyte, on the fake machines: what a
user of `installer-ext tui` sees, what ends up in --output, and the line it leaves."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

from installer_ext.config.load import load_config
from installer_ext.config.model import Choices, InstallInfo, Selector
from installer_ext.plan.planner import make_plan
from installer_ext.tui import hints
from installer_ext.tui.reader import read_host
from tests.cli import run as cli
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


def to_list(run: TuiRun, short: str = "01:00.0") -> None:
    """Tab from the switches to the list (the focus lands on its first function)."""
    run.send("tab", wait=lambda r: r.focused(short))


def test_select_gpu_try_blocked_confirm_at_80x24_on_the_linux_console(tui, machine_root, tmp_path):
    out = tmp_path / "pt.yaml"
    run = tui("--root", machine_root("intel-workstation"), "--output", str(out))
    run.wait_for("[ ] Enable PCI passthrough")
    assert "Use" not in run.text  # nothing but the screen
    run.send("space", wait="[X] Enable PCI passthrough")
    to_list(run)
    run.send("space", wait="whole IOMMU group 1")
    assert "[x] 01:00.0" in run.text and "[x] 01:00.1" in run.text
    assert "to VMs with 01:00.0" in run.text
    run.move_to("0000:00:02.0")
    assert "Blocked: boot display (boot_vga)" in run.flat
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
    run.send("enter")
    assert run.finish() == 0
    assert run.after.strip() == f"installer-ext: wrote {out}: the pciPassthrough section"
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
    run.send("space", wait="[X] Enable PCI passthrough")
    run.send("right", wait=lambda r: r.focus_line().startswith(" Install GPU drivers"))
    run.send("space", wait="[X] Install GPU drivers / device plugin")
    to_list(run, "00:14.0")
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
    run.send("enter")
    assert run.finish() == 0
    section = written(out)["pciPassthrough"]
    assert section["gpuDrivers"] is True
    assert section["devices"] == [{"address": "0000:04:00.0"}]
    assert section["sriov"] == [{"address": "0000:02:00.1", "numVfs": 9, "vfsToVfio": True}]


HARVESTER_CONFIG = """\
# node 3 of the lab cluster
schemeVersion: 1
install:
  mode: create
  device: /dev/sda          # the SATA disk
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
# the OS part
os:
  hostname: node3
"""


def test_prefilled_from_config_enter_enter_writes_the_config_back_with_the_same_choices(tui, machine_root, tmp_path):
    config = tmp_path / "harvester.yaml"
    config.write_text(HARVESTER_CONFIG, encoding="utf-8")
    out = tmp_path / "out.yaml"
    run = tui("--root", machine_root("intel-workstation"), "--config", str(config), "--output", str(out), rows=60, cols=160)
    run.wait_for("[X] Enable PCI passthrough")
    assert "[X] Install GPU drivers / device plugin" in run.text
    assert "not chosen yet" not in run.text  # the install section is known
    to_list(run)
    run.move_to("0000:00:1f.6")
    assert "management net eno1" in run.text
    run.send("enter", wait="Confirm: what will be written")
    assert f"Enter writes to {out}: {config} with this pciPassthrough section" in run.flat
    run.send("enter")
    assert run.finish() == 0
    assert run.after.strip() == f"installer-ext: wrote {out}: {config} with its pciPassthrough section replaced"
    assert load_config(str(out)).choices.to_section() == load_config(str(config)).choices.to_section()
    text = out.read_text(encoding="utf-8")
    # The rest of the config is there as it was, comments and all.
    assert text.startswith(HARVESTER_CONFIG.split("pciPassthrough:")[0])
    assert text.endswith("# the OS part\nos:\n  hostname: node3\n")


def test_the_preview_is_what_plan_says_of_the_written_config(tui, machine_root, tmp_path):
    """Issue 15.1: with the config's install section written back, `plan --config
    OUTPUT` plans what the screen showed (the NVMe the install disk leaves free)."""
    config = tmp_path / "harvester.yaml"
    config.write_text(HARVESTER_CONFIG.replace("  devices:\n    - kind: gpu\n", "  devices: []\n"), encoding="utf-8")
    out = tmp_path / "out.yaml"
    root = machine_root("intel-workstation")
    run = tui("--root", root, "--config", str(config), "--output", str(out), rows=60, cols=120)
    run.wait_for("[X] Enable PCI passthrough")
    to_list(run)
    run.move_to("0000:02:00.0")  # the NVMe: free, since the install disk is /dev/sda
    assert "Can go to VMs" in run.details()
    run.send("space", wait="goes to VMs (vfio-pci)")
    run.send("enter", wait="Confirm: what will be written")
    lines = run.text.splitlines()
    shown = {
        "kernel_args": lines[lines.index(" Kernel arguments of the installed system") + 1].split(),
        "passthrough": sorted(
            "0000:" + line.split()[0] for line in lines if line.startswith("     ") and line.split()[0][2:3] == ":"
        ),
    }
    run.send("enter")
    assert run.finish() == 0
    r = cli("plan", "--config", str(out), "--root", root, "--json")
    assert r.rc == 0, r.err
    plan = json.loads(r.out)
    assert shown == {
        "kernel_args": plan["kernel_args"],
        "passthrough": sorted(e["address"] for e in plan["passthrough"]),
    }
    assert "0000:02:00.0" in shown["passthrough"]


def test_esc_twice_leaves_writes_nothing_and_says_so(tui, machine_root, tmp_path):
    out = tmp_path / "pt.yaml"
    run = tui("--root", machine_root("intel-workstation"), "--output", str(out))
    run.wait_for("Enable PCI passthrough")
    run.send("esc", wait="Esc again leaves")
    run.send("esc")
    assert run.finish() == 1
    assert not out.exists()
    assert run.after.strip() == "installer-ext: left the screen: nothing written"


def test_ctrl_c_writes_nothing_and_says_so(tui, machine_root, tmp_path):
    out = tmp_path / "pt.yaml"
    run = tui("--root", machine_root("intel-workstation"), "--output", str(out))
    run.wait_for("Enable PCI passthrough")
    run.send("ctrl c")
    assert run.finish() == 1
    assert not out.exists()
    assert run.after.strip() == "installer-ext: interrupted: nothing written"


def test_esc_on_the_preview_goes_back_to_the_devices(tui, machine_root, tmp_path):
    out = tmp_path / "pt.yaml"
    run = tui("--root", machine_root("intel-workstation"), "--output", str(out))
    run.wait_for("Enable PCI passthrough")
    run.send("enter", wait="Confirm: what will be written")
    run.send("esc", wait="Enable PCI passthrough")
    assert "Confirm" not in run.text
    run.send("enter", wait="Confirm: what will be written")
    run.send("enter")
    assert run.finish() == 0
    assert written(out)["pciPassthrough"]["enabled"] is False


def test_without_colour_the_screen_uses_no_colour_and_reverse_video_for_focus(tui, machine_root, tmp_path):
    run = tui("--root", machine_root("intel-workstation"), "--output", str(tmp_path / "o.yaml"), env={"NO_COLOR": "1"})
    run.wait_for("Enable PCI passthrough")
    to_list(run)
    colours = {(c.fg, c.bg) for line in run.screen.buffer.values() for c in line.values()}
    assert colours == {("default", "default")}
    row = next(y for y, line in enumerate(run.lines) if "01:00.0   gpu" in line)
    assert all(run.screen.buffer[row][x].reverse for x in range(4, 30))
    other = next(y for y, line in enumerate(run.lines) if "01:00.1   audio" in line)
    assert not run.screen.buffer[other][5].reverse


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
    run.wait_for("4101 functions", timeout=60)
    assert b"Reading the PCI devices" in run.raw
    assert sum(1 for line in run.lines if "iavf" in line) == 0  # VFs folded
    to_list(run, "00:17.0")
    run.send("/", wait="Filter:")
    run.send(*"3c:01.7", wait="1 of 4101 match")
    assert "3c:01.7 nic" in run.text
    run.send("enter", wait=lambda r: r.focused("3c:01.7"))
    run.send("esc", wait="4101 functions")  # clears the filter, stays on the row found
    assert run.focused("3c:01.7")
    run.send("esc", wait="Esc again leaves")
    run.send("esc")
    assert run.finish() == 1


def test_logs_wait_until_the_screen_is_closed(tui, machine_root, tmp_path):
    run = tui("--root", machine_root("intel-workstation"), "--output", str(tmp_path / "o.yaml"), "--debug")
    run.wait_for("Enable PCI passthrough")
    shown = bytes(run.raw)
    assert b"installer_ext" not in shown and b"Traceback" not in shown
    run.send("enter", wait="Confirm")
    run.send("enter")
    assert run.finish() == 0
    tail = bytes(run.raw[len(shown):])
    assert b"installer_ext.tui.app: screen ready" in tail
    # ... written after urwid gave the terminal back (cursor shown again).
    assert tail.index(b"screen ready") > tail.rindex(b"\x1b[?25h")


def _plain(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`installer-ext tui` with no terminal at all: no pty on stdin/stdout and, in a
    new session, no controlling terminal (/dev/tty cannot be opened)."""
    return subprocess.run(
        [*command(), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        start_new_session=True,
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
    p = _plain("--root", str(tmp_path))
    assert p.returncode == 2 and p.stderr.startswith(f"installer-ext: --root {tmp_path}: no sys/bus/pci/devices")


def test_a_config_naming_what_the_host_lacks_is_exit_2_after_reading_it(tui, machine_root, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("pciPassthrough:\n  enabled: true\n  devices:\n    - address: '0000:99:00.0'\n", encoding="utf-8")
    run = tui("--root", machine_root("intel-workstation"), "--config", str(config))
    assert run.finish() == 2
    assert run.after.strip() == "installer-ext: pciPassthrough.devices[0]: no PCI function 0000:99:00.0 on this host"


def test_without_any_terminal_it_says_so(machine_root):
    p = _plain("--root", machine_root("intel-workstation"), env={"TERM": "linux"})
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr.startswith("installer-ext: tui: needs a terminal") and len(p.stderr.splitlines()) == 1


@pytest.mark.parametrize("term", ["dumb", ""])
def test_a_dumb_terminal_is_refused_with_one_line_and_no_escape_codes(tui, machine_root, tmp_path, term):
    out = tmp_path / "o.yaml"
    run = tui("--root", machine_root("intel-workstation"), "--output", str(out), term=term)
    assert run.finish() == 1
    text = run.raw.decode()
    assert "\x1b" not in text and not out.exists()
    shown = f"TERM={term}" if term else "no TERM"
    assert text.strip() == f"installer-ext: tui: {shown} cannot draw the screen; run it with TERM=linux (console) or TERM=xterm"


def test_without_output_the_result_is_printed_after_the_screen(tui, machine_root):
    run = tui("--root", machine_root("intel-workstation"))
    run.wait_for("Enable PCI passthrough")
    run.send("enter", wait="Enter prints on leaving the screen: this pciPassthrough section")
    run.send("enter")
    assert run.finish() == 0
    assert run.after.startswith("pciPassthrough:\r\n  enabled: false\r\n")
    assert run.after.rstrip().endswith("installer-ext: printed on standard output: the pciPassthrough section")


def test_with_standard_output_redirected_the_screen_draws_on_the_terminal(tui, machine_root, tmp_path):
    """Issue 15.2: `installer-ext tui > choices.yaml`, as the help says."""
    out = tmp_path / "choices.yaml"
    run = tui("--root", machine_root("intel-workstation"), shell=f"> {out}")
    run.wait_for("[ ] Enable PCI passthrough")
    run.send("space", wait="[X] Enable PCI passthrough")
    run.send("enter", wait="Confirm: what will be written")
    run.send("enter")
    assert run.finish() == 0
    assert written(out) == {"pciPassthrough": load_config(str(out)).choices.to_section()}
    assert written(out)["pciPassthrough"]["enabled"] is True
    assert "pciPassthrough:" not in run.after  # the YAML went to the file, not the terminal
    assert run.after.strip() == "installer-ext: printed on standard output: the pciPassthrough section"


def test_the_details_describe_what_has_the_focus_from_the_first_screen(tui, machine_root, tmp_path):
    """Issue 15.3: the focus starts on the switch, and the details say so."""
    run = tui("--root", machine_root("intel-workstation"), "--output", str(tmp_path / "o.yaml"))
    run.wait_for("[ ] Enable PCI passthrough")
    assert run.focus_line().startswith(" Enable PCI passthrough: off (Space turns it on)")
    assert "01:00.0" not in run.focus_line() and "Space select" not in run.lines[-1]
    assert "Space on/off" in run.lines[-1]
    run.send("space", wait=lambda r: r.focus_line().startswith(" Enable PCI passthrough: on"))
    to_list(run)
    assert "Space select" in run.lines[-1]


def test_right_on_a_physical_function_reaches_its_vf_count(tui, machine_root, tmp_path):
    """Issue 15.4: on a PF without VFs, Right goes to "VFs at boot"; digits typed on
    the PF's row go there too; the key line shows the keys of the focused row."""
    out = tmp_path / "o.yaml"
    run = tui("--root", machine_root("amd-epyc-server"), "--output", str(out))
    run.wait_for("[ ] Enable PCI passthrough")
    run.send("space", wait="[X] Enable PCI passthrough")
    to_list(run, "00:14.0")
    run.move_to("0000:02:00.1")
    assert "Right VFs" in run.lines[-1]
    run.send("right", wait="VFs made at every boot")
    assert "0-9" in run.lines[-1]
    run.send("4", wait="at boot 4 for VMs")
    run.send("up", wait=lambda r: r.focused("02:00.1") and "VFs made" not in r.details())
    run.send("backspace")  # not a key of the function's row: nothing changes
    run.send("1", wait="at boot 41 for VMs")  # typed on the PF's row: into its count
    run.send("enter", wait="Confirm: what will be written")
    run.send("enter")
    assert run.finish() == 0
    assert written(out)["pciPassthrough"]["sriov"] == [{"address": "0000:02:00.1", "numVfs": 41, "vfsToVfio": True}]


def test_at_60x15_every_switch_is_reachable_and_smaller_says_too_small(tui, machine_root, tmp_path):
    """Issue 15.5."""
    out = tmp_path / "o.yaml"
    run = tui("--root", machine_root("intel-workstation"), "--output", str(out), rows=15, cols=60)
    run.wait_for("[ ] Install GPU drivers / device plugin")
    assert any(line.startswith(" [ ] Enable PCI passthrough") for line in run.lines)
    run.send("down", wait=lambda r: r.focus_line().startswith(" Install GPU drivers / device plugin: off"))
    run.send("space", wait="[X] Install GPU drivers / device plugin")
    to_list(run)
    run.child.setwinsize(12, 50)
    run.screen.resize(12, 50)
    run.wait_for("Window too small (50x12): needs at least 60x15")
    run.send("space")  # taken by nobody while the screen cannot be seen
    run.child.setwinsize(24, 80)
    run.screen.resize(24, 80)
    run.wait_for(lambda r: r.focused("01:00.0") and "[X] Install GPU drivers" in r.text, what="the screen back at 80x24")
    assert "[x] 01:00.0" not in run.text
    run.send("enter", wait="Confirm: what will be written")
    run.send("enter")
    assert run.finish() == 0
    assert written(out)["pciPassthrough"]["gpuDrivers"] is True and written(out)["pciPassthrough"]["devices"] == []


def test_a_serial_console_without_a_size_gets_80x24(tui, machine_root, tmp_path):
    """A serial line reports 0x0 (nothing sets its window size): drawn at 80x24."""
    run = tui("--root", machine_root("intel-workstation"), "--output", str(tmp_path / "o.yaml"), rows=0, cols=0)
    run.wait_for("[ ] Enable PCI passthrough")
    assert run.lines[0].startswith(" GPU drivers / PCI passthrough")
    assert "Esc back" in run.lines[23]


def test_a_new_filter_clears_the_message_about_another_row(tui, machine_root, tmp_path):
    """Issue 15.7."""
    run = tui("--root", machine_root("intel-workstation"), "--output", str(tmp_path / "o.yaml"))
    run.wait_for("[ ] Enable PCI passthrough")
    run.send("space", wait="[X] Enable PCI passthrough")
    to_list(run)
    run.move_to("0000:00:02.0")
    run.send("space", wait="00:02.0 (CoffeeLake-S GT2 [UHD Graphics 630]) cannot be given to VMs")
    run.send("/", wait="Filter:")
    run.send("n", wait=lambda r: "cannot be given to VMs" not in r.flat)


def test_unsafe_interrupts_are_offered_only_without_interrupt_remapping(tui, ir_off_root, machine_root, tmp_path):
    """Issue 15.8, the screen's half."""
    run = tui("--root", ir_off_root, "--output", str(tmp_path / "o.yaml"))
    run.wait_for(f"[ ] {hints.SWITCH_UNSAFE}")
    run.send("down", wait=lambda r: r.focus_line().startswith(f" {hints.SWITCH_UNSAFE}: off"))
    assert "no interrupt remapping" in run.details()
    config = tmp_path / "c.yaml"
    config.write_text("pciPassthrough:\n  enabled: true\n  allowUnsafeInterrupts: true\n", encoding="utf-8")
    run = tui("--root", machine_root("intel-workstation"), "--config", str(config), "--output", str(tmp_path / "o.yaml"))
    run.wait_for("[X] Enable PCI passthrough")
    assert "unsafe" not in run.text.lower()
