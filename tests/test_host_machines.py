"""Host facts on the realistic fake machines."""

from __future__ import annotations

import pytest

from installer_ext.host.facts import gather
from installer_ext.report import detect_blockers
from tests.fakesys import build
from tests.fakesys import machines as fm


def partition(facts, predicted: bool):
    return {frozenset(g.devices) for g in facts.groups if g.predicted == predicted}


def test_workstation_facts(machine_root):
    f = gather(machine_root("intel-workstation"))
    assert (f.cpu.vendor, f.cpu.virtualization, f.cpu.evidence) == ("intel", True, ("vmx", "kvm"))
    assert f.iommu.state == "enabled"
    gpu, audio = f.device("0000:01:00.0"), f.device("0000:01:00.1")
    assert (gpu.kind, audio.kind) == ("gpu", "audio")
    assert gpu.iommu_group == audio.iommu_group == f.device("0000:00:01.0").iommu_group == 1
    blocked = detect_blockers(f)
    assert gpu.address not in blocked and audio.address not in blocked
    igpu = f.device("0000:00:02.0")
    assert igpu.boot_vga and [b.code for b in blocked[igpu.address]] == ["boot-vga"]
    assert f.device("0000:00:1f.6").net_interfaces == ("eno1",)
    assert f.device("0000:00:17.0").block_devices == ("sda",)
    assert f.device("0000:02:00.0").block_devices == ("nvme0n1",)
    # Partitions follow their disk and are not counted as disks of their own.
    parts = {b.name: b.disk for b in f.block}
    assert parts["sda2"] == "sda" and parts["nvme0n1p1"] == "nvme0n1" and parts["sda"] is None
    assert f.disk_aliases == {"/dev/disk/by-id/ata-Samsung_SSD_860_EVO_1TB_S3Z9NB0K123456": "sda"}
    assert f.driver_modules["xhci_hcd"] == "xhci_pci" and "pcieport" not in f.driver_modules


def test_workstation_names_come_from_pci_ids(machine_root, tmp_path, monkeypatch):
    ids = tmp_path / "pci.ids"
    ids.write_text(
        "# test database\n10de  NVIDIA Corporation\n\t1aef  GA102 High Definition Audio Controller\n"
        "\t2206  GA102 [GeForce RTX 3080]\n\t\t1458 403b  Gigabyte board\n"
        "8086  Intel Corporation\n\t1533  I210 Gigabit Network Connection\n"
        "C 03  Display controller\n\t00  VGA compatible controller\n"
    )
    monkeypatch.setenv("INSTALLER_EXT_PCI_IDS", str(ids))
    f = gather(machine_root("intel-workstation"))
    gpu = f.device("0000:01:00.0")
    assert (gpu.vendor_name, gpu.device_name) == ("NVIDIA Corporation", "GA102 [GeForce RTX 3080]")
    assert f.device("0000:03:00.0").device_name == "I210 Gigabit Network Connection"
    # Unknown to this database: no name, the ids stay.
    assert f.device("0000:00:17.0").device_name is None
    monkeypatch.setenv("INSTALLER_EXT_PCI_IDS", "none")
    f = gather(machine_root("intel-workstation"))
    assert f.device("0000:01:00.0").vendor_name is None


def test_iommu_off_twin_predicts_the_real_groups(machine_root):
    on = gather(machine_root("intel-workstation"))
    off = gather(machine_root("intel-workstation-iommu-off"))
    assert off.iommu.state == "available" and off.groups_predicted
    assert partition(off, True) == partition(on, False)
    assert {d.address: d.predicted_group for d in off.devices} == {d.address: d.iommu_group for d in on.devices}


@pytest.mark.parametrize("name", ["intel-dual-gpu", "amd-epyc-server"])
def test_prediction_matches_real_groups_on_other_topologies(name, tmp_path):
    machine = fm.ALL[name]()
    on = gather(build(machine, str(tmp_path / "on")))
    off_machine = fm.with_changes(machine, name + "-off", iommu="off")
    off = gather(build(off_machine, str(tmp_path / "off")))
    assert partition(off, True) == partition(on, False)


def test_two_identical_gpus_in_two_groups(machine_root):
    f = gather(machine_root("intel-dual-gpu"))
    a, b = f.device("0000:01:00.0"), f.device("0000:02:00.0")
    assert a.ids == b.ids == "10de:2206"
    assert a.iommu_group != b.iommu_group
    assert f.device("0000:01:00.1").iommu_group == a.iommu_group
    assert f.device("0000:02:00.1").iommu_group == b.iommu_group


def test_amd_server(machine_root):
    f = gather(machine_root("amd-epyc-server"))
    assert (f.cpu.vendor, f.cpu.virtualization, f.iommu.firmware_tables) == ("amd", True, ("IVRS",))
    bmc = f.device("0000:07:00.0")
    assert bmc.boot_vga and bmc.parent == "0000:06:00.0"
    assert bmc.iommu_group == f.device("0000:06:00.0").iommu_group
    # The NVMe namespace lives under nvme-subsystem (native multipath): found anyway.
    assert {b.name: b.controllers for b in f.block}["nvme0n1"] == ("0000:01:00.0",)
    port0, port1 = f.device("0000:02:00.0"), f.device("0000:02:00.1")
    assert port0.net_interfaces == ("enp2s0f0",) and port1.net_interfaces == ("enp2s0f1",)
    assert port0.sriov.total_vfs == 64 and port0.sriov.num_vfs == 0
    # No VFs now: a whole port may still be passed; only its link makes it a candidate
    # for the management network while the install config is not known.
    assert [(b.code, b.tentative) for b in detect_blockers(f)[port0.address]] == [("management-nic", True)]
    assert port0.iommu_group != port1.iommu_group


def test_no_iommu_host(machine_root):
    f = gather(machine_root("no-iommu-desktop"))
    assert f.iommu.state == "absent"
    assert f.iommu.interrupt_remapping is False
    assert f.groups == () and not f.groups_predicted
    blocked = detect_blockers(f)
    for d in f.devices:
        assert "no-iommu" in [b.code for b in blocked[d.address]]


def test_sriov_host_with_thousands_of_vfs(machine_root):
    f = gather(machine_root("sriov-host"))
    vfs = [d for d in f.devices if d.physfn]
    assert len(vfs) == 16 * 200
    pfs = [d for d in f.devices if d.sriov]
    assert len(pfs) == 16
    blocked = detect_blockers(f)
    for pf in pfs:
        assert len(pf.virtfns) == 200
        assert pf.sriov.vf_device_id == "1889"
        assert [b.code for b in blocked[pf.address]][0] == "sriov-pf"
    assert all(f.device(v.physfn).sriov is not None and v.address not in blocked for v in vfs)
    assert len({v.iommu_group for v in vfs}) == len(vfs)


def test_udev_hwdb_names_on_a_live_system_without_pci_ids(monkeypatch):
    """On a real system with no hwdata, names come from udev's database (pyudev)."""
    import sys
    import types

    from installer_ext.host import pciids

    seen = []

    class FakeDevice:
        def __init__(self, path):
            seen.append(path)
            self.properties = {"ID_VENDOR_FROM_DATABASE": "NVIDIA Corporation", "ID_MODEL_FROM_DATABASE": "GA102"}

    fake = types.SimpleNamespace(
        Context=lambda: object(),
        Devices=types.SimpleNamespace(from_sys_path=lambda ctx, path: FakeDevice(path)),
    )
    monkeypatch.setitem(sys.modules, "pyudev", fake)
    names = pciids.udev_names(["0000:01:00.0"])
    assert names == {"0000:01:00.0": ("NVIDIA Corporation", "GA102")}
    assert seen == ["/sys/bus/pci/devices/0000:01:00.0"]


def test_host_facts_are_frozen_facts_without_decisions(machine_root):
    """Facts are read once and never changed; whether a function may go to a VM is not
    a fact but the planner's decision, so the facts hold no blockers."""
    import dataclasses

    f = gather(machine_root("intel-workstation"))
    gpu = f.device("0000:01:00.0")
    with pytest.raises(dataclasses.FrozenInstanceError):
        gpu.driver = "vfio-pci"
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.devices = ()
    assert isinstance(f.devices, tuple) and isinstance(f.groups, tuple)
    assert not hasattr(gpu, "blockers")
    assert {"blocked", "blockers"}.isdisjoint(gpu.to_json())
    with pytest.raises(TypeError):
        f.driver_modules["nvidia"] = "x"
