"""The screen's state without urwid: every edit goes through the planner, and what a
row says comes from the plan and the facts."""

from __future__ import annotations

import pytest

from installer_ext.config.model import Choices, InstallInfo, ManagementInterface, Selector, SriovChoice
from installer_ext.errors import BadInput
from installer_ext.plan.planner import make_plan
from installer_ext.tui.reader import read_host
from installer_ext.tui.session import Session, renumbered
from installer_ext.tui.words import host_lines, row_state
from tests.fakesys import build
from tests.fakesys.builder import with_changes
from tests.fakesys.machines import intel_workstation

GPU, AUDIO, VGA, MGMT, SPARE, SATA = (
    "0000:01:00.0",
    "0000:01:00.1",
    "0000:00:02.0",
    "0000:00:1f.6",
    "0000:03:00.0",
    "0000:00:17.0",
)
INSTALL = InstallInfo(
    known=True,
    device="/dev/sda",
    management=(ManagementInterface("eno1", None, "install.managementInterface.interfaces[0]"),),
)


def state(s: Session, address: str):
    return row_state(s, s.facts.device(address))


def test_selecting_the_gpu_takes_its_audio_function_and_says_so(session_of):
    s = session_of("intel-workstation", Choices(enabled=True))
    out = s.toggle(GPU)
    assert out.ok and not out.error
    assert [sel.address for sel in s.choices.devices] == [GPU]
    assert s.passthrough[GPU].why == "selected"
    assert s.passthrough[AUDIO].why == "same-group"
    assert "whole IOMMU group 1" in out.lines[0] and "01:00.1" in out.lines[0]
    assert state(s, AUDIO).mark == "[x]"
    assert state(s, AUDIO).short == "to VMs with 01:00.0"
    # The screen shows what the planner decided for these choices, nothing else.
    direct = make_plan(s.facts, s.choices, s.install)
    assert {e.address for e in direct.passthrough} == set(s.passthrough)


def test_unselecting_a_same_group_function_gives_the_whole_group_back(session_of):
    s = session_of("intel-workstation", Choices(enabled=True))
    s.toggle(GPU)
    out = s.toggle(AUDIO)
    assert out.ok
    assert s.choices.devices == ()
    assert s.passthrough == {}
    assert "stays on the host" in out.lines[0] and "01:00.0" in out.lines[0]
    assert state(s, GPU).mark == "[ ]"


def test_a_blocked_device_is_refused_with_the_reason_and_nothing_changes(session_of):
    s = session_of("intel-workstation", Choices(enabled=True))
    before = s.choices
    out = s.toggle(VGA)
    assert not out.ok and out.error
    assert "cannot be given to VMs" in out.lines[0]
    assert "boot display" in out.lines[0]
    assert s.choices == before
    assert state(s, VGA).mark == " - "
    assert state(s, VGA).short == "boot display"


def test_selecting_while_passthrough_is_off_asks_for_the_switch(session_of):
    s = session_of("intel-workstation")
    out = s.toggle(GPU)
    assert out.error and "Enable PCI passthrough" in out.lines[0]
    assert s.choices.devices == ()


def test_without_install_section_nics_with_link_and_disk_controllers_are_blocked_in_words(session_of):
    s = session_of("intel-workstation", Choices(enabled=True))
    assert state(s, MGMT).short == "may be mgmt network"
    assert "may become the management network" in state(s, MGMT).long
    assert state(s, SATA).short == "may hold install disk"
    # The spare I210 has no link: it is not a candidate for the management network.
    assert state(s, SPARE).short == "can go to VMs"
    # Group-mates of the onboard NIC are blocked because of it.
    assert state(s, "0000:00:1f.3").short == "same group as 00:1f.6"
    words = " ".join(line.text for line in host_lines(s.facts, s.install))
    assert "Install disk and management network not chosen yet" in words


def test_with_install_section_the_reasons_name_the_interface_and_the_disk(session_of):
    s = session_of("intel-workstation", Choices(enabled=True), INSTALL)
    assert state(s, MGMT).short == "management net eno1"
    assert state(s, SATA).short == "install disk sda"
    # The NVMe is neither the install disk nor a data disk once they are known.
    assert state(s, "0000:02:00.0").short == "can go to VMs"
    words = " ".join(line.text for line in host_lines(s.facts, s.install))
    assert "not chosen yet" not in words


def test_sriov_count_above_the_maximum_is_bad_input_kept_until_corrected(session_of):
    s = session_of("amd-epyc-server", Choices(enabled=True))
    pf = "0000:02:00.1"
    out = s.set_sriov(pf, 99, True)
    assert out.error
    assert "numVfs: 99 is more than" in out.lines[0] and "sriov_totalvfs 64" in out.lines[0]
    assert s.sriov_choice(pf).num_vfs == 99  # the field keeps what was typed...
    assert s.problems()  # ...and the screen cannot go on
    out = s.set_sriov(pf, 8, True)
    assert out.ok and not s.problems()
    assert "8 of 64 VFs" in out.lines[0]
    vfs = [e for e in s.plan.passthrough if e.why == "sriov-vf"]
    assert len(vfs) == 8 and all(e.vf_of == pf for e in vfs)
    assert s.choices.sriov == (SriovChoice(pf, 8, True, "pciPassthrough.sriov[0]"),)
    out = s.set_sriov(pf, None, True)
    assert s.choices.sriov == () and out.ok


def test_an_id_selector_is_replaced_by_addresses_to_leave_one_group_out(session_of):
    s = session_of("amd-epyc-server", Choices(enabled=True, devices=(Selector(id="1002:7310", path="x"),)))
    assert {"0000:03:00.0", "0000:04:00.0"} <= set(s.passthrough)
    out = s.toggle("0000:03:00.0")
    assert out.ok
    assert [sel.to_json() for sel in s.choices.devices] == [{"address": "0000:04:00.0"}]
    assert "0000:03:00.0" not in s.passthrough and "0000:03:00.1" not in s.passthrough
    assert s.passthrough["0000:04:00.1"].why == "same-group"
    assert "The selector id 1002:7310 was replaced by the addresses it matched, to leave this group out." in out.lines


def test_passthrough_cannot_be_switched_on_without_iommu(session_of):
    s = session_of("no-iommu-desktop")
    out = s.set_enabled(True)
    assert out.error and not s.choices.enabled
    assert any("no IOMMU" in line for line in out.lines)
    assert state(s, "0000:01:00.0").short == "no IOMMU"


def test_without_interrupt_remapping_devices_need_the_unsafe_switch(tmp_path):
    root = str(tmp_path / "ir-off")
    build(with_changes(intel_workstation(), "ir-off", interrupt_remapping=False), root)
    s = Session(read_host(root), InstallInfo(), Choices(enabled=True))
    out = s.toggle(GPU)
    assert out.error and "interrupt remapping" in out.lines[0]
    assert s.choices.devices == ()
    assert s.set_allow_unsafe(True).ok
    assert s.toggle(GPU).ok
    assert any("allowUnsafeInterrupts" in w for w in s.plan.warnings)
    assert "vfio_iommu_type1.allow_unsafe_interrupts=1" in s.plan.kernel_args


def test_gpu_drivers_keep_unselected_gpus_for_containers(session_of):
    s = session_of("amd-epyc-server", Choices(enabled=True, gpu_drivers=True))
    s.toggle("0000:03:00.0")
    assert state(s, "0000:04:00.0").short == "kept for containers"
    assert state(s, "0000:03:00.0").mark == "[x]"
    assert s.plan.device_plugins == ["amd"]


@pytest.mark.slow
def test_a_vf_cannot_be_picked_alone(session_of):
    s = session_of("big", Choices(enabled=True))
    vf = next(d for d in s.facts.devices if d.physfn)
    out = s.toggle(vf.address)
    assert out.error and "VFs at boot" in out.lines[0]
    assert state(s, vf.address).short == "VF, host driver iavf"


def test_a_config_that_does_not_fit_the_host_is_bad_input(facts_of):
    bad = Choices(enabled=True, devices=(Selector(address="0000:99:00.0", path="pciPassthrough.devices[0]"),))
    with pytest.raises(BadInput, match="no PCI function 0000:99:00.0"):
        Session(facts_of("intel-workstation"), InstallInfo(), bad)


def test_paths_name_the_keys_of_the_written_section():
    c = renumbered(
        Choices(devices=(Selector(address="a"), Selector(kind="gpu")), sriov=(SriovChoice("b", 1),), host_gpus=(Selector(id="x"),))
    )
    assert [s.path for s in c.devices] == ["pciPassthrough.devices[0]", "pciPassthrough.devices[1]"]
    assert c.sriov[0].path == "pciPassthrough.sriov[0]"
    assert c.host_gpus[0].path == "pciPassthrough.hostGpus[0]"


def test_host_lines_say_what_the_iommu_state_means(facts_of):
    on = host_lines(facts_of("intel-workstation"), InstallInfo())
    assert on[0].text.startswith("CPU Intel, VT-x on | IOMMU on (12 groups)")
    off = host_lines(facts_of("intel-workstation-iommu-off"), InstallInfo())
    assert "IOMMU on after install (DMAR)" in off[0].text
    assert any("predicted" in line.text for line in off)
    absent = host_lines(facts_of("no-iommu-desktop"), InstallInfo())
    assert absent[1].style == "bad" and "Enable VT-d / AMD-Vi" in absent[1].text


def test_a_refused_address_from_the_config_is_taken_out_by_space(session_of):
    s = session_of(
        "intel-workstation", Choices(enabled=True, devices=(Selector(address=VGA, path="pciPassthrough.devices[0]"),))
    )
    assert state(s, VGA).mark == " ! " and state(s, VGA).short == "refused: boot display"
    assert s.problems() and "boot display" in s.problems()[0]
    out = s.toggle(VGA)
    assert out.ok and "taken out of the selection" in out.lines[0]
    assert s.choices.devices == () and not s.problems()
    assert state(s, VGA).mark == " - "


@pytest.mark.slow
def test_vf_rows_follow_the_count_set_on_their_pf(session_of):
    s = session_of("big", Choices(enabled=True))
    pf = "0000:24:00.0"
    assert s.set_sriov(pf, 16, True).ok
    assert state(s, "0000:24:01.0").short == "to VMs (VF)"
    assert state(s, "0000:24:02.7").short == "to VMs (VF)"
    assert state(s, "0000:24:03.0").short == "not made at boot"
    assert s.set_sriov(pf, 16, False).ok
    assert state(s, "0000:24:01.0").short == "VF on the host driver"
    assert state(s, "0000:26:01.0").short == "VF, host driver iavf"  # another PF, left as it is
