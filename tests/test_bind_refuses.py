"""At every boot the binder refuses what the running host needs, whatever plan.json says
(issue #12 item 3, the binder half). Each case is a plan edited by hand on an installed
node (tests/fakesys/machines.harvester_node: Elemental's mounts, Harvester's management
bond and bridge, in the kernel's formats): the function is reported, nothing is written
to it, and `installer-ext bind` exits 3."""

from __future__ import annotations

import argparse
import io
import os

import pytest

from installer_ext.boot.binder import bind
from installer_ext.commands.bind import add_bind_arguments, run_bind
from installer_ext.boot.options import Options
from installer_ext.errors import EXIT_REFUSED
from tests.fakekernel import FakeKernel, grp, plan_json, pt, write_plan
from tests.fakesys.builder import build
from tests.fakesys.machines import workstation_node
from tests.fakesys.runtime import Mount, Route, Swap, VirtBlock

AHCI, NVME, ENO1, AUDIO_PCH, IGB = "0000:00:17.0", "0000:02:00.0", "0000:00:1f.6", "0000:00:1f.3", "0000:03:00.0"
GPU, GPU_AUDIO, PORT, VGA = "0000:01:00.0", "0000:01:00.1", "0000:00:01.0", "0000:00:02.0"
PCH = ["0000:00:1f.0", AUDIO_PCH, "0000:00:1f.4", "0000:00:1f.5", ENO1]  # IOMMU group 9
IDS = {AHCI: "8086:a352", NVME: "144d:a808", ENO1: "8086:15bc", AUDIO_PCH: "8086:a348", IGB: "8086:1533",
       GPU: "10de:2206", GPU_AUDIO: "10de:1aef", PORT: "8086:1901", VGA: "8086:3e98", "0000:00:00.0": "8086:3e30"}
GROUP = {AHCI: 6, NVME: 10, IGB: 11, VGA: 2, "0000:00:00.0": 0}


def node(tmp_path, m=None) -> FakeKernel:
    return FakeKernel(build(m or workstation_node(), str(tmp_path / "node")))


def single(address: str) -> dict:
    """A plan edited by hand: one function, its own group."""
    g = GROUP.get(address)
    return plan_json(passthrough=[pt(address, IDS[address], g)], groups=[grp([address], [address], gid=g)])


def with_gpu(edited: dict) -> dict:
    """The hand-edited entries next to a good GPU group, which must still be bound."""
    edited["passthrough"] += [pt(GPU, IDS[GPU], 1, driver="nvidia"), pt(GPU_AUDIO, IDS[GPU_AUDIO], 1, why="same-group")]
    edited["groups"].append(grp([PORT, GPU, GPU_AUDIO], [GPU, GPU_AUDIO], [PORT], 1))
    return edited


def cli(k: FakeKernel, *argv: str) -> tuple[int, str]:
    p = argparse.ArgumentParser()
    add_bind_arguments(p)
    out = io.StringIO()
    rc = run_bind(p.parse_args(["--root", k.root, "--timeout", "2", *argv]), Options(io=k.io, clock=k.clock, out=out))
    return rc, out.getvalue()


def untouched(k: FakeKernel, address: str, driver: str) -> None:
    assert k.driver_of(address) == driver
    assert k.override_of(address) is None
    assert not any(address in p or v == address for p, v in k.io.writes), k.io.writes


def line_of(out: str, address: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(address))


def test_the_controller_of_the_root_disk(tmp_path):
    k = node(tmp_path)
    write_plan(k.root, with_gpu(single(AHCI)))
    rc, out = cli(k)
    assert rc == EXIT_REFUSED
    assert line_of(out, AHCI) == (
        f"{AHCI} [8086:a352]: skipped: the host needs it: holds the filesystem mounted at / "
        "(loop0 → /run/initramfs/cos-state/cOS/active.img → sda4) (and 3 more); never bound, whatever the plan says"
    )
    untouched(k, AHCI, "ahci")
    assert k.driver_of(GPU) == k.driver_of(GPU_AUDIO) == "vfio-pci"  # the rest of the plan goes on
    assert out.rstrip().splitlines()[-1].startswith("bind: 2 bound, 0 already bound, 1 skipped, 0 failed")


def test_the_data_disk(tmp_path):
    k = node(tmp_path)
    write_plan(k.root, single(NVME))
    rc, out = cli(k)
    assert rc == EXIT_REFUSED and "holds the filesystem mounted at /var/lib/harvester/defaultdisk (nvme0n1)" in out
    untouched(k, NVME, "nvme")


@pytest.mark.parametrize("network", ["nm", "wicked"])
@pytest.mark.parametrize("up", [True, False], ids=["network-up", "network-not-up-yet"])
def test_the_management_nic(tmp_path, network, up):
    k = node(tmp_path, workstation_node(network=network, up=up))
    plan = plan_json(passthrough=[pt(a, IDS.get(a, "8086:a305"), 9) for a in (AUDIO_PCH, ENO1)],
                     groups=[grp(PCH, [AUDIO_PCH, ENO1], gid=9)])
    write_plan(k.root, plan)
    rc, out = cli(k)
    assert rc == EXIT_REFUSED
    if up:
        assert "the host needs it: carries the default route (mgmt-br → mgmt-bo → eno1) (and 2 more)" in line_of(out, ENO1)
    else:
        source = ("/etc/NetworkManager/system-connections/bond-slave-eno1.nmconnection" if network == "nm"
                  else "/etc/sysconfig/network/ifcfg-mgmt-bo")
        assert line_of(out, ENO1).endswith(
            f"is configured as a port of Harvester's management bridge (mgmt-br → mgmt-bo → eno1, {source}); "
            "never bound, whatever the plan says"
        )
    # Its group-mate has a problem of its own (the plan does not cover the whole group).
    assert line_of(out, AUDIO_PCH) == (
        f"{AUDIO_PCH} [8086:a348]: skipped: IOMMU group 9 also holds 0000:00:1f.0 (8086:a305, driver none), "
        "which the plan does not cover"
    )
    untouched(k, ENO1, "e1000e")
    untouched(k, AUDIO_PCH, "snd_hda_intel")


def test_a_group_mate_of_the_management_nic(tmp_path):
    """The plan asks for the PCH audio alone: its group holds the management NIC."""
    k = node(tmp_path)
    write_plan(k.root, plan_json(passthrough=[pt(AUDIO_PCH, IDS[AUDIO_PCH], 9)],
                                 groups=[grp(PCH, [AUDIO_PCH], left=[ENO1], gid=9)]))
    rc, out = cli(k)
    assert rc == EXIT_REFUSED
    assert line_of(out, AUDIO_PCH) == (
        f"{AUDIO_PCH} [8086:a348]: skipped: IOMMU group 9 also holds {ENO1}, which the host needs: "
        "carries the default route (mgmt-br → mgmt-bo → eno1)"
    )
    untouched(k, AUDIO_PCH, "snd_hda_intel")


def test_a_default_route_through_a_vlan_on_the_spare_nic(tmp_path):
    m = workstation_node()
    from tests.fakesys.runtime import NetDev

    m.runtime.netdevs += (NetDev("enp3s0.30", "vlan", ("enp3s0",)),)
    m.runtime.routes = (Route("enp3s0.30", gateway="10.30.0.1"),)
    k = node(tmp_path, m)
    write_plan(k.root, single(IGB))
    rc, out = cli(k)
    assert rc == EXIT_REFUSED and "carries the default route (enp3s0.30 → enp3s0)" in out
    untouched(k, IGB, "igb")


def test_active_swap_on_a_disk_nothing_mounts(tmp_path):
    m = workstation_node()
    m.runtime.mounts = tuple(x for x in m.runtime.mounts if x.block != "nvme0n1")
    m.runtime.virt_blocks += (VirtBlock("dm-3", slaves=("nvme0n1",), dm_name="swap"),)
    m.runtime.swaps = (Swap("/dev/dm-3"),)
    k = node(tmp_path, m)
    write_plan(k.root, single(NVME))
    rc, out = cli(k)
    assert rc == EXIT_REFUSED and "holds the active swap /dev/dm-3 (dm-3 → nvme0n1)" in out
    untouched(k, NVME, "nvme")


@pytest.mark.parametrize("source", [
    "/dev/disk/by-id/nvme-Samsung_SSD_970_S4EWNX0R123456",
    "/dev/disk/by-uuid/0b5c7a1e-8d1c-4a57-9d5b-0e7f7c4a2f11",
    "/dev/disk/by-label/HARV_LH_DEFAULT",
    "/dev/mapper/mpatha",
])
def test_mounted_through_a_udev_link_in_proc_mounts(tmp_path, source):
    """No mountinfo (no MAJ:MIN): the SOURCE string of /proc/mounts, through /dev."""
    m = workstation_node()
    m.runtime.mountinfo = False
    m.runtime.virt_blocks += (VirtBlock("dm-0", slaves=("nvme0n1",), dm_name="mpatha"),)  # multipath
    m.runtime.dev_links = {
        **m.runtime.dev_links,
        "disk/by-id/nvme-Samsung_SSD_970_S4EWNX0R123456": "nvme0n1",
        "disk/by-uuid/0b5c7a1e-8d1c-4a57-9d5b-0e7f7c4a2f11": "nvme0n1",
        "mapper/mpatha": "dm-0",
    }
    m.runtime.mounts = tuple(x for x in m.runtime.mounts if x.block != "nvme0n1") + (
        Mount(source, "/var/lib/longhorn", "ext4", "dm-0" if "mapper" in source else "nvme0n1"),
    )
    k = node(tmp_path, m)
    write_plan(k.root, single(NVME))
    rc, out = cli(k)
    assert rc == EXIT_REFUSED and "holds the filesystem mounted at /var/lib/longhorn" in out
    untouched(k, NVME, "nvme")


def test_an_unreadable_mount_table_keeps_every_disk_but_not_the_gpu(tmp_path):
    m = workstation_node()
    m.runtime.mounts = None
    k = node(tmp_path, m)
    write_plan(k.root, with_gpu(single(NVME)))
    rc, out = cli(k)
    assert rc == EXIT_REFUSED
    assert f"has block devices, and {k.root}/proc/mounts could not be read" in line_of(out, NVME)
    untouched(k, NVME, "nvme")
    assert k.driver_of(GPU) == "vfio-pci"


@pytest.mark.parametrize("address,words", [
    (VGA, "is the boot VGA device now; binding it would take the host's console"),
    (PORT, "is a PCI bridge; bridges are never bound"),
    ("0000:00:00.0", "is a bridge (class 060000); bridges are never bound"),  # the host bridge, header type 0
])
def test_boot_display_and_bridges(tmp_path, address, words):
    k = node(tmp_path)
    write_plan(k.root, single(address))
    rc, out = cli(k)
    assert rc == EXIT_REFUSED and line_of(out, address).endswith(f"skipped: {words}")
    assert not any(address in p or v == address for p, v in k.io.writes)


def test_the_udev_rules_run_for_one_address_refuses_too(tmp_path):
    k = node(tmp_path)
    write_plan(k.root, single(AHCI))
    rc, out = cli(k, "--address", AHCI)
    assert rc == EXIT_REFUSED and "holds the filesystem mounted at /" in out
    untouched(k, AHCI, "ahci")


def test_a_second_run_says_the_same_and_still_writes_nothing(tmp_path):
    k = node(tmp_path)
    write_plan(k.root, single(AHCI))
    first = bind(Options(root=k.root, io=k.io, clock=k.clock, out=io.StringIO(), timeout=2.0))
    again = bind(Options(root=k.root, io=k.io, clock=k.clock, out=io.StringIO(), timeout=2.0))
    assert first.status.to_json() == again.status.to_json() and k.io.writes == []
    assert first.exit_code == again.exit_code == EXIT_REFUSED
    with open(os.path.join(k.root, "run/installer-ext/bind-status.json")) as f:
        assert '"status": "skipped"' in f.read()


def test_a_failure_outranks_a_refusal_in_the_exit_status(tmp_path):
    k = node(tmp_path)
    k.stall.add(IGB)
    plan = single(AHCI)
    plan["passthrough"].append(pt(IGB, IDS[IGB], 11))
    plan["groups"].append(grp([IGB], [IGB], gid=11))
    write_plan(k.root, plan)
    rc, out = cli(k)
    assert rc == 1 and "failed: vfio-pci did not take it within 2s" in line_of(out, IGB)
    untouched(k, AHCI, "ahci")
