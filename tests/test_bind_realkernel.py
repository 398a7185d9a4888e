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
from tests.conftest import REAL_KERNEL
from tests.fakekernel import FakeKernel, grp, plan_json, pt, sriov_entry, write_plan

FIXTURE = os.path.join(REAL_KERNEL, "q35-vtd-on.tar.gz")
NIC0, NIC1 = "0000:00:03.0", "0000:00:04.0"  # two e1000e 8086:10d3, one group each
NVME, VF0, VF1 = "0000:01:00.0", "0000:01:00.1", "0000:01:00.2"
BRIDGE, E1000A, E1000B = "0000:00:06.0", "0000:02:01.0", "0000:02:02.0"  # one group

# The recording holds sysfs and the PCI parts of procfs; the binder also reads the mount
# table, swap and routes. These are the guest's as tests/e2e/init.sh sets it up (an
# overlay over the host's root shared by 9p, tmpfs on /run and /tmp, no swap, no IP
# address), in the kernel's formats (fs/proc_namespace.c show_mountinfo(),
# mm/swapfile.c swap_show(), net/ipv4/fib_trie.c fib_route_seq_show()): no disk of the
# recording is mounted and no NIC routes.
ROUTE_HEAD = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"
GUEST_PROC = {
    "self/mountinfo": (
        "22 1 0:20 / / rw,relatime - overlay overlay rw,lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work\n"
        "23 22 0:21 / /proc rw,relatime - proc proc rw\n"
        "24 22 0:22 / /sys rw,relatime - sysfs sysfs rw\n"
        "25 22 0:5 / /dev rw,relatime - devtmpfs devtmpfs rw,size=240564k,nr_inodes=60141,mode=755\n"
        "26 22 0:23 / /run rw,relatime - tmpfs tmpfs rw,mode=755\n"
        "27 22 0:24 / /tmp rw,relatime - tmpfs tmpfs rw\n"
        "28 26 0:25 / /run/e2e rw,relatime - 9p out rw,access=client,msize=262144,trans=virtio\n"
    ),
    "swaps": "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n",
    "net/route": f"{ROUTE_HEAD:<127}\n",
}


@pytest.fixture
def k(tmp_path) -> FakeKernel:
    root = str(tmp_path / "root")
    os.makedirs(root)
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(root, filter="tar")
    for rel, text in GUEST_PROC.items():
        path = os.path.join(root, "proc", rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
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
