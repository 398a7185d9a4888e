"""SR-IOV in the binder: autoprobe off before VFs appear, counts changed through 0,
never above sriov_totalvfs, VFs found through virtfnN links and bound by address."""

from __future__ import annotations

import errno
import io
import os

import pytest

from installer_ext.boot.binder import bind
from installer_ext.boot.options import Options
from installer_ext.host.address import vf_address
from tests.fakekernel import FakeKernel, plan_json, pt, sriov_entry, write_plan
from tests.fakesys.builder import build
from tests.fakesys.machines import amd_epyc_server, node_of

PF = "0000:02:00.1"  # X710 port 1 (port 0 is the management NIC)
VFS = [vf_address(PF, 79, 1, i) for i in range(4)]  # 0000:02:0a.0 ...


@pytest.fixture
def k(tmp_path) -> FakeKernel:
    root = str(tmp_path / "root")
    build(node_of(amd_epyc_server()), root)
    kern = FakeKernel(root, native={"8086:154c": "iavf"})
    kern.load_driver("iavf")
    return kern


def plan(num: int = 4, vfs: list[str] | None = None, listed: bool = True, to_vfio: bool = True) -> dict:
    vfs = VFS[:num] if vfs is None else vfs
    return plan_json(
        passthrough=[pt(a, "8086:154c", why="sriov-vf", vf_of=PF) for a in vfs] if listed else [],
        sriov=[sriov_entry(PF, num, to_vfio, "8086:1572", "154c", 64, vfs)],
    )


def run(k: FakeKernel):
    return bind(Options(root=k.root, io=k.io, clock=k.clock, out=io.StringIO(), timeout=2.0))


def pf_attr(k: FakeKernel, name: str) -> str:
    with open(os.path.join(k.devdir(PF), name)) as f:
        return f.read().strip()


def names(k: FakeKernel) -> list[tuple[str, str]]:
    return [(os.path.basename(p), v) for p, v in k.io.writes]


def test_vfs_are_created_with_autoprobe_off_and_bound(k):
    write_plan(k.root, plan())
    result = run(k)

    assert result.ok
    assert names(k)[:2] == [("sriov_drivers_autoprobe", "0"), ("sriov_numvfs", "4")]
    assert pf_attr(k, "sriov_numvfs") == "4" and pf_attr(k, "sriov_drivers_autoprobe") == "0"
    assert [os.path.basename(os.readlink(os.path.join(k.devdir(PF), f"virtfn{i}"))) for i in range(4)] == VFS
    for vf in VFS:
        assert k.driver_of(vf) == "vfio-pci"
        assert k.group_of(vf) is not None
    # iavf never saw a VF: nothing had to be unbound.
    assert not any(v in VFS and p.endswith("unbind") for p, v in k.io.writes)
    assert k.driver_of(PF) == "i40e"
    st = result.status
    assert [s.to_json() for s in st.sriov] == [{"address": PF, "num_vfs": 4, "status": "set", "reason": None}]
    assert [d.previous_driver for d in st.devices] == [None] * 4


def test_with_autoprobe_on_the_host_driver_would_take_them(k):
    # The simulator's side of the fact above: VFs created with autoprobe 1 go to iavf.
    k.io.write(os.path.join(k.devdir(PF), "sriov_numvfs"), "2")
    assert [k.driver_of(v) for v in VFS[:2]] == ["iavf", "iavf"]


def test_second_run_is_unchanged_and_writes_nothing(k):
    write_plan(k.root, plan())
    run(k)
    k.io.writes.clear()
    result = run(k)
    assert result.ok and k.io.writes == []
    assert result.status.sriov[0].status == "unchanged"
    assert {d.status for d in result.status.devices} == {"already-bound"}


def test_changing_a_count_goes_through_zero(k):
    write_plan(k.root, plan(4))
    run(k)
    k.io.writes.clear()
    write_plan(k.root, plan(2))
    result = run(k)
    assert result.ok
    assert names(k)[:2] == [("sriov_numvfs", "0"), ("sriov_numvfs", "2")]
    assert pf_attr(k, "sriov_numvfs") == "2"
    assert not os.path.exists(os.path.join(k.pci, "devices", VFS[2]))
    assert [k.driver_of(v) for v in VFS[:2]] == ["vfio-pci", "vfio-pci"]


def test_the_simulator_refuses_non_zero_to_non_zero(k):
    k.io.write(os.path.join(k.devdir(PF), "sriov_numvfs"), "2")
    with pytest.raises(OSError) as e:
        k.io.write(os.path.join(k.devdir(PF), "sriov_numvfs"), "4")
    assert e.value.errno == errno.EBUSY


def test_never_above_totalvfs(k):
    write_plan(k.root, plan(65, vfs=[], listed=False))
    result = run(k)
    assert k.io.writes == [] and not result.ok
    assert result.status.sriov[0].reason == "num_vfs 65 is above sriov_totalvfs 64"


def test_vfs_of_a_failed_pf_are_skipped(k):
    k.detach(PF)  # no PF driver: no VFs can be made
    write_plan(k.root, plan())
    result = run(k)
    assert result.status.sriov[0].status == "skipped"
    assert result.status.sriov[0].reason == "PF has no driver; only its host driver can create VFs"
    assert {d.status for d in result.status.devices} == {"skipped"}
    assert result.status.devices[0].reason.startswith(f"VF of {PF}, whose SR-IOV is not set")
    assert k.io.writes == []


def test_real_vf_addresses_win_over_predicted_ones(k):
    wrong = [f"0000:02:1{i}.0" for i in range(4)]
    write_plan(k.root, plan(vfs=wrong))
    result = run(k)
    assert result.ok
    assert [d.address for d in result.status.devices] == VFS
    assert result.status.devices[0].reason == f"VF 0 of {PF} is at {VFS[0]}, the plan predicted {wrong[0]}"
    assert result.status.sriov[0].reason.startswith(f"VFs at {VFS[0]}")


def test_vfs_to_vfio_binds_every_vf_even_unlisted(k):
    write_plan(k.root, plan(listed=False))
    result = run(k)
    assert result.ok and [d.address for d in result.status.devices] == VFS
    assert [d.device_id for d in result.status.devices] == ["154c"] * 4


def test_vfs_for_the_host_keep_autoprobe(k):
    write_plan(k.root, plan(2, listed=False, to_vfio=False))
    result = run(k)
    assert result.ok and names(k) == [("sriov_numvfs", "2")]
    assert [k.driver_of(v) for v in VFS[:2]] == ["iavf", "iavf"]


def test_vf_sharing_the_pfs_group_is_not_bound(tmp_path):
    root = str(tmp_path / "root")
    build(node_of(amd_epyc_server()), root)
    k = FakeKernel(root, vf_own_groups=False)  # a device without ACS between its functions
    write_plan(k.root, plan(2))
    result = run(k)
    assert result.status.sriov[0].status == "set"
    assert {d.status for d in result.status.devices} == {"skipped"}
    assert f"also holds {PF} (8086:1572, driver i40e)" in result.status.devices[0].reason
    assert [k.driver_of(v) for v in VFS[:2]] == [None, None]
