"""detect on the real kernel's recorded sysfs: it must say exactly what the kernel says."""

from __future__ import annotations

import os

from installer_ext.host.facts import gather
from installer_ext.report import detect_blockers


def kernel_groups(root: str) -> dict[int, set[str]]:
    """Groups read straight from sys/kernel/iommu_groups, independent of our code."""
    base = os.path.join(root, "sys", "kernel", "iommu_groups")
    return {int(g): set(os.listdir(os.path.join(base, g, "devices"))) for g in os.listdir(base)}


def kernel_drivers(root: str) -> dict[str, str | None]:
    base = os.path.join(root, "sys", "bus", "pci", "devices")
    out = {}
    for addr in os.listdir(base):
        link = os.path.join(base, addr, "driver")
        out[addr] = os.path.basename(os.readlink(link)) if os.path.islink(link) else None
    return out


def test_iommu_on_groups_are_the_kernels(real_kernel):
    root = real_kernel("on")
    facts = gather(root)
    assert facts.iommu.state == "enabled"
    assert facts.groups_predicted is False
    ours = {g.id: set(g.devices) for g in facts.groups}
    assert ours == kernel_groups(root)
    assert len(ours) == 11
    for d in facts.devices:
        assert d.address in kernel_groups(root)[d.iommu_group]


def test_iommu_on_drivers_are_the_kernels(real_kernel):
    root = real_kernel("on")
    facts = gather(root)
    assert {d.address: d.driver for d in facts.devices} == kernel_drivers(root)


def test_sriov_vfs_with_their_pf(real_kernel):
    facts = gather(real_kernel("on"))
    pf = facts.device("0000:01:00.0")
    assert pf.sriov.total_vfs == 2 and pf.sriov.num_vfs == 2
    assert pf.sriov.drivers_autoprobe is False
    assert pf.virtfns == ("0000:01:00.1", "0000:01:00.2")
    for vf in ("0000:01:00.1", "0000:01:00.2"):
        assert facts.device(vf).physfn == "0000:01:00.0"
        assert facts.device(vf).driver is None
        assert vf not in detect_blockers(facts)
    assert [b.code for b in detect_blockers(facts)[pf.address]] == ["sriov-pf"]
    # VF n sits at PF + offset + n * stride: the plan predicts them from these.
    assert (pf.sriov.offset, pf.sriov.stride, pf.sriov.vf_device_id) == (1, 1, "0010")


def test_nics_and_disk_are_on_the_right_functions(real_kernel):
    facts = gather(real_kernel("on"))
    assert {n.name: n.address for n in facts.net} == {
        "eth0": "0000:00:03.0",
        "eth1": "0000:00:04.0",
        "lo": None,
    }
    assert facts.device("0000:00:03.0").net_interfaces == ("eth0",)
    assert facts.device("0000:00:04.0").net_interfaces == ("eth1",)
    assert [(b.name, b.controllers) for b in facts.block] == [("sda", ("0000:00:1f.2",))]
    assert facts.device("0000:00:1f.2").block_devices == ("sda",)


def test_cpu_and_interrupt_remapping(real_kernel):
    facts = gather(real_kernel("on"))
    assert facts.cpu.vendor == "intel"
    # TCG shows an `svm` flag on this GenuineIntel model: it is not VT-x, and the VM
    # has no nested virtualization.
    assert facts.cpu.virtualization is False
    assert facts.iommu.interrupt_remapping is True
    assert facts.iommu.firmware_tables == ("DMAR",)
    assert facts.iommu.units == ("dmar0",)


def test_kinds_bridges_and_resets(real_kernel):
    facts = gather(real_kernel("on"))
    kinds = {d.address: d.kind for d in facts.devices}
    assert kinds["0000:00:03.0"] == "nic"
    assert kinds["0000:00:1f.2"] == "storage"
    assert kinds["0000:00:05.0"] == kinds["0000:00:06.0"] == kinds["0000:00:1f.0"] == "bridge"
    assert facts.device("0000:00:05.0").pci_bridge and facts.device("0000:00:06.0").pci_bridge
    assert not facts.device("0000:00:1f.0").pci_bridge  # an ISA bridge: type 0 header
    assert facts.device("0000:00:05.0").parent is None
    assert facts.device("0000:01:00.0").parent == "0000:00:05.0"
    assert facts.device("0000:02:01.0").parent == "0000:00:06.0"
    assert facts.device("0000:01:00.0").reset_methods == ("flr", "bus")
    assert facts.device("0000:00:03.0").resettable is True


def test_iommu_off_is_available_with_the_real_grouping_predicted(real_kernel):
    on = gather(real_kernel("on"))
    off = gather(real_kernel("off"))
    assert off.iommu.state == "available"
    assert off.groups_predicted is True
    assert all(g.predicted for g in off.groups)
    assert all(d.iommu_group is None for d in off.devices)
    present = {d.address for d in off.devices}
    real = {frozenset(a for a in g.devices if a in present) for g in on.groups} - {frozenset()}
    predicted = {frozenset(g.devices) for g in off.groups}
    assert predicted == real
    # Numbered as the kernel numbers them (allocation in address order).
    assert {d.address: d.predicted_group for d in off.devices} == {
        d.address: d.iommu_group for d in on.devices if d.address in present
    }
    # Interrupt remapping stays on with intel_iommu=off, as on the installer ISO.
    assert off.iommu.interrupt_remapping is True
