"""Every rule of the safety policy, on the realistic machines."""

from __future__ import annotations

import json

import pytest

from installer_ext.errors import BadInput
from installer_ext.host.facts import gather
from installer_ext.plan.model import Plan
from installer_ext.plan.planfile import validate
from tests.fakesys import build
from tests.fakesys import machines as fm
from tests.planning import EPYC_INSTALL, REAL_INSTALL, WORKSTATION_INSTALL, addresses, fatal, plan_for


@pytest.fixture(scope="module")
def ws(machine_root):
    return machine_root("intel-workstation")


@pytest.fixture(scope="module")
def epyc(machine_root):
    return machine_root("amd-epyc-server")


def test_selecting_a_gpu_takes_its_whole_group(ws):
    plan = plan_for(ws, {"enabled": True, "devices": [{"address": "0000:01:00.0"}]}, WORKSTATION_INSTALL)
    assert [(p.address, p.why) for p in plan.passthrough] == [
        ("0000:01:00.0", "selected"),
        ("0000:01:00.1", "same-group"),
    ]
    # The PEG root port shares the group but is a bridge: left as it is, never bound.
    [group] = plan.groups
    assert group.left == ("0000:00:01.0",) and group.passthrough == ("0000:01:00.0", "0000:01:00.1")
    assert plan.fatal_refusals == []


def test_selecting_the_audio_function_takes_the_gpu_too(ws):
    plan = plan_for(ws, {"enabled": True, "devices": [{"address": "01:00.1"}]}, WORKSTATION_INSTALL)
    assert addresses(plan) == ["0000:01:00.0", "0000:01:00.1"]
    assert addresses(plan, "same-group") == ["0000:01:00.0"]


@pytest.mark.parametrize(
    "address, words",
    [
        ("0000:00:02.0", "boot display"),
        ("0000:00:1f.6", "management network eno1"),
        ("0000:00:1f.3", "same IOMMU group as 0000:00:1f.6"),
        ("0000:00:17.0", "controller of install disk /dev/sda"),
        ("0000:02:00.0", "controller of data disk /dev/nvme0n1"),
        ("0000:00:01.0", "PCI bridge"),
        ("0000:00:1f.0", "bridge"),
    ],
)
def test_explicit_address_on_a_blocked_device_refuses_the_plan(ws, address, words):
    plan = plan_for(ws, {"enabled": True, "devices": [{"address": address}]}, WORKSTATION_INSTALL)
    assert address in fatal(plan)
    assert words in fatal(plan)[address]
    assert plan.passthrough == [] and plan.vfio_ids == []


def test_kind_selector_skips_blocked_devices_with_a_warning(ws):
    plan = plan_for(ws, {"enabled": True, "devices": [{"kind": "gpu"}]}, WORKSTATION_INSTALL)
    assert addresses(plan) == ["0000:01:00.0", "0000:01:00.1"]
    skipped = {r.address: r for r in plan.refused}
    assert not skipped["0000:00:02.0"].fatal and "boot display" in skipped["0000:00:02.0"].reason
    assert any("skipped 0000:00:02.0" in w for w in plan.warnings)
    assert plan.fatal_refusals == []


def test_kind_nic_skips_the_management_nic(ws):
    plan = plan_for(ws, {"enabled": True, "devices": [{"kind": "nic"}]}, WORKSTATION_INSTALL)
    assert addresses(plan) == ["0000:03:00.0"]
    assert "management network eno1" in {r.address: r.reason for r in plan.refused}["0000:00:1f.6"]


def test_dual_port_nic_second_port_by_address_not_by_id(epyc):
    plan = plan_for(epyc, {"enabled": True, "devices": [{"address": "0000:02:00.1"}]}, EPYC_INSTALL)
    [p] = plan.passthrough
    assert p.address == "0000:02:00.1" and p.bind_at_boot == "address"
    assert plan.vfio_ids == [] and not any(a.startswith("vfio-pci.ids") for a in plan.kernel_args)
    by_id = plan_for(epyc, {"enabled": True, "devices": [{"id": "8086:1572"}]}, EPYC_INSTALL)
    assert addresses(by_id) == ["0000:02:00.1"]
    assert {r.address for r in by_id.refused} == {"0000:02:00.0"}
    assert by_id.passthrough[0].bind_at_boot == "address"


def test_bind_by_ids_only_when_every_function_with_them_is_passed(machine_root):
    root = machine_root("intel-dual-gpu")
    one = plan_for(root, {"enabled": True, "devices": [{"address": "0000:01:00.0"}]}, WORKSTATION_INSTALL)
    assert {p.bind_at_boot for p in one.passthrough} == {"address"}
    assert one.vfio_ids == []
    both = plan_for(root, {"enabled": True, "devices": [{"id": "10de:2206"}]}, WORKSTATION_INSTALL)
    assert addresses(both) == ["0000:01:00.0", "0000:01:00.1", "0000:02:00.0", "0000:02:00.1"]
    assert {p.bind_at_boot for p in both.passthrough} == {"ids"}
    assert both.vfio_ids == ["10de:1aef", "10de:2206"]
    # Through modprobe.d, not the kernel line: a rescue boot (installer_ext.skip=1) must
    # be able to leave them on their host drivers.
    assert both.kernel_args == ["intel_iommu=on", "iommu=pt"]


def test_kernel_args_per_cpu_vendor(ws, epyc):
    intel = plan_for(ws, {"enabled": True}, WORKSTATION_INSTALL)
    assert intel.kernel_args == ["intel_iommu=on", "iommu=pt"]
    amd = plan_for(epyc, {"enabled": True}, EPYC_INSTALL)
    assert amd.kernel_args == ["iommu=pt"]
    for plan in (intel, amd):
        assert "amd_iommu=on" not in plan.kernel_args
        assert not any(a.startswith("pcie_acs_override") for a in plan.kernel_args)
    off = plan_for(ws, {"enabled": False, "gpuDrivers": True}, WORKSTATION_INSTALL)
    assert off.kernel_args == []


def test_extra_kernel_args_are_kept_once(ws):
    plan = plan_for(
        ws, {"enabled": True, "extraKernelArgs": ["iommu=pt", "video=efifb:off", "video=efifb:off"]}, WORKSTATION_INSTALL
    )
    assert plan.kernel_args == ["intel_iommu=on", "iommu=pt", "video=efifb:off"]


def test_sriov_pf_stays_and_vfs_go_to_vfio(epyc):
    plan = plan_for(
        epyc, {"enabled": True, "sriov": [{"address": "0000:02:00.1", "numVfs": 4}]}, EPYC_INSTALL
    )
    [s] = plan.sriov
    assert (s.address, s.num_vfs, s.total_vfs, s.vfs_to_vfio) == ("0000:02:00.1", 4, 64, True)
    # Offset 79, stride 1 from 02:00.1 (routing id 0x201): VFs from 0x250 = 02:0a.0.
    assert s.vfs == ("0000:02:0a.0", "0000:02:0a.1", "0000:02:0a.2", "0000:02:0a.3")
    assert addresses(plan) == list(s.vfs)
    assert all(p.why == "sriov-vf" and p.vf_of == "0000:02:00.1" and p.device_id == "154c" for p in plan.passthrough)
    assert all(p.bind_at_boot == "address" for p in plan.passthrough)
    assert "0000:02:00.1" not in addresses(plan)


def test_vfs_of_the_management_port_may_go_to_vms(epyc):
    plan = plan_for(epyc, {"enabled": True, "sriov": [{"address": "0000:02:00.0", "numVfs": 2}]}, EPYC_INSTALL)
    assert len(plan.passthrough) == 2 and plan.fatal_refusals == []


def test_a_pf_asked_for_vfs_cannot_also_be_passed(epyc):
    plan = plan_for(
        epyc,
        {"enabled": True, "devices": [{"address": "0000:02:00.1"}], "sriov": [{"address": "0000:02:00.1", "numVfs": 2}]},
        EPYC_INSTALL,
    )
    assert "SR-IOV physical function" in fatal(plan)["0000:02:00.1"]


def test_sriov_bad_input(epyc, ws):
    with pytest.raises(BadInput, match=r"sriov\[0\]\.numVfs: 65 is more than 0000:02:00.1 supports \(sriov_totalvfs 64\)"):
        plan_for(epyc, {"enabled": True, "sriov": [{"address": "0000:02:00.1", "numVfs": 65}]}, EPYC_INSTALL)
    with pytest.raises(BadInput, match="not an SR-IOV physical function"):
        plan_for(ws, {"enabled": True, "sriov": [{"address": "0000:03:00.0", "numVfs": 1}]}, WORKSTATION_INSTALL)
    with pytest.raises(BadInput, match=r"devices\[0\]\.address: no PCI function 0000:65:00.0"):
        plan_for(ws, {"enabled": True, "devices": [{"address": "0000:65:00.0"}]}, WORKSTATION_INSTALL)


def test_vfs_behind_a_port_without_acs_cannot_go_to_vms(tmp_path):
    machine = fm.amd_epyc_server()
    for d in machine.devices:
        if d.address == "0000:00:03.1":
            d.acs = False
    root = build(machine, str(tmp_path / "m"))
    plan = plan_for(root, {"enabled": True, "sriov": [{"address": "0000:02:00.1", "numVfs": 2}]}, EPYC_INSTALL)
    assert "share an IOMMU group with the PF" in fatal(plan)["0000:02:00.1"]


def test_no_iommu_refuses_any_passthrough(machine_root):
    root = machine_root("no-iommu-desktop")
    install = {"device": "/dev/sda", "managementInterface": {"interfaces": [{"name": "enp2s0"}]}}
    plan = plan_for(root, {"enabled": True, "devices": [{"kind": "gpu"}]}, install)
    assert plan.fatal_refusals and all("no IOMMU" in r.reason for r in plan.fatal_refusals)
    assert plan.passthrough == []
    nothing = plan_for(root, {"enabled": True}, install)
    assert [r.address for r in nothing.fatal_refusals] == [None]
    # Containers on the host GPU need no IOMMU.
    gpu_only = plan_for(root, {"gpuDrivers": True}, install)
    assert gpu_only.fatal_refusals == [] and gpu_only.host_gpus == ["0000:01:00.0"]
    assert gpu_only.device_plugins == ["nvidia"]


def test_no_interrupt_remapping_refused_unless_allowed(tmp_path):
    machine = fm.with_changes(fm.intel_workstation(), "no-ir", interrupt_remapping=False)
    root = build(machine, str(tmp_path / "m"))
    section = {"enabled": True, "devices": [{"address": "0000:03:00.0"}]}
    plan = plan_for(root, section, WORKSTATION_INSTALL)
    assert "no interrupt remapping" in fatal(plan)["0000:03:00.0"]
    allowed = plan_for(root, {**section, "allowUnsafeInterrupts": True}, WORKSTATION_INSTALL)
    assert allowed.fatal_refusals == [] and addresses(allowed) == ["0000:03:00.0"]
    assert "vfio_iommu_type1.allow_unsafe_interrupts=1" in allowed.kernel_args
    assert any("unsafe" in w for w in allowed.warnings)


def test_host_gpus_decide_the_device_plugin(ws, epyc):
    plan = plan_for(ws, {"gpuDrivers": True}, WORKSTATION_INSTALL)
    # The Intel iGPU is the boot display and has no container plugin here; the RTX does.
    assert plan.host_gpus == ["0000:01:00.0"] and plan.device_plugins == ["nvidia"]
    amd = plan_for(
        epyc, {"enabled": True, "gpuDrivers": True, "devices": [{"address": "0000:03:00.0"}]}, EPYC_INSTALL
    )
    assert amd.host_gpus == ["0000:04:00.0"] and amd.device_plugins == ["amd"]
    assert addresses(amd) == ["0000:03:00.0", "0000:03:00.1"]
    assert any("Navi 10" in w and "0000:03:00.0" in w for w in amd.warnings)
    none = plan_for(epyc, {"gpuDrivers": True, "devicePlugin": "none"}, EPYC_INSTALL)
    assert none.device_plugins == []


def test_explicit_host_gpus_are_kept_and_block_their_group(machine_root):
    root = machine_root("intel-dual-gpu")
    plan = plan_for(
        root,
        {"enabled": True, "gpuDrivers": True, "devices": [{"kind": "gpu"}], "hostGpus": [{"address": "0000:02:00.0"}]},
        WORKSTATION_INSTALL,
    )
    assert plan.host_gpus == ["0000:02:00.0"]
    assert addresses(plan) == ["0000:01:00.0", "0000:01:00.1"]
    with pytest.raises(BadInput, match="also listed in pciPassthrough.hostGpus"):
        plan_for(
            root,
            {"enabled": True, "devices": [{"address": "0000:02:00.0"}], "hostGpus": [{"address": "0000:02:00.0"}]},
            WORKSTATION_INSTALL,
        )


def test_settings_addon_and_claims(ws):
    on = plan_for(ws, {"enabled": True, "gpuDrivers": True, "devices": [{"address": "0000:03:00.0"}]}, WORKSTATION_INSTALL)
    assert on.settings == {"pci-pt-enable": "true", "gpu-enable": "true"}
    assert on.addons == {"pcidevices-controller": True} and on.claims is True
    quiet = plan_for(
        ws,
        {"enabled": True, "devices": [{"address": "0000:03:00.0"}], "harvester": {"settings": False, "addon": False, "claims": False}},
        WORKSTATION_INSTALL,
    )
    assert quiet.settings == {} and quiet.addons == {} and quiet.claims is False


def test_iommu_off_at_install_plans_on_predicted_groups(machine_root):
    root = machine_root("intel-workstation-iommu-off")
    plan = plan_for(root, {"enabled": True, "devices": [{"address": "0000:01:00.0"}]}, WORKSTATION_INSTALL)
    assert addresses(plan) == ["0000:01:00.0", "0000:01:00.1"]
    assert all(p.group_predicted and p.iommu_group == 1 for p in plan.passthrough)
    assert plan.groups[0].predicted
    assert any("predicted" in w for w in plan.warnings)


def test_before_the_install_section_exists_nics_with_a_link_and_disks_are_protected(ws):
    plan = plan_for(ws, {"enabled": True, "devices": [{"kind": "nic"}, {"kind": "storage"}]})
    assert addresses(plan) == ["0000:03:00.0"]  # its link is down
    reasons = {r.address: r.reason for r in plan.refused}
    assert "may become the management network" in reasons["0000:00:1f.6"]
    assert "may be the install disk" in reasons["0000:00:17.0"]
    assert "may be the install disk" in reasons["0000:02:00.0"]


def test_install_keys_that_name_nothing_are_bad_input(ws):
    with pytest.raises(BadInput, match=r"install.device: no disk /dev/sdz on this host"):
        plan_for(ws, {"enabled": True}, {**WORKSTATION_INSTALL, "device": "/dev/sdz"})
    # Not a /dev/NAME the host has, nor a link under /dev/disk it has: which disks it knows.
    for device in ("sda", "/dev/disk/by-id/ata-NOT_THERE", "/dev//sda"):
        with pytest.raises(BadInput) as exc:
            plan_for(ws, {"enabled": True}, {**WORKSTATION_INSTALL, "device": device})
        assert exc.value.lines == [f"install.device: {device!r} is not a disk this host knows (disks: /dev/nvme0n1, /dev/sda)"]
    with pytest.raises(BadInput, match=r"interfaces\[0\]\.name: no network interface eth9"):
        plan_for(ws, {"enabled": True}, {**WORKSTATION_INSTALL, "managementInterface": {"interfaces": [{"name": "eth9"}]}})


def test_install_disk_by_id_and_partition(ws):
    for device in ("/dev/disk/by-id/ata-Samsung_SSD_860_EVO_1TB_S3Z9NB0K123456", "/dev/sda3"):
        plan = plan_for(ws, {"enabled": True, "devices": [{"address": "0000:00:17.0"}]}, {**WORKSTATION_INSTALL, "device": device})
        assert "controller of install disk /dev/sda" in fatal(plan)["0000:00:17.0"]


def test_management_nic_by_hw_address(epyc):
    install = {**EPYC_INSTALL, "managementInterface": {"interfaces": [{"hwAddr": "3C:FD:FE:AA:00:01"}]}}
    plan = plan_for(epyc, {"enabled": True, "devices": [{"address": "0000:02:00.1"}]}, install)
    assert "management network enp2s0f1" in fatal(plan)["0000:02:00.1"]


def test_real_kernel_shared_group_behind_the_pci_bridge(real_kernel):
    plan = plan_for(real_kernel("on"), {"enabled": True, "devices": [{"address": "0000:02:01.0"}]}, REAL_INSTALL)
    assert addresses(plan) == ["0000:02:01.0", "0000:02:02.0"]
    assert plan.groups[0].left == ("0000:00:06.0",)
    # Both e1000 of that id are passed: bound by id at boot.
    assert plan.vfio_ids == ["8086:100e"]


def test_identical_nics_on_the_real_kernel_bind_by_address(real_kernel):
    plan = plan_for(real_kernel("on"), {"enabled": True, "devices": [{"address": "0000:00:04.0"}]}, REAL_INSTALL)
    assert [(p.address, p.bind_at_boot) for p in plan.passthrough] == [("0000:00:04.0", "address")]


def test_plans_are_deterministic_and_round_trip(ws):
    section = {"enabled": True, "gpuDrivers": True, "devices": [{"kind": "nic"}, {"address": "0000:01:00.1"}]}
    a = plan_for(ws, section, WORKSTATION_INSTALL)
    b = plan_for(ws, {**section, "devices": list(reversed(section["devices"]))}, WORKSTATION_INSTALL)
    # The same decisions; only the warnings' key paths follow the selectors' order.
    ja, jb = a.to_json(), b.to_json()
    assert [w.split(": ", 1)[1] for w in ja.pop("warnings")] == [w.split(": ", 1)[1] for w in jb.pop("warnings")]
    assert json.dumps(ja, sort_keys=True) == json.dumps(jb, sort_keys=True)
    assert Plan.from_json(json.loads(json.dumps(a.to_json()))).to_json() == a.to_json()
    assert Plan.from_json(json.loads(json.dumps(a.to_json()))) == a  # the same values, tuples as tuples
    assert a.groups  # (GroupPlan holds tuples: a list read back would not be equal)


def test_a_plan_from_before_harvester_kernel_args_reads_with_every_argument_added(ws):
    """plan.schema.json requires every key but `harvester_kernel_args` (added later) and
    a refusal's `by`, `subject` and `tentative`: a plan without them is valid, none of
    its kernel arguments counts as Harvester's own, and a refusal without them has none
    of those facts."""
    plan = plan_for(ws, {"enabled": True, "devices": [{"address": "0000:00:1f.3"}]}, WORKSTATION_INSTALL)
    old = json.loads(json.dumps(plan.to_json()))
    del old["harvester_kernel_args"], old["added_kernel_args"]
    for r in old["refused"]:
        del r["by"], r["subject"], r["tentative"]
    validate(old)
    back = Plan.from_json(old)
    assert back.kernel_args == plan.kernel_args and back.harvester_kernel_args == []
    assert back.added_kernel_args == plan.kernel_args
    assert [(r.address, r.code, r.fatal, r.by, r.subject, r.tentative) for r in back.refused] == [
        (r.address, r.code, r.fatal, None, None, False) for r in plan.refused
    ]
    assert back.refused and plan.harvester_kernel_args, "the plan must have both for this test to mean anything"


def test_disabled_section_ignores_devices_with_a_warning(ws):
    plan = plan_for(ws, {"enabled": False, "devices": [{"address": "0000:03:00.0"}]}, WORKSTATION_INSTALL)
    assert plan.passthrough == [] and plan.kernel_args == []
    assert any("enabled is false" in w for w in plan.warnings)
    assert plan.settings["pci-pt-enable"] == "false"


def test_devices_that_reset_badly_or_not_at_all_are_warned(real_kernel):
    plan = plan_for(real_kernel("on"), {"enabled": True, "devices": [{"address": "0000:02:02.0"}]}, REAL_INSTALL)
    assert any("0000:02:02.0" in w and "no reset method" in w for w in plan.warnings)


def test_unreadable_device_cannot_be_selected(tmp_path):
    import os

    root = build(fm.intel_workstation(), str(tmp_path / "m"))
    d = os.path.realpath(os.path.join(root, "sys/bus/pci/devices/0000:03:00.0"))
    for name in ("uevent", "vendor", "device", "class"):
        os.remove(os.path.join(d, name))
    facts = gather(root)
    plan = plan_for(root, {"enabled": True, "devices": [{"address": "0000:03:00.0"}]}, WORKSTATION_INSTALL, facts)
    assert "unreadable" in fatal(plan)["0000:03:00.0"]


def test_sriov_entries_are_checked_even_while_passthrough_is_off(epyc):
    with pytest.raises(BadInput, match=r"numVfs: 99 is more than"):
        plan_for(epyc, {"enabled": False, "sriov": [{"address": "0000:02:00.1", "numVfs": 99}]}, EPYC_INSTALL)


def test_public_blockers_match_what_the_planner_refuses(ws):
    from installer_ext.config.load import parse_config
    from installer_ext.plan.planner import blockers

    facts = gather(ws)
    config = parse_config({"install": WORKSTATION_INSTALL, "pciPassthrough": {"enabled": True}})
    found = blockers(facts, config.choices, config.install)
    assert [b.code for b in found["0000:00:1f.6"]] == ["management-nic"]
    assert {(b.code, b.by) for b in found["0000:00:1f.3"]} == {("same-group", "0000:00:1f.6")}
    assert "0000:01:00.0" not in found and "0000:03:00.0" not in found
    # What blockers() says is blocked is exactly what an explicit selection refuses.
    for addr in ("0000:00:1f.3", "0000:00:17.0", "0000:01:00.0"):
        plan = plan_for(ws, {"enabled": True, "devices": [{"address": addr}]}, WORKSTATION_INSTALL, facts)
        assert (addr in fatal(plan)) == (addr in found)
    refused = plan_for(ws, {"enabled": True, "devices": [{"address": "0000:00:1f.3"}]}, WORKSTATION_INSTALL, facts)
    assert refused.refused[0].by == "0000:00:1f.6"


def test_a_plan_file_is_checked_before_anything_uses_it(ws, tmp_path):
    """bind, unbind, firstboot and the kernel-args keeper read plans through one strict
    loader: a tampered plan names its key and never reaches a path or the grubenv."""
    from installer_ext.plan.planfile import load_plan

    good = plan_for(ws, {"enabled": True, "devices": [{"address": "0000:03:00.0"}]}, WORKSTATION_INSTALL).to_json()
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(good))
    assert load_plan(str(path)).to_json() == good
    for key, value, words in (
        ("kernel_args", ["iommu=pt", "x; reboot"], 'kernel_args[1]: "x; reboot" is not a kernel argument token'),
        ("host_gpus", ["../../x"], 'host_gpus[0]: "../../x" is not a PCI address (like 0000:65:00.0)'),
        ("vfio_ids", ["10de-2206"], 'vfio_ids[0]: "10de-2206" is not a vendor:device id'),
        ("settings", {"Bad Name": "true"}, 'settings: "Bad Name" is not a Setting name'),
        ("device_plugins", ["intel"], 'device_plugins[0]: "intel" is not "nvidia" or "amd"'),
    ):
        path.write_text(json.dumps({**good, key: value}))
        with pytest.raises(BadInput) as exc:
            load_plan(str(path))
        assert exc.value.lines == [f"{path}: {words}"]


def test_blockers_and_refusals_carry_their_fields(ws):
    """Each blocker says what it is about as data (code, subject, tentative, by), so a
    screen words it without reading the sentence back."""
    from installer_ext.config.model import Choices, InstallInfo
    from installer_ext.config.load import parse_config
    from installer_ext.plan.planner import blockers

    facts = gather(ws)
    config = parse_config({"install": WORKSTATION_INSTALL, "pciPassthrough": {"enabled": True}})
    known = blockers(facts, config.choices, config.install)
    fields = lambda bs: [(b.code, b.subject, b.tentative, b.by) for b in bs]  # noqa: E731
    assert fields(known["0000:00:1f.6"]) == [("management-nic", "eno1", False, None)]
    assert fields(known["0000:00:1f.3"]) == [("same-group", "management-nic", False, "0000:00:1f.6")]
    assert fields(known["0000:00:17.0"]) == [("install-disk", "sda", False, None)]
    assert fields(known["0000:02:00.0"]) == [("data-disk", "nvme0n1", False, None)]
    assert fields(known["0000:00:02.0"]) == [("boot-vga", None, False, None)]
    # Before the install section exists, the candidates are blocked tentatively, and
    # so are their group-mates.
    unknown = blockers(facts, Choices(enabled=True), InstallInfo())
    assert fields(unknown["0000:00:1f.6"]) == [("management-nic", "eno1", True, None)]
    assert fields(unknown["0000:00:1f.3"]) == [("same-group", "management-nic", True, "0000:00:1f.6")]
    assert fields(unknown["0000:00:17.0"]) == [("install-disk", "sda", True, None)]
    # A refusal keeps them, in the plan file too.
    plan = plan_for(ws, {"enabled": True, "devices": [{"address": "0000:00:1f.3"}]}, WORKSTATION_INSTALL, facts)
    [r] = plan.to_json()["refused"]
    assert {k: r[k] for k in ("address", "code", "subject", "tentative", "by", "fatal")} == {
        "address": "0000:00:1f.3", "code": "same-group", "subject": "management-nic", "tentative": False,
        "by": "0000:00:1f.6", "fatal": True,
    }
    assert Plan.from_json(plan.to_json()).refused == plan.refused


@pytest.mark.parametrize(
    "section, words",
    [
        ({"hostGpus": [{"address": "0000:01:00.1"}]}, r"hostGpus\[0\]\.address: 0000:01:00.1 is .*, not a GPU"),
        ({"sriov": [{"address": "0000:03:00.0", "numVfs": 1}]}, "not an SR-IOV physical function"),
    ],
)
def test_blockers_refuse_what_make_plan_refuses(ws, section, words):
    """`blockers()` (the screen's and detect's question) reads the choices the way
    make_plan does, errors included: one resolution of hostGpus and sriov."""
    from installer_ext.config.load import parse_config
    from installer_ext.plan.planner import blockers

    facts = gather(ws)
    config = parse_config({"install": WORKSTATION_INSTALL, "pciPassthrough": {"enabled": True, **section}})
    with pytest.raises(BadInput, match=words):
        plan_for(ws, {"enabled": True, **section}, WORKSTATION_INSTALL, facts)
    with pytest.raises(BadInput, match=words):
        blockers(facts, config.choices, config.install)


@pytest.mark.parametrize(
    "address, words",
    [
        ("0000:01:00.1", "0000:01:00.1 is an audio device, not a GPU"),
        ("0000:03:00.0", "0000:03:00.0 is a network controller, not a GPU"),
        ("0000:00:12.0", "0000:00:12.0 is a device of another class, not a GPU"),
    ],
)
def test_a_host_gpu_that_is_not_a_gpu_is_named_with_the_right_article(ws, address, words):
    with pytest.raises(BadInput) as exc:
        plan_for(ws, {"gpuDrivers": True, "hostGpus": [{"address": address}]}, WORKSTATION_INSTALL)
    assert exc.value.lines == [f"pciPassthrough.hostGpus[0].address: {words}"]


def test_every_kind_the_host_reader_gives_has_its_words():
    """The sentence above looks a kind up without a fallback: a kind added to the class
    table without words would be a KeyError, not a sentence."""
    from installer_ext.host.pciclass import KINDS
    from installer_ext.plan.planner import _A_KIND

    assert set(_A_KIND) == set(KINDS)
    assert all(w.startswith(("a ", "an ")) for w in _A_KIND.values())


def test_host_gpus_without_gpu_drivers_get_one_warning(ws):
    plan = plan_for(ws, {"enabled": True, "hostGpus": [{"address": "0000:01:00.0"}]}, WORKSTATION_INSTALL)
    about = [w for w in plan.warnings if "hostGpus" in w]
    assert about == [
        "pciPassthrough.hostGpus: gpuDrivers is false, so no device plugin is set up for them "
        "(they are only kept out of VMs)"
    ]
    assert plan.host_gpus == [] and plan.device_plugins == []
    # Still kept out of VMs, as the warning says.
    kept = plan_for(
        ws, {"enabled": True, "devices": [{"kind": "gpu"}], "hostGpus": [{"address": "0000:01:00.0"}]}, WORKSTATION_INSTALL
    )
    assert "0000:01:00.0" not in addresses(kept)
    quiet = plan_for(ws, {"enabled": True, "gpuDrivers": True, "hostGpus": [{"address": "0000:01:00.0"}]}, WORKSTATION_INSTALL)
    assert not [w for w in quiet.warnings if "hostGpus" in w]


def test_allow_unsafe_interrupts_where_it_is_not_needed_is_warned(ws, tmp_path):
    plan = plan_for(ws, {"enabled": True, "allowUnsafeInterrupts": True}, WORKSTATION_INSTALL)
    assert [w for w in plan.warnings if "allowUnsafeInterrupts" in w] == [
        "allowUnsafeInterrupts is set, but this host has interrupt remapping: it is not needed here, "
        "and its kernel argument is left out"
    ]
    assert "vfio_iommu_type1.allow_unsafe_interrupts=1" not in plan.kernel_args
    no_ir = build(fm.with_changes(fm.intel_workstation(), "no-ir", interrupt_remapping=False), str(tmp_path / "m"))
    needed = plan_for(no_ir, {"enabled": True, "allowUnsafeInterrupts": True}, WORKSTATION_INSTALL)
    assert not [w for w in needed.warnings if "not needed" in w]
    assert "vfio_iommu_type1.allow_unsafe_interrupts=1" in needed.kernel_args
