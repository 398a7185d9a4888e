"""What the running host needs (host/procmounts.py, blockuse.py, netuse.py, inuse.py), on
fake nodes whose procfs/sysfs follow the kernel's formats (tests/fakesys/runtime.py cites
each) and on the kernel's own sample lines."""

from __future__ import annotations

import os
from dataclasses import replace

from installer_ext.host.inuse import read_host_use
from installer_ext.host.netuse import parse_ipv6_route, parse_route
from installer_ext.host.procmounts import Mount as PMount
from installer_ext.host.procmounts import Swap as PSwap
from installer_ext.host.procmounts import parse_mountinfo, parse_mounts, parse_swaps
from tests.fakesys.builder import build
from tests.fakesys.machines import epyc_node, workstation_node
from tests.fakesys.runtime import Mount, NetDev, Route, Swap, VirtBlock

AHCI, NVME, ENO1, IGB, GPU, XHCI = "0000:00:17.0", "0000:02:00.0", "0000:00:1f.6", "0000:03:00.0", "0000:01:00.0", "0000:00:14.0"


def use(tmp_path, machine):
    return read_host_use(build(machine, str(tmp_path / "node")))


# --- the kernel's formats ----------------------------------------------------------------------

def test_mountinfo_lines_as_the_kernel_writes_them():
    # Documentation/filesystems/proc.rst, "3.5 /proc/<pid>/mountinfo", and two lines of a
    # Harvester node: no optional field, several, an escaped space in the mount point.
    text = (
        "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"
        "25 1 8:2 / /oem rw,relatime - ext4 /dev/disk/by-label/COS_OEM rw\n"
        "40 25 0:40 / /mnt/my\\040disk rw shared:4 master:2 propagate_from:1 - tmpfs tmp\\134fs rw\n"
        "garbage line\n"
    )
    assert parse_mountinfo(text) == [
        PMount("/dev/root", "/mnt/parent", "ext3", (98, 0)),
        PMount("/dev/disk/by-label/COS_OEM", "/oem", "ext4", (8, 2)),
        PMount("tmp\\fs", "/mnt/my disk", "tmpfs", (0, 40)),
    ]


def test_proc_mounts_lines():
    assert parse_mounts("/dev/sda5 /usr/local ext4 rw,relatime 0 0\nLABEL=x /a\\012b ext4 rw 0 0\n") == [
        PMount("/dev/sda5", "/usr/local", "ext4"), PMount("LABEL=x", "/a\nb", "ext4"),
    ]


def test_swaps_as_swap_show_writes_them():
    text = (
        "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
        "/dev/dm-1                               partition\t8388604\t\t0\t\t-2\n"
        "/usr/local/swap\\040file                 file\t\t1048572\t\t0\t\t-3\n"
    )
    assert parse_swaps(text) == [PSwap("/dev/dm-1", "partition"), PSwap("/usr/local/swap file", "file")]


def test_ipv4_routes_as_fib_route_seq_show_writes_them():
    head = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"
    rows = [
        "mgmt-br\t00000000\t0101A8C0\t0003\t0\t0\t425\t00000000\t0\t0\t0",  # default via 192.168.1.1
        "mgmt-br\t0001A8C0\t00000000\t0001\t0\t0\t425\t00FFFFFF\t0\t0\t0",  # 192.168.1.0/24
        "*\t00000000\t00000000\t0201\t0\t0\t0\t00000000\t0\t0\t0",  # `ip route add unreachable default`
        "eth9\t00000000\t0101A8C0\t0002\t0\t0\t0\t00000000\t0\t0\t0",  # not RTF_UP
    ]
    text = "".join(f"{line:<127}\n" for line in [head, *rows])
    assert parse_route(text) == ["mgmt-br"]


def test_ipv6_routes_as_ipv6_route_native_seq_show_writes_them():
    text = (
        "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 "
        "00000400 00000001 00000000 00000003 mgmt-br\n"
        "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 "
        "00000100 00000001 00000000 00000001 mgmt-br\n"
        "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 "
        "ffffffff 00000001 00000000 00200200       lo\n"
    )
    assert parse_ipv6_route(text) == ["mgmt-br"]


# --- a Harvester node ------------------------------------------------------------------------

def test_an_installed_workstation(tmp_path):
    u = use(tmp_path, workstation_node())
    assert set(u.functions) == {AHCI, NVME, ENO1}
    assert u.functions[AHCI] == (
        "holds the filesystem mounted at / (loop0 → /run/initramfs/cos-state/cOS/active.img → sda4)",
        "holds the filesystem mounted at /oem (sda2)",
        "holds the filesystem mounted at /run/initramfs/cos-state (sda4)",
        "holds the filesystem mounted at /usr/local (sda5)",
    )
    assert u.functions[NVME] == ("holds the filesystem mounted at /var/lib/harvester/defaultdisk (nvme0n1)",)
    assert u.functions[ENO1] == (
        "carries the default route (mgmt-br → mgmt-bo → eno1)",
        "is a port of Harvester's management bridge (mgmt-br → mgmt-bo → eno1)",
        "is configured as a port of Harvester's management bridge (mgmt-br → mgmt-bo → eno1, "
        "/etc/NetworkManager/system-connections/bond-slave-eno1.nmconnection)",
    )
    assert u.reasons(GPU) == u.reasons(IGB) == [] and u.unknown == {}


def test_management_vlan_and_ipv6_default_route(tmp_path):
    u = use(tmp_path, workstation_node(vlan=2017, ipv6=True))
    assert u.functions[ENO1][0] == "carries the default route (mgmt-br.2017 → mgmt-br → mgmt-bo → eno1)"


def test_only_ipv6_has_a_default_route(tmp_path):
    m = workstation_node(ipv6=True)
    m.runtime.routes = ()
    assert use(tmp_path, m).functions[ENO1][0] == "carries the default route (mgmt-br → mgmt-bo → eno1)"


def test_before_the_network_is_up_the_files_say_it(tmp_path):
    """The binder may run before NetworkManager (v1.7+) or wicked (v1.4-v1.6) built the
    bond: no mgmt-br, no route, and the management NIC is still known."""
    nm = use(tmp_path / "nm", workstation_node(up=False))
    assert nm.functions[ENO1] == (
        "is configured as a port of Harvester's management bridge (mgmt-br → mgmt-bo → eno1, "
        "/etc/NetworkManager/system-connections/bond-slave-eno1.nmconnection)",
    )
    wicked = use(tmp_path / "wicked", workstation_node(up=False, network="wicked"))
    assert wicked.functions[ENO1] == (
        "is configured as a port of Harvester's management bridge (mgmt-br → mgmt-bo → eno1, "
        "/etc/sysconfig/network/ifcfg-mgmt-bo)",
    )


def test_a_default_route_on_a_plain_nic(tmp_path):
    m = workstation_node(up=False)
    m.runtime.etc = {}
    m.runtime.routes = (Route("enp3s0", gateway="10.0.0.1"),)
    u = use(tmp_path, m)
    assert u.functions[IGB] == ("carries the default route (enp3s0)",) and ENO1 not in u.functions


def test_two_nics_in_the_management_bond(tmp_path):
    from tests.fakesys.machines import harvester_node, intel_workstation

    m = harvester_node(intel_workstation(), "sda", ("eno1", "enp3s0"), data_disk="nvme0n1")
    u = use(tmp_path, m)
    assert u.functions[IGB][0] == "carries the default route (mgmt-br → mgmt-bo → enp3s0)"
    assert u.functions[ENO1][0] == "carries the default route (mgmt-br → mgmt-bo → eno1)"


def test_nvme_multipath_install_disk(tmp_path):
    u = use(tmp_path, epyc_node())
    assert u.functions["0000:01:00.0"][0] == (
        "holds the filesystem mounted at / (loop0 → /run/initramfs/cos-state/cOS/active.img → nvme0n1p4)"
    )
    assert u.functions["0000:02:00.0"][0] == "carries the default route (mgmt-br → mgmt-bo → enp2s0f0)"
    assert "0000:02:00.1" not in u.functions  # the other port of the X710


def test_device_mapper_md_and_swap_down_to_the_controllers(tmp_path):
    m = workstation_node()
    m.runtime.virt_blocks += (
        VirtBlock("md127", slaves=("sda3", "nvme0n1")),  # RAID1 of a partition and a whole disk
        VirtBlock("dm-0", slaves=("md127",), dm_name="vg-data"),  # LVM on it
        VirtBlock("dm-1", slaves=("sda1",), dm_name="vg-swap"),
    )
    m.runtime.mounts += (Mount("/dev/mapper/vg-data", "/var/lib/rancher", "xfs", "dm-0"),)
    m.runtime.swaps = (Swap("/dev/dm-1"), Swap("/usr/local/swap\nfile", "file"))
    m.runtime.dev_links = {**m.runtime.dev_links, "mapper/vg-data": "dm-0", "mapper/vg-swap": "dm-1"}
    u = use(tmp_path, m)
    assert "holds the filesystem mounted at /var/lib/rancher (dm-0 → md127 → sda3)" in u.functions[AHCI]
    assert "holds the filesystem mounted at /var/lib/rancher (dm-0 → md127 → nvme0n1)" in u.functions[NVME]
    assert "holds the active swap /dev/dm-1 (dm-1 → sda1)" in u.functions[AHCI]
    # A swap file with a newline in its name: held by /usr/local's disk, said on one line.
    assert "holds the active swap file /usr/local/swap\\nfile (/usr/local/swap\\nfile → sda5)" in u.functions[AHCI]


def test_proc_mounts_alone_resolves_sources_through_dev(tmp_path):
    m = workstation_node()
    m.runtime.mountinfo = False  # no MAJ:MIN: only the SOURCE strings
    m.runtime.virt_blocks += (VirtBlock("dm-0", slaves=("sda3",), dm_name="vg-x"),)
    m.runtime.mounts = (
        Mount("/dev/disk/by-label/COS_PERSISTENT", "/usr/local", "ext4", "sda5"),
        Mount("LABEL=HARV_LH_DEFAULT", "/var/lib/harvester/defaultdisk", "ext4", "nvme0n1"),
        Mount("/dev/mapper/vg-x", "/x", "ext4", "dm-0"),  # no /dev/mapper link: dm/name says it
    )
    u = use(tmp_path, m)
    assert u.functions[AHCI] == (
        "holds the filesystem mounted at /usr/local (sda5)",
        "holds the filesystem mounted at /x (dm-0 → sda3)",
    )
    assert u.functions[NVME] == ("holds the filesystem mounted at /var/lib/harvester/defaultdisk (nvme0n1)",)


def test_the_source_alone_or_the_devno_alone_is_enough(tmp_path):
    m = workstation_node()
    # A source the kernel names /dev/root (the kernel's own root= mount): MAJ:MIN says it.
    m.runtime.mounts = (Mount("/dev/root", "/", "ext4", "sda5"), Mount("/dev/sda4", "/s", "btrfs", None))
    u = use(tmp_path, m)
    # btrfs shows an anonymous 0:N: the source string says it.
    assert u.functions[AHCI] == ("holds the filesystem mounted at / (sda5)", "holds the filesystem mounted at /s (sda4)")


def test_a_mounted_usb_stick_keeps_its_controller(tmp_path):
    m = workstation_node()
    m.devices = [replace(d, disks=("sdb",), partitions=1) if d.address == XHCI else d for d in m.devices]
    m.runtime.mounts += (Mount("/dev/sdb1", "/media/stick", "vfat", "sdb1"),)
    assert use(tmp_path, m).functions[XHCI] == ("holds the filesystem mounted at /media/stick (sdb1)",)


def test_unreadable_tables_keep_every_disk_and_nic(tmp_path):
    m = workstation_node()
    m.runtime.mounts = None  # neither mountinfo nor mounts
    m.runtime.routes = None
    u = use(tmp_path, m)
    root = os.path.join(str(tmp_path / "node"), "proc")
    assert u.unknown == {"block": os.path.join(root, "mounts"), "net": os.path.join(root, "net", "route")}
    assert u.reasons(AHCI) == [f"has block devices, and {root}/mounts could not be read"]
    assert u.reasons(NVME) == u.reasons(AHCI)
    # The management NIC is still known from the files; the spare NIC is kept as well.
    assert u.reasons(IGB) == [f"has network interfaces, and {root}/net/route could not be read"]
    assert u.reasons(ENO1)[-1] == u.reasons(IGB)[0]
    assert u.reasons(GPU) == []


def test_no_swap_support_is_no_swap(tmp_path):
    m = workstation_node()
    m.runtime.swaps = None  # CONFIG_SWAP off: no /proc/swaps at all
    u = use(tmp_path, m)
    assert u.unknown == {}


def test_a_vlan_on_a_spare_nic_is_followed(tmp_path):
    m = workstation_node()
    m.runtime.netdevs += (NetDev("enp3s0.30", "vlan", ("enp3s0",)),)
    m.runtime.routes = (Route("enp3s0.30", gateway="10.30.0.1", metric=100),)
    u = use(tmp_path, m)
    assert u.functions[IGB] == ("carries the default route (enp3s0.30 → enp3s0)",)


def test_stacks_that_loop_or_go_deep_end(tmp_path):
    m = workstation_node()
    m.runtime.netdevs += tuple(NetDev(f"v{i}", "vlan", (f"v{i + 1}",)) for i in range(100))
    m.runtime.routes = (Route("v0"),)
    u = use(tmp_path, m)  # ends: a bounded walk, deeper than the kernel nests (MAX_NEST_DEV 8)
    assert ENO1 in u.functions
    # What could not be walked keeps every NIC: the route may be on any of them.
    assert u.reasons(IGB) == ["has network interfaces, and the interfaces under v0 (v0 → v1 → v2 → v3 → ...) could not be read"]
