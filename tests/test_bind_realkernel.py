"""The binder on a recording of a real kernel's sysfs (QEMU q35 + emulated VT-d, Debian
6.1): real link layouts, real attribute formats (`sriov_vf_device` reads `10`)."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from installer_ext.boot.binder import bind
from installer_ext.boot.options import Options
from installer_ext.boot.unbinder import unbind
from tests.fakekernel import FakeKernel, grp, plan_json, pt, sriov_entry, write_plan

FIXTURE = "/work/shared/fixtures/real-kernel/q35-vtd-on.tar.gz"
NIC0, NIC1 = "0000:00:03.0", "0000:00:04.0"  # two e1000e 8086:10d3, one group each
NVME, VF0, VF1 = "0000:01:00.0", "0000:01:00.1", "0000:01:00.2"
BRIDGE, E1000A, E1000B = "0000:00:06.0", "0000:02:01.0", "0000:02:02.0"  # one group

pytestmark = pytest.mark.skipif(not os.path.exists(FIXTURE), reason="real-kernel recording not present")


@pytest.fixture
def k(tmp_path) -> FakeKernel:
    root = str(tmp_path / "root")
    os.makedirs(root)
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(root, filter="tar")
    return FakeKernel(root)


def run(k: FakeKernel, verb=bind):
    return verb(Options(root=k.root, io=k.io, clock=k.clock, out=io.StringIO(), timeout=2.0))


def read(k: FakeKernel, *parts: str) -> str:
    with open(os.path.join(k.sys, *parts)) as f:
        return f.read()


def test_bind_one_of_two_identical_nics(k):
    write_plan(k.root, plan_json(passthrough=[pt(NIC1, "8086:10d3", 4, driver="e1000e")],
                                 groups=[grp([NIC1], [NIC1], gid=4)]))
    result = run(k)
    assert result.ok and k.driver_of(NIC1) == "vfio-pci"
    assert os.readlink(os.path.join(k.devdir(NIC1), "driver")) == "../../../bus/pci/drivers/vfio-pci"
    assert read(k, "bus/pci/drivers/e1000e/unbind") == NIC1
    assert read(k, "bus/pci/drivers_probe") == NIC1
    assert read(k, "bus/pci/devices", NIC1, "driver_override") == "vfio-pci\n"
    # The twin with the same ids stays on the host (no binding by id).
    assert k.driver_of(NIC0) == "e1000e"
    assert read(k, "bus/pci/devices", NIC0, "driver_override") == "(null)\n"
    assert sorted(os.listdir(os.path.join(k.pci, "drivers", "e1000e"))).count(NIC0) == 1
    assert result.status.devices[0].previous_driver == "e1000e"
    # And back.
    assert run(k, unbind).ok and k.driver_of(NIC1) == "e1000e"


def test_nvme_vfs_already_there_are_bound(k):
    write_plan(k.root, plan_json(
        passthrough=[pt(v, "1b36:0010", i + 9, why="sriov-vf", vf_of=NVME) for i, v in enumerate((VF0, VF1))],
        sriov=[sriov_entry(NVME, 2, True, "1b36:0010", "0010", 2, [VF0, VF1])],
    ))
    result = run(k)
    assert result.ok and result.status.sriov[0].status == "unchanged"
    assert (k.driver_of(VF0), k.driver_of(VF1), k.driver_of(NVME)) == ("vfio-pci", "vfio-pci", "nvme")
    # The VFs had no driver (autoprobe 0): no unbind, only override + probe.
    assert [os.path.basename(p) for p, _ in k.io.writes] == ["driver_override", "drivers_probe"] * 2


def test_nvme_vf_count_changed_through_zero(k):
    write_plan(k.root, plan_json(sriov=[sriov_entry(NVME, 1, True, "1b36:0010", "0010", 2, [VF0])]))
    result = run(k)
    assert result.ok and result.status.sriov[0].status == "set"
    assert [(os.path.basename(p), v) for p, v in k.io.writes][:2] == [("sriov_numvfs", "0"), ("sriov_numvfs", "1")]
    assert not os.path.exists(os.path.join(k.pci, "devices", VF1))
    assert k.driver_of(VF0) == "vfio-pci" and k.group_of(VF0) is not None
    assert read(k, "bus/pci/devices", VF0, "device") == "0x0010\n"


def test_nvme_above_total_is_refused(k):
    write_plan(k.root, plan_json(sriov=[sriov_entry(NVME, 3, True, "1b36:0010", "0010", 2)]))
    result = run(k)
    assert result.status.sriov[0].reason == "num_vfs 3 is above sriov_totalvfs 2" and k.io.writes == []


def test_shared_group_behind_the_pci_bridge(k):
    write_plan(k.root, plan_json(
        passthrough=[pt(E1000A, "8086:100e", 6), pt(E1000B, "8086:100e", 6, why="same-group")],
        groups=[grp([BRIDGE, E1000A, E1000B], [E1000A, E1000B], [BRIDGE], 6)],
    ))
    result = run(k)
    assert result.ok and k.driver_of(E1000A) == k.driver_of(E1000B) == "vfio-pci"
    assert k.driver_of(BRIDGE) is None  # the bridge is never bound
    assert not any(p.endswith("unbind") for p, _ in k.io.writes)  # they had no driver


def test_half_of_the_shared_group_is_refused(k):
    write_plan(k.root, plan_json(passthrough=[pt(E1000A, "8086:100e", 6)],
                                 groups=[grp([BRIDGE, E1000A], [E1000A], [BRIDGE], 6)]))
    result = run(k)
    assert not result.ok and k.io.writes == []
    assert result.status.devices[0].reason == (
        f"IOMMU group 6 also holds {E1000B} (8086:100e, driver none), which the plan does not cover"
    )


def test_ich9_group_needs_every_function(k):
    # The AHCI controller carrying the disk shares group 7 with the LPC bridge (an
    # endpoint, class 0601) and the SMBus: asking for it alone must not bind anything.
    write_plan(k.root, plan_json(passthrough=[pt("0000:00:1f.2", "8086:2922", 7, driver="ahci")]))
    result = run(k)
    assert "0000:00:1f.0" in result.status.devices[0].reason and k.io.writes == []
    assert k.driver_of("0000:00:1f.2") == "ahci"
