"""THE PARITY TEST: the screen and the unattended config never diverge.

Drive the real screen in a pty to some choices, then render (a) the section it wrote
and (b) the unattended YAML a user would write for the same choices, with
`installer-ext render` on the same host: every file under the two targets must be
byte-identical.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.trees import snapshot
from tests.tui.ptyscreen import REPO, TuiRun



def render(config: str, root: str, target: str) -> None:
    os.makedirs(target)
    p = subprocess.run(
        [sys.executable, "-m", "installer_ext", "render", "--config", config, "--root", root, "--target", target],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr


def drive_workstation(run: TuiRun) -> None:
    run.send("space", wait="[X] Enable PCI passthrough")
    run.send("tab", wait=lambda r: r.focused("01:00.0"))
    run.move_to("0000:01:00.1")  # the audio function: the GPU follows it
    run.send("space", wait="whole IOMMU group 1")


WORKSTATION_PASSED = ["0000:01:00.0", "0000:01:00.1"]


WORKSTATION_YAML = """\
pciPassthrough:
  enabled: true
  devices:
    - address: "0000:01:00.1"
"""


def drive_epyc(run: TuiRun) -> None:
    run.send("space", wait="[X] Enable PCI passthrough")
    run.send("right", wait=lambda r: r.focus_line().startswith(" Install GPU drivers"))
    run.send("space", wait="[X] Install GPU drivers / device plugin")
    run.send("tab", wait=lambda r: r.focused("00:14.0"))
    run.move_to("0000:04:00.0")
    run.send("space", wait="whole IOMMU group 16")
    run.to_vf_field("0000:02:00.1")
    run.send("1", "2", wait="at boot 12 for VMs")


def vf_address(pf_routing_id: int, offset: int, stride: int, n: int) -> str:
    """VF n of a PF: routing id PF + offset + n * stride (PCIe SR-IOV), bus:dev.fn."""
    rid = pf_routing_id + offset + n * stride
    return f"0000:{rid >> 8:02x}:{(rid >> 3) & 0x1F:02x}.{rid & 7}"


# The GPU with its audio function, and the 12 VFs of 02:00.1 (routing id 0x0201,
# VF offset 79, stride 1 in tests/fakesys/machines.py).
EPYC_PASSED = ["0000:04:00.0", "0000:04:00.1"] + [vf_address(0x0201, 79, 1, n) for n in range(12)]


EPYC_YAML = """\
pciPassthrough:
  enabled: true
  gpuDrivers: true
  devices:
    - address: 0000:04:00.0
  sriov:
    - address: 0000:02:00.1
      numVfs: 12
"""


@pytest.mark.parametrize(
    "machine,drive,unattended,passed",
    [
        ("intel-workstation", drive_workstation, WORKSTATION_YAML, WORKSTATION_PASSED),
        ("amd-epyc-server", drive_epyc, EPYC_YAML, EPYC_PASSED),
    ],
    ids=["workstation-gpu", "epyc-gpu-drivers-sriov"],
)
def test_rendering_the_screens_choices_equals_rendering_the_unattended_yaml(
    machine_root, tmp_path, machine, drive, unattended, passed
):
    root = machine_root(machine)
    from_screen = tmp_path / "screen.yaml"
    run = TuiRun("--root", root, "--output", str(from_screen))
    try:
        run.wait_for("Enable PCI passthrough")
        drive(run)
        run.send("enter", wait="Confirm: what will be written")
        run.send("enter")
        assert run.finish() == 0
    finally:
        run.close()
    by_hand = tmp_path / "unattended.yaml"
    by_hand.write_text(unattended, encoding="utf-8")

    render(str(from_screen), root, str(tmp_path / "t-screen"))
    render(str(by_hand), root, str(tmp_path / "t-unattended"))
    a, b = snapshot(str(tmp_path / "t-screen")), snapshot(str(tmp_path / "t-unattended"))
    assert sorted(a) == sorted(b)
    assert len(a) >= 3
    for rel in a:
        assert a[rel] == b[rel], f"{rel} differs"
    # What both rendered passes exactly the devices the screen showed as selected.
    plan = json.loads(a["oem/installer-ext/plan.json"])
    assert sorted(e["address"] for e in plan["passthrough"]) == sorted(passed)
