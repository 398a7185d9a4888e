"""Which blocker lands on which function, and why: plan/blocking.py and
plan/install_blockers.py on small hand-made hosts.

The expectations come from the policy's text (docs/planner.md, the docstrings of
plan/blocking.py and plan/install_blockers.py), not from the code: a function is blocked
for what it is (no IOMMU, unreadable, boot display, bridge, SR-IOV PF with VFs), for
what the install config makes of it (management NIC, the controllers of the install and
data disks; tentatively every NIC with a link and every disk controller while the
config has not chosen), and for what the choices ask (a PF asked for VFs, a GPU kept on
the host); a blocked function blocks its IOMMU group-mates (`same-group`, naming the
culprit), except through `no-iommu` and a bridge left alone as it is.

The facts pinned are the codes, subjects, `tentative`, `by` and the addresses; of the
sentences only what they must carry (an address, a name, a count, a key path).
"""

from __future__ import annotations

import pytest

from installer_ext.config.model import InstallInfo, ManagementInterface
from installer_ext.errors import BadInput
from installer_ext.host.model import BlockDevice, CpuFacts, HostFacts, IommuFacts, NetInterface, PciFunction, Sriov
from installer_ext.plan import reasons as rs
from installer_ext.plan.blocking import blocked, left_alone
from installer_ext.plan.install_blockers import install_blockers, unknown_install

GPU, AUDIO, NIC, NIC2, NVME, SATA, BRIDGE, HOSTBR = (
    "0000:01:00.0", "0000:01:00.1", "0000:02:00.0", "0000:02:00.1",
    "0000:03:00.0", "0000:00:17.0", "0000:00:01.0", "0000:00:00.0",
)


def fn(address: str, group: int | None = None, **kw) -> PciFunction:
    base = dict(vendor_id="10de", device_id="2206", class_id="030000", kind="gpu")
    base.update(kw)
    return PciFunction(address=address, iommu_group=group, **base)


def host(*devices: PciFunction, iommu: str = "enabled", net=(), block=(), aliases=None) -> HostFacts:
    return HostFacts(
        root="/nonexistent",
        cpu=CpuFacts("intel", "GenuineIntel", None, True),
        iommu=IommuFacts(iommu, True),
        devices=devices,
        groups=(),
        groups_predicted=False,
        net=net,
        block=block,
        disk_aliases=aliases or {},
    )


NO_INSTALL = InstallInfo()  # known=False


def chosen(device=None, data_disk=None, management=()) -> InstallInfo:
    return InstallInfo(known=True, device=device, data_disk=data_disk, management=tuple(management))


def mgmt(name=None, hw_addr=None, path="install.managementInterface.interfaces[0]") -> ManagementInterface:
    return ManagementInterface(name=name, hw_addr=hw_addr, path=path)


def codes(result, address) -> list[str]:
    return [b.code for b in result.get(address, ())]


def facts_of(result) -> dict[str, list[tuple]]:
    """Everything but the sentence: (code, subject, tentative, by) per blocker."""
    for bs in result.values():
        for b in bs:
            assert isinstance(b.reason, str) and b.reason, b  # every blocker has a sentence
    return {a: [(b.code, b.subject, b.tentative, b.by) for b in bs] for a, bs in result.items()}


def run(facts, install=NO_INSTALL, asked=None, host_gpus=()):
    return blocked(facts, install, dict(asked or {}), set(host_gpus))


# -- what a function is ------------------------------------------------------------------


def test_a_plain_function_on_a_host_with_an_iommu_is_not_blocked():
    facts = host(fn(GPU, 1), fn(AUDIO, 1, class_id="040300", kind="audio"))
    assert run(facts) == {}


def test_no_iommu_blocks_every_function_and_never_spreads():
    facts = host(fn(GPU, 1), fn(AUDIO, 1), iommu="absent")
    got = facts_of(run(facts))
    assert got == {GPU: [(rs.BLOCK_NO_IOMMU, None, False, None)], AUDIO: [(rs.BLOCK_NO_IOMMU, None, False, None)]}
    for state in ("enabled", "available"):
        assert run(host(fn(GPU, 1), iommu=state)) == {}


def test_no_iommu_is_skipped_but_what_follows_it_still_spreads():
    """`no-iommu` does not spread (every function has it), but the boot display behind
    it does: its group-mate is named as in its group."""
    facts = host(fn(GPU, 1, boot_vga=True), fn(AUDIO, 1), iommu="absent")
    got = facts_of(run(facts))
    assert got[GPU] == [(rs.BLOCK_NO_IOMMU, None, False, None), (rs.BLOCK_BOOT_VGA, None, False, None)]
    assert got[AUDIO] == [(rs.BLOCK_NO_IOMMU, None, False, None), (rs.BLOCK_SAME_GROUP, rs.BLOCK_BOOT_VGA, False, GPU)]


@pytest.mark.parametrize("missing", ["vendor_id", "device_id", "class_id"])
def test_an_unreadable_identity_blocks_the_function(missing):
    facts = host(fn(GPU, 1, **{missing: None}, unknown=("driver", missing.split("_")[0])))
    got = facts_of(run(facts))
    assert got == {GPU: [(rs.BLOCK_UNKNOWN, missing.split("_")[0], False, None)]}
    assert missing.split("_")[0] in run(facts)[GPU][0].reason


def test_the_unknown_subject_names_every_unreadable_identity_part_and_only_those():
    facts = host(fn(GPU, 1, vendor_id=None, device_id=None, unknown=("vendor", "driver", "device", "directory", "class")))
    assert facts_of(run(facts))[GPU] == [(rs.BLOCK_UNKNOWN, "vendor, device, directory, class", False, None)]
    # Nothing specific recorded: the identity as a whole.
    facts = host(fn(GPU, 1, class_id=None, unknown=("driver",)))
    assert facts_of(run(facts))[GPU] == [(rs.BLOCK_UNKNOWN, "identity", False, None)]


def test_the_boot_display_is_blocked_and_blocks_its_group():
    facts = host(fn(GPU, 1, boot_vga=True), fn(AUDIO, 1, class_id="040300", kind="audio"), fn(NIC, 2, kind="nic"))
    got = facts_of(run(facts))
    assert got == {
        GPU: [(rs.BLOCK_BOOT_VGA, None, False, None)],
        AUDIO: [(rs.BLOCK_SAME_GROUP, rs.BLOCK_BOOT_VGA, False, GPU)],
    }
    assert GPU in run(facts)[AUDIO][0].reason


def test_the_culprit_is_described_by_name_else_by_its_ids():
    named = host(fn(GPU, 1, sriov=Sriov(8, 2), device_name="Example GPU"), fn(AUDIO, 1))
    assert "Example GPU" in run(named)[AUDIO][0].reason
    unnamed = host(fn(GPU, 1, sriov=Sriov(8, 2)), fn(AUDIO, 1))
    assert "10de:2206" in run(unnamed)[AUDIO][0].reason


def test_a_pci_bridge_is_blocked_but_left_alone_in_its_group():
    br = fn(BRIDGE, 1, class_id="060400", kind="bridge", is_bridge=True, pci_bridge=True, driver="pcieport")
    facts = host(br, fn(GPU, 1))
    got = run(facts)
    assert facts_of(got) == {BRIDGE: [(rs.BLOCK_BRIDGE, None, False, None)]}
    assert "PCI bridge" in got[BRIDGE][0].reason
    assert left_alone(br)


def test_a_host_bridge_with_a_driver_blocks_its_group_and_one_without_does_not():
    with_driver = fn(HOSTBR, 1, class_id="060000", kind="bridge", is_bridge=True, driver="amd_k8")
    got = run(host(with_driver, fn(GPU, 1)))
    assert facts_of(got) == {
        HOSTBR: [(rs.BLOCK_BRIDGE, None, False, None)],
        GPU: [(rs.BLOCK_SAME_GROUP, rs.BLOCK_BRIDGE, False, HOSTBR)],
    }
    assert "host/ISA bridge" in got[HOSTBR][0].reason
    assert not left_alone(with_driver)
    without = fn(HOSTBR, 1, class_id="060000", kind="bridge", is_bridge=True)
    assert facts_of(run(host(without, fn(GPU, 1)))) == {HOSTBR: [(rs.BLOCK_BRIDGE, None, False, None)]}
    assert left_alone(without)
    assert not left_alone(fn(GPU, 1)) and not left_alone(fn(GPU, 1, driver="nvidia"))


def test_a_left_alone_bridge_still_spreads_its_other_blockers():
    br = fn(BRIDGE, 1, class_id="060400", kind="bridge", is_bridge=True, pci_bridge=True)
    got = facts_of(run(host(br, fn(GPU, 1)), host_gpus={BRIDGE}))
    assert got[BRIDGE] == [(rs.BLOCK_BRIDGE, None, False, None), (rs.BLOCK_HOST_GPU, None, False, None)]
    assert got[GPU] == [(rs.BLOCK_SAME_GROUP, rs.BLOCK_HOST_GPU, False, BRIDGE)]


@pytest.mark.parametrize("num_vfs", [0, 1, 2, 7])
def test_a_pf_with_vfs_stays_on_its_driver_from_one_vf_on(num_vfs):
    facts = host(fn(NIC, 4, kind="nic", sriov=Sriov(total_vfs=8, num_vfs=num_vfs)))
    got = run(facts)
    if num_vfs == 0:
        assert got == {}
    else:
        assert facts_of(got) == {NIC: [(rs.BLOCK_SRIOV_PF, str(num_vfs), False, None)]}
        assert str(num_vfs) in got[NIC][0].reason


# -- what the choices ask ------------------------------------------------------------------


@pytest.mark.parametrize("asked", [0, 1, 4])
def test_a_pf_asked_for_vfs_is_blocked_from_one_vf_on(asked):
    facts = host(fn(NIC, 4, kind="nic", sriov=Sriov(total_vfs=8, num_vfs=0)))
    got = run(facts, asked={NIC: asked})
    if asked == 0:
        assert got == {}
    else:
        assert facts_of(got) == {NIC: [(rs.BLOCK_SRIOV_PF, str(asked), False, None)]}
        assert str(asked) in got[NIC][0].reason


def test_a_pf_with_vfs_asked_again_has_one_sriov_blocker_its_own():
    facts = host(fn(NIC, 4, kind="nic", sriov=Sriov(total_vfs=8, num_vfs=2)))
    assert facts_of(run(facts, asked={NIC: 4})) == {NIC: [(rs.BLOCK_SRIOV_PF, "2", False, None)]}


def test_asks_and_host_gpus_for_absent_addresses_are_ignored():
    facts = host(fn(GPU, 1))
    assert run(facts, asked={"0000:7f:00.0": 2}, host_gpus={"0000:7e:00.0"}) == {}


def test_a_host_gpu_is_blocked_and_blocks_its_group():
    facts = host(fn(GPU, 1), fn(AUDIO, 1), fn(NIC, 2))
    got = facts_of(run(facts, host_gpus={GPU}))
    assert got == {
        GPU: [(rs.BLOCK_HOST_GPU, None, False, None)],
        AUDIO: [(rs.BLOCK_SAME_GROUP, rs.BLOCK_HOST_GPU, False, GPU)],
    }


# -- spreading through a group ---------------------------------------------------------


def test_every_mate_of_a_later_culprit_is_named_once_per_culprit():
    """The culprit sits after a free function and after its own group-mate, and two
    culprits share a group: each mate gets one `same-group` per culprit, the culprits
    get each other's, a PCI bridge in the group gets none."""
    br = fn(BRIDGE, 3, class_id="060400", kind="bridge", is_bridge=True, pci_bridge=True)
    facts = host(
        br,
        fn(GPU, 9),  # free, in a group of its own
        fn(NIC, 3, kind="nic", sriov=Sriov(8, 1)),
        fn(NIC2, 3, kind="nic"),
        fn(NVME, 3, kind="nvme", boot_vga=True),
    )
    got = facts_of(run(facts))
    assert GPU not in got
    assert got[BRIDGE] == [(rs.BLOCK_BRIDGE, None, False, None)]
    assert got[NIC] == [(rs.BLOCK_SRIOV_PF, "1", False, None), (rs.BLOCK_SAME_GROUP, rs.BLOCK_BOOT_VGA, False, NVME)]
    assert got[NIC2] == [
        (rs.BLOCK_SAME_GROUP, rs.BLOCK_SRIOV_PF, False, NIC),
        (rs.BLOCK_SAME_GROUP, rs.BLOCK_BOOT_VGA, False, NVME),
    ]
    assert got[NVME] == [(rs.BLOCK_BOOT_VGA, None, False, None), (rs.BLOCK_SAME_GROUP, rs.BLOCK_SRIOV_PF, False, NIC)]


def test_a_function_without_a_group_blocks_only_itself():
    facts = host(fn(GPU, None, boot_vga=True), fn(AUDIO, None))
    assert facts_of(run(facts)) == {GPU: [(rs.BLOCK_BOOT_VGA, None, False, None)]}


def test_a_tentative_culprit_makes_a_tentative_mate():
    net = (NetInterface("enp2s0f0", NIC, operstate="up"),)
    facts = host(fn(NIC, 2, kind="nic"), fn(NIC2, 2, kind="nic"), net=net)
    got = facts_of(run(facts))
    assert got[NIC] == [(rs.BLOCK_MGMT_NIC, "enp2s0f0", True, None)]
    assert got[NIC2] == [(rs.BLOCK_SAME_GROUP, rs.BLOCK_MGMT_NIC, True, NIC)]


# -- what the install config makes of a function -----------------------------------------

NET = (
    NetInterface("eno1", NIC, mac="aa:bb:cc:00:00:01", operstate="up"),
    NetInterface("eno2", NIC2, mac="aa:bb:cc:00:00:02", operstate="down"),
    NetInterface("bond0", None, mac="aa:bb:cc:00:00:01", operstate="up"),
)
BLOCK = (
    BlockDevice("sda", (SATA,)),
    BlockDevice("sda1", (SATA,), disk="sda"),
    BlockDevice("nvme0n1", (NVME, GPU)),  # NVMe multipath: two controllers
    BlockDevice("nvme0n1p2", (NVME, GPU), disk="nvme0n1"),
)


def install_host(**kw) -> HostFacts:
    devices = [fn(a, i + 10, kind="x") for i, a in enumerate((GPU, NIC, NIC2, NVME, SATA))]
    return host(*devices, net=NET, block=BLOCK, **kw)


def test_the_management_nic_by_name_and_by_mac_is_blocked_for_good():
    facts = install_host()
    for iface in (mgmt(name="eno1"), mgmt(hw_addr="aa:bb:cc:00:00:01")):
        got = install_blockers(facts, chosen(device="/dev/sda", management=[iface]))
        assert facts_of(got)[NIC] == [(rs.BLOCK_MGMT_NIC, "eno1", False, None)]
        assert NIC2 not in got
        assert "eno1" in got[NIC][0].reason


def test_every_management_interface_counts_and_a_virtual_one_is_skipped():
    facts = install_host()
    got = install_blockers(facts, chosen(device="/dev/sda", management=[mgmt(name="bond0"), mgmt(name="eno2"), mgmt(name="eno1")]))
    assert codes(got, NIC2) == [rs.BLOCK_MGMT_NIC] and codes(got, NIC) == [rs.BLOCK_MGMT_NIC]
    assert None not in got


def test_a_management_interface_the_host_lacks_is_bad_input_naming_key_and_interfaces():
    facts = install_host()
    with pytest.raises(BadInput) as e:
        install_blockers(facts, chosen(device="/dev/sda", management=[mgmt(name="eth9", path="install.managementInterface.interfaces[1]")]))
    msg = str(e.value)
    assert msg.startswith("install.managementInterface.interfaces[1].name:") and "eth9" in msg
    assert "eno1, eno2" in msg and "bond0" not in msg
    with pytest.raises(BadInput) as e:
        install_blockers(facts, chosen(management=[mgmt(hw_addr="de:ad:be:ef:00:00")]))
    assert str(e.value).startswith("install.managementInterface.interfaces[0].hwAddr:")
    assert "de:ad:be:ef:00:00" in str(e.value)
    with pytest.raises(BadInput) as e:
        install_blockers(host(fn(GPU, 1), net=(NetInterface("bond0", None),)), chosen(management=[mgmt(name="eth0")]))
    assert "(PCI interfaces: none)" in str(e.value)


def test_an_interface_matches_by_name_or_by_mac_not_by_either_being_set():
    facts = install_host()
    # A name that is not eno1 with eno1's MAC under another interface: only the MAC's owner.
    got = install_blockers(facts, chosen(management=[mgmt(hw_addr="aa:bb:cc:00:00:02")]))
    assert NIC2 in got and NIC not in got
    got = install_blockers(facts, chosen(management=[mgmt(name="eno2", hw_addr="ff:ff:ff:ff:ff:ff")]))
    assert NIC2 in got and NIC not in got


@pytest.mark.parametrize(
    "device, disk",
    [("/dev/sda", "sda"), ("/dev/sda1", "sda"), ("/dev/nvme0n1p2", "nvme0n1"), ("/dev/disk/by-id/ata-X", "sda")],
)
def test_the_install_disks_controllers_are_blocked_whatever_the_disk_is_called(device, disk):
    facts = install_host(aliases={"/dev/disk/by-id/ata-X": "sda1"})
    got = install_blockers(facts, chosen(device=device))
    want = {b.controllers for b in BLOCK if b.name == disk}.pop()
    assert facts_of(got) == {c: [(rs.BLOCK_INSTALL_DISK, disk, False, None)] for c in want}
    assert all(f"/dev/{disk}" in got[c][0].reason for c in want)


def test_the_data_disk_is_blocked_as_such_unless_it_is_the_install_disk():
    facts = install_host()
    got = install_blockers(facts, chosen(device="/dev/sda", data_disk="/dev/nvme0n1"))
    assert facts_of(got) == {
        SATA: [(rs.BLOCK_INSTALL_DISK, "sda", False, None)],
        NVME: [(rs.BLOCK_DATA_DISK, "nvme0n1", False, None)],
        GPU: [(rs.BLOCK_DATA_DISK, "nvme0n1", False, None)],
    }
    same = install_blockers(facts, chosen(device="/dev/sda", data_disk="/dev/sda"))
    assert facts_of(same) == {SATA: [(rs.BLOCK_INSTALL_DISK, "sda", False, None)]}
    # A data disk without an install disk: still blocked, as the data disk.
    only_data = install_blockers(facts, chosen(data_disk="/dev/nvme0n1"))
    assert codes(only_data, NVME) == [rs.BLOCK_DATA_DISK] and SATA not in only_data


@pytest.mark.parametrize("device", ["/dev/sdz", "/dev/mapper/x", "sda", "/devsda", "/dev//sda"])
def test_a_disk_the_host_lacks_is_bad_input_naming_key_device_and_whole_disks(device):
    facts = install_host()
    with pytest.raises(BadInput) as e:
        install_blockers(facts, chosen(device="/dev/sda", data_disk=device))
    msg = str(e.value)
    assert msg.startswith("install.dataDisk:") and device in msg
    assert "/dev/nvme0n1, /dev/sda)" in msg and "sda1" not in msg
    with pytest.raises(BadInput) as e:
        install_blockers(host(fn(GPU, 1)), chosen(device=device))
    assert str(e.value).startswith("install.device:") and "(disks: none)" in str(e.value)


def test_without_an_install_section_nothing_is_decided_for_good():
    facts = install_host()
    assert install_blockers(facts, NO_INSTALL) == {}
    assert install_blockers(facts, chosen()) == {}


def test_before_the_choice_every_nic_with_a_link_and_every_disk_controller_is_tentative():
    link = ("up", "unknown", "dormant", None)
    net = tuple(NetInterface(f"n{i}", f"0000:1{i}:00.0", operstate=s) for i, s in enumerate(link + ("down", "lowerlayerdown", "notpresent"), 1))
    net += (NetInterface("br0", None, operstate="up"),)
    facts = host(*(fn(n.address, 20 + i) for i, n in enumerate(net) if n.address), net=net, block=BLOCK)
    got = facts_of(unknown_install(facts, NO_INSTALL))
    want = {f"0000:1{i}:00.0": [(rs.BLOCK_MGMT_NIC, f"n{i}", True, None)] for i in range(1, len(link) + 1)}
    want[SATA] = [(rs.BLOCK_INSTALL_DISK, "sda", True, None)]
    want[NVME] = [(rs.BLOCK_INSTALL_DISK, "nvme0n1", True, None)]
    want[GPU] = [(rs.BLOCK_INSTALL_DISK, "nvme0n1", True, None)]
    assert got == want
    assert "/dev/sda" in unknown_install(facts, NO_INSTALL)[SATA][0].reason


def test_a_known_section_leaves_tentative_only_what_it_does_not_choose():
    facts = install_host()
    both = chosen(device="/dev/sda", management=[mgmt(name="eno1")])
    assert unknown_install(facts, both) == {}
    no_nic = facts_of(unknown_install(facts, chosen(device="/dev/sda")))
    assert no_nic == {NIC: [(rs.BLOCK_MGMT_NIC, "eno1", True, None)]}
    no_disk = facts_of(unknown_install(facts, chosen(management=[mgmt(name="eno1")])))
    assert no_disk == {
        SATA: [(rs.BLOCK_INSTALL_DISK, "sda", True, None)],
        NVME: [(rs.BLOCK_INSTALL_DISK, "nvme0n1", True, None)],
        GPU: [(rs.BLOCK_INSTALL_DISK, "nvme0n1", True, None)],
    }
    # No install section at all, even with interfaces listed: all tentative.
    unknown = InstallInfo(known=False, device="/dev/sda", management=(mgmt(name="eno1"),))
    assert set(unknown_install(facts, unknown)) == {NIC, SATA, NVME, GPU}


def test_blocked_joins_the_install_blockers_to_the_devices_the_host_has():
    facts = install_host()
    install = chosen(device="/dev/sda", data_disk="/dev/nvme0n1", management=[mgmt(name="eno1")])
    got = facts_of(run(facts, install))
    assert got == {
        SATA: [(rs.BLOCK_INSTALL_DISK, "sda", False, None)],
        NVME: [(rs.BLOCK_DATA_DISK, "nvme0n1", False, None)],
        GPU: [(rs.BLOCK_DATA_DISK, "nvme0n1", False, None)],
        NIC: [(rs.BLOCK_MGMT_NIC, "eno1", False, None)],
    }
    # Controllers and NICs the PCI list lacks are dropped, not invented.
    lean = host(fn(NIC, 2), net=NET, block=BLOCK)
    assert facts_of(run(lean, install)) == {NIC: [(rs.BLOCK_MGMT_NIC, "eno1", False, None)]}
    tentative = facts_of(run(lean, NO_INSTALL))
    assert tentative == {NIC: [(rs.BLOCK_MGMT_NIC, "eno1", True, None)]}
