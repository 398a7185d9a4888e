"""Realistic fake machines. Group numbers are what the kernel gives: allocated in
address order, a device behind a port without ACS in that port's group, a
multifunction slot without ACS in one group, a device behind a PCIe-to-PCI bridge in
the bridge's group. The IOMMU-off twins drop the groups and keep the firmware table.
"""

from __future__ import annotations

from tests.fakesys.builder import Dev, Machine, with_changes
from tests.fakesys.runtime import Mount, NetDev, Route, Route6, Runtime, VirtBlock

RP, EP, RCE, PCIBR = 4, 0, 9, 7  # PCIe types: root port, endpoint, RC integrated, PCIe-to-PCI


def intel_workstation() -> Machine:
    """Core i7 + Z390: iGPU is the boot VGA, RTX 3080 + HDMI audio behind the CPU's PEG
    port (no ACS: one group with the port), SATA install disk sda, NVMe data disk,
    onboard I219 `eno1` (management) among the PCH functions, a spare I210 `enp3s0`."""
    return Machine(
        name="intel-workstation",
        devices=[
            Dev("0000:00:00.0", "8086:3e30", "060000", "skl_uncore", 0, pcie_type=None),
            Dev("0000:00:01.0", "8086:1901", "060400", "pcieport", 1, pcie_type=RP),
            Dev("0000:00:02.0", "8086:3e98", "030000", "i915", 2, pcie_type=RCE, boot_vga=True, subsys="1458:d000"),
            Dev("0000:00:12.0", "8086:a379", "118000", "intel_pch_thermal", 3, pcie_type=None),
            Dev("0000:00:14.0", "8086:a36d", "0c0330", "xhci_hcd", 4, pcie_type=None, multifunction=True),
            Dev("0000:00:14.2", "8086:a36f", "050000", None, 4, pcie_type=None, multifunction=True),
            Dev("0000:00:16.0", "8086:a360", "078000", "mei_me", 5, pcie_type=None),
            Dev("0000:00:17.0", "8086:a352", "010601", "ahci", 6, pcie_type=None, disks=("sda",), partitions=3),
            Dev("0000:00:1b.0", "8086:a340", "060400", "pcieport", 7, pcie_type=RP, acs=True),
            Dev("0000:00:1c.0", "8086:a338", "060400", "pcieport", 8, pcie_type=RP, acs=True),
            Dev("0000:00:1f.0", "8086:a305", "060100", None, 9, pcie_type=None, multifunction=True),
            Dev("0000:00:1f.3", "8086:a348", "040300", "snd_hda_intel", 9, pcie_type=None, multifunction=True),
            Dev("0000:00:1f.4", "8086:a323", "0c0500", "i801_smbus", 9, pcie_type=None, multifunction=True),
            Dev("0000:00:1f.5", "8086:a324", "0c8000", "intel-spi", 9, pcie_type=None, multifunction=True),
            Dev(
                "0000:00:1f.6", "8086:15bc", "020000", "e1000e", 9, pcie_type=None, multifunction=True,
                net=(("eno1", "18:c0:4d:01:02:03"),),
            ),
            Dev(
                "0000:01:00.0", "10de:2206", "030000", "nvidia", 1, parent="0000:00:01.0",
                multifunction=True, subsys="1458:403b",
            ),
            Dev("0000:01:00.1", "10de:1aef", "040300", "snd_hda_intel", 1, parent="0000:00:01.0", multifunction=True),
            Dev(
                "0000:02:00.0", "144d:a808", "010802", "nvme", 10, parent="0000:00:1b.0",
                disks=("nvme0n1",), partitions=1,
            ),
            Dev(
                "0000:03:00.0", "8086:1533", "020000", "igb", 11, parent="0000:00:1c.0",
                net=(("enp3s0", "18:c0:4d:0a:0b:0c"),), link="down",
            ),
        ],
        disk_aliases={"ata-Samsung_SSD_860_EVO_1TB_S3Z9NB0K123456": "sda"},
    )


# The installer ISO's kernel line (harvester-installer package/harvester-os/iso/boot/grub2/
# grub.cfg, v1.4-v1.8, before ${extra_iso_cmdline}).
ISO_CMDLINE = "cdroot root=live:CDLABEL=COS_LIVE rd.live.dir=/ rd.live.squashimg=rootfs.squashfs console=tty1 rd.cos.disable net.ifnames=1"


def intel_workstation_iommu_off() -> Machine:
    """The same workstation booted from the installer ISO: VT-d off, DMAR still there,
    the ISO's kernel line."""
    return with_changes(intel_workstation(), "intel-workstation-iommu-off", iommu="off", cmdline=ISO_CMDLINE)


def intel_workstation_no_ir() -> Machine:
    """The workstation with VT-d on but no interrupt remapping (a firmware that leaves it
    off): where allowUnsafeInterrupts matters."""
    return with_changes(intel_workstation(), "intel-workstation-no-ir", interrupt_remapping=False)


def intel_dual_gpu() -> Machine:
    """Xeon W workstation with two identical RTX 3080s (each with HDMI audio) behind two
    PEG ports that have ACS: two groups with the same ids in each."""
    m = intel_workstation()
    devs = []
    for d in m.devices:
        if d.address == "0000:00:01.0":
            devs.append(Dev("0000:00:01.0", "8086:1901", "060400", "pcieport", 1, pcie_type=RP, acs=True, multifunction=True))
            devs.append(Dev("0000:00:01.1", "8086:1905", "060400", "pcieport", 2, pcie_type=RP, acs=True, multifunction=True))
            continue
        devs.append(d)
    renum = {0: 0, 2: 3, 3: 4, 4: 5, 5: 6, 6: 7, 7: 8, 8: 9, 9: 10, 10: 13, 11: 14}
    out = []
    for d in devs:
        if d.address.startswith("0000:01:"):
            d.group = 11
        elif d.address in ("0000:00:01.0", "0000:00:01.1"):
            pass
        else:
            d.group = renum[d.group]
        if d.address == "0000:02:00.0":
            d.address, d.parent = "0000:03:00.0", "0000:00:1b.0"
        elif d.address == "0000:03:00.0":
            d.address, d.parent = "0000:04:00.0", "0000:00:1c.0"
            d.net = (("enp4s0", "18:c0:4d:0a:0b:0c"),)
        out.append(d)
    out += [
        Dev("0000:02:00.0", "10de:2206", "030000", "nvidia", 12, parent="0000:00:01.1", multifunction=True, subsys="1458:403b"),
        Dev("0000:02:00.1", "10de:1aef", "040300", "snd_hda_intel", 12, parent="0000:00:01.1", multifunction=True),
    ]
    out.sort(key=lambda d: d.address)
    return Machine(
        name="intel-dual-gpu",
        devices=out,
        cpu_model="Intel(R) Xeon(R) W-2245 CPU @ 3.90GHz",
        disk_aliases=m.disk_aliases,
    )


def amd_epyc_server() -> Machine:
    """EPYC 7402P: ASPEED BMC VGA (boot VGA) behind its PCIe-to-PCI bridge, Intel X710
    dual-port with management on port 0 (SR-IOV capable, VFs off), NVMe install disk
    under native multipath, two identical Radeon Pro W5700 (Navi 10: resets badly)."""
    return Machine(
        name="amd-epyc-server",
        cpu_vendor="AuthenticAMD",
        cpu_model="AMD EPYC 7402P 24-Core Processor",
        cpu_flags=("fpu", "vme", "pae", "svm", "sse4_2", "avx2", "npt"),
        firmware_table="IVRS",
        devices=[
            Dev("0000:00:00.0", "1022:1480", "060000", None, 0, pcie_type=None),
            Dev("0000:00:01.0", "1022:1482", "060000", None, 1, pcie_type=None, multifunction=True),
            Dev("0000:00:01.1", "1022:1483", "060400", "pcieport", 2, pcie_type=RP, acs=True, multifunction=True),
            Dev("0000:00:03.0", "1022:1482", "060000", None, 3, pcie_type=None, multifunction=True),
            Dev("0000:00:03.1", "1022:1483", "060400", "pcieport", 4, pcie_type=RP, acs=True, multifunction=True),
            Dev("0000:00:03.2", "1022:1483", "060400", "pcieport", 5, pcie_type=RP, acs=True, multifunction=True),
            Dev("0000:00:03.3", "1022:1483", "060400", "pcieport", 6, pcie_type=RP, acs=True, multifunction=True),
            Dev("0000:00:07.0", "1022:1482", "060000", None, 7, pcie_type=None, multifunction=True),
            Dev("0000:00:07.1", "1022:1484", "060400", "pcieport", 8, pcie_type=RP, acs=True, multifunction=True),
            Dev("0000:00:08.0", "1022:1482", "060000", None, 9, pcie_type=None, multifunction=True),
            Dev("0000:00:08.1", "1022:1484", "060400", "pcieport", 10, pcie_type=RP, acs=True, multifunction=True),
            Dev("0000:00:14.0", "1022:790b", "0c0500", "piix4_smbus", 11, pcie_type=None, multifunction=True),
            Dev("0000:00:14.3", "1022:790e", "060100", None, 11, pcie_type=None, multifunction=True),
            Dev(
                "0000:01:00.0", "144d:a808", "010802", "nvme", 12, parent="0000:00:01.1",
                disks=("nvme0n1",), partitions=4, nvme_subsys="nvme-subsys0", subsys="144d:a801",
            ),
            Dev(
                "0000:02:00.0", "8086:1572", "020000", "i40e", 13, parent="0000:00:03.1",
                multifunction=True, acs=True, sriov_total=64, vf_device="154c", vf_offset=16,
                net=(("enp2s0f0", "3c:fd:fe:aa:00:00"),), subsys="8086:0007",
            ),
            Dev(
                "0000:02:00.1", "8086:1572", "020000", "i40e", 14, parent="0000:00:03.1",
                multifunction=True, acs=True, sriov_total=64, vf_device="154c", vf_offset=79,
                net=(("enp2s0f1", "3c:fd:fe:aa:00:01"),), subsys="8086:0007",
            ),
            Dev("0000:03:00.0", "1002:7310", "030000", "amdgpu", 15, parent="0000:00:03.2", multifunction=True, subsys="1002:0b0c"),
            Dev("0000:03:00.1", "1002:ab38", "040300", "snd_hda_intel", 15, parent="0000:00:03.2", multifunction=True),
            Dev("0000:04:00.0", "1002:7310", "030000", "amdgpu", 16, parent="0000:00:03.3", multifunction=True, subsys="1002:0b0c"),
            Dev("0000:04:00.1", "1002:ab38", "040300", "snd_hda_intel", 16, parent="0000:00:03.3", multifunction=True),
            Dev("0000:05:00.3", "1022:148c", "0c0330", "xhci_hcd", 17, parent="0000:00:07.1"),
            Dev("0000:06:00.0", "1a03:1150", "060400", None, 18, parent="0000:00:08.1", pcie_type=PCIBR),
            Dev(
                "0000:07:00.0", "1a03:2000", "030000", "ast", 18, parent="0000:06:00.0",
                pcie_type=None, boot_vga=True, subsys="1a03:2000",
            ),
        ],
        disk_aliases={"nvme-SAMSUNG_MZQLB960HAJR-00007_S437NA0M123456": "nvme0n1"},
    )


def no_iommu_desktop() -> Machine:
    """An old Haswell desktop without VT-d in firmware: no DMAR, no groups, no IR."""
    return Machine(
        name="no-iommu-desktop",
        cpu_model="Intel(R) Core(TM) i5-4570 CPU @ 3.20GHz",
        iommu="none",
        firmware_table=None,
        interrupt_remapping=False,
        devices=[
            Dev("0000:00:00.0", "8086:0c00", "060000", None, pcie_type=None),
            Dev("0000:00:01.0", "8086:0c01", "060400", "pcieport", pcie_type=RP),
            Dev("0000:00:02.0", "8086:0412", "030000", "i915", pcie_type=RCE, boot_vga=True),
            Dev("0000:00:1f.0", "8086:8c4a", "060100", None, pcie_type=None, multifunction=True),
            Dev("0000:00:1f.2", "8086:8c02", "010601", "ahci", pcie_type=None, multifunction=True, disks=("sda",), partitions=2),
            Dev("0000:01:00.0", "10de:1c81", "030000", "nouveau", parent="0000:00:01.0", multifunction=True),
            Dev("0000:01:00.1", "10de:0fb9", "040300", "snd_hda_intel", parent="0000:00:01.0", multifunction=True),
            Dev("0000:00:1c.0", "8086:8c10", "060400", "pcieport", pcie_type=RP),
            Dev("0000:02:00.0", "10ec:8168", "020000", "r8169", parent="0000:00:1c.0", net=(("enp2s0", "d8:cb:8a:00:11:22"),)),
        ],
    )


def sriov_host(nics: int = 16, vfs: int = 200) -> Machine:
    """Xeon server with 16 Intel E810 ports, each on its own ACS root port with `vfs`
    VFs created (iavf bound): thousands of functions, each VF in its own group."""
    devs = [
        Dev("0000:00:00.0", "8086:2020", "060000", None, 0, pcie_type=None),
    ]
    gid = 1
    for i in range(nics):
        devs.append(Dev(f"0000:00:{i + 1:02x}.0", "8086:2030", "060400", "pcieport", gid, pcie_type=RP, acs=True))
        gid += 1
    devs += [
        Dev("0000:00:17.0", "8086:a182", "010601", "ahci", gid, pcie_type=None, disks=("sda",), partitions=3),
        Dev("0000:00:1f.0", "8086:a1c8", "060100", None, gid + 1, pcie_type=None, multifunction=True),
        Dev("0000:00:1f.4", "8086:a1a3", "0c0500", "i801_smbus", gid + 1, pcie_type=None, multifunction=True),
        Dev(
            "0000:00:1f.6", "8086:15b9", "020000", "e1000e", gid + 1, pcie_type=None, multifunction=True,
            net=(("eno1", "a4:bf:01:00:00:01"),),
        ),
    ]
    gid += 2
    for i in range(nics):
        bus = 0x10 + i
        devs.append(
            Dev(
                f"0000:{bus:02x}:00.0", "8086:1593", "020000", "ice", gid, parent=f"0000:00:{i + 1:02x}.0",
                sriov_total=256, num_vfs=vfs, vf_device="1889", vf_offset=8, vf_stride=1,
                vf_driver="iavf", vf_groups=gid + 1, autoprobe=False,
                net=((f"ens{i + 1}f0", f"b4:96:91:00:{i:02x}:00"),),
            )
        )
        gid += 1 + vfs
    return Machine(
        name="sriov-host",
        cpu_model="Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz",
        devices=devs,
    )


ALL = {
    "intel-workstation": intel_workstation,
    "intel-workstation-iommu-off": intel_workstation_iommu_off,
    "intel-workstation-no-ir": intel_workstation_no_ir,
    "intel-dual-gpu": intel_dual_gpu,
    "amd-epyc-server": amd_epyc_server,
    "no-iommu-desktop": no_iommu_desktop,
    "sriov-host": sriov_host,
}


# --- installed Harvester nodes (the binder's machines) ---------------------------------------

def _part(disk: str, n: int) -> str:
    return f"{disk}p{n}" if disk[-1].isdigit() else f"{disk}{n}"


def nm_keyfiles(nics: tuple[str, ...], vlan: int | None = None) -> dict[str, str]:
    """The NetworkManager profiles Harvester v1.7+ writes for its management network
    (harvester/harvester-installer, branch v1.8, pkg/config/cos.go updateBond/updateBridge
    with templates/nm-bond-master, nm-bond-slave, nm-bridge, nm-vlan.nmconnection): the
    NICs are ports of the bond `mgmt-bo`, the bond is the port of the bridge `mgmt-br`,
    a VLAN id >= 2 adds a VLAN on the bridge. harv-install (save_nm_state) copies them to
    the persistent partition, bind-mounted at /etc/NetworkManager/system-connections."""
    d = "NetworkManager/system-connections/"
    out = {
        d + "bridge-mgmt.nmconnection": (
            "[connection]\nid=bridge-mgmt\ntype=bridge\ninterface-name=mgmt-br\n\n[bridge]\nforward-delay=0\n"
            "stp=false\nvlan-filtering=true\nvlan-default-pvid=1\n\n[ipv4]\nmethod=auto\n\n[ipv6]\nmethod=disabled\n"
        ),
        d + "bond-mgmt.nmconnection": (
            "[connection]\nid=bond-mgmt\ntype=bond\ninterface-name=mgmt-bo\nmaster=mgmt-br\nslave-type=bridge\n\n"
            "[ethernet]\n\n[bond]\nmiimon=100\nmode=active-backup\n\n[bridge-port]\nvlans=1 pvid untagged\n"
        ),
    }
    for nic in nics:
        out[d + f"bond-slave-{nic}.nmconnection"] = (
            f"[connection]\nid=bond-slave-{nic}\ntype=ethernet\ninterface-name={nic}\nmaster=mgmt-bo\nslave-type=bond\n"
        )
    if vlan is not None:
        out[d + "vlan-mgmt.nmconnection"] = (
            f"[connection]\nid=vlan-mgmt\ntype=vlan\n\n[ethernet]\n\n[vlan]\nflags=1\nid={vlan}\nparent=mgmt-br\n\n"
            "[ipv4]\nmethod=auto\n\n[ipv6]\nmethod=disabled\n"
        )
    return out


def wicked_ifcfg(nics: tuple[str, ...]) -> dict[str, str]:
    """The wicked files Harvester v1.4-v1.6 writes (harvester/harvester-installer, branch
    v1.6, pkg/config/cos.go UpdateManagementInterfaceConfig, templates/wicked-ifcfg-bond-
    master and wicked-ifcfg-bridge): BONDING_SLAVE_<n> names each NIC of `mgmt-bo`,
    BRIDGE_PORTS='mgmt-bo' on `mgmt-br`."""
    slaves = "".join(f"BONDING_SLAVE_{i}='{nic}'\n" for i, nic in enumerate(nics))
    return {
        "sysconfig/network/ifcfg-mgmt-bo": (
            "STARTMODE='onboot'\nBONDING_MASTER='yes'\nBOOTPROTO='none'\nPOST_UP_SCRIPT=\"wicked:setup_bond.sh\"\n\n"
            f"{slaves}BONDING_MODULE_OPTS='miimon=100 mode=active-backup '\nDHCLIENT_SET_DEFAULT_ROUTE='no'\n"
        ),
        "sysconfig/network/ifcfg-mgmt-br": (
            "STARTMODE='onboot'\nBOOTPROTO='dhcp'\nBRIDGE='yes'\nBRIDGE_STP='off'\nBRIDGE_FORWARDDELAY='0'\n"
            "BRIDGE_PORTS='mgmt-bo'\nPRE_UP_SCRIPT=\"wicked:setup_bridge.sh\"\nDHCLIENT_SET_DEFAULT_ROUTE='yes'\n"
        ),
        **{f"sysconfig/network/ifcfg-{nic}": "STARTMODE='hotplug'\nBOOTPROTO='none'\n" for nic in nics},
    }


def harvester_node(m: Machine, install_disk: str, mgmt: tuple[str, ...], data_disk: str | None = None,
                   network: str = "nm", vlan: int | None = None, ipv6: bool = False, up: bool = True,
                   **runtime_changes) -> Machine:
    """`m` installed and booted as a Harvester node: the install disk partitioned as
    elemental does and mounted as harvester/harvester#4754 shows it (p2 /oem, p4
    /run/initramfs/cos-state holding the active image that loop0 mounts as /, p5
    /usr/local, p6 the Longhorn default disk unless a data disk is given, which is then
    formatted whole: harv-install do_data_disk_format); the management network as
    Harvester configures it (`mgmt-bo` bond of `mgmt` under the `mgmt-br` bridge, a
    `mgmt-br.VLAN` on top when `vlan`, the default route on the top one) and its
    configuration files (`network`: "nm" for v1.7+, "wicked" for v1.4-v1.6). `up` False:
    the network is not up yet (no bond, bridge or route; the files are there)."""
    node = with_changes(m, f"{m.name}-node")
    for d in node.devices:
        if install_disk in d.disks:
            d.partitions = 5 if data_disk else 6
    p = lambda n: _part(install_disk, n)  # noqa: E731
    mounts = [
        Mount("/dev/loop0", "/", "ext2", "loop0", "ro,relatime"),
        Mount("proc", "/proc", "proc"),
        Mount("sysfs", "/sys", "sysfs"),
        Mount("devtmpfs", "/dev", "devtmpfs"),
        Mount("tmpfs", "/run", "tmpfs"),
        Mount("/dev/disk/by-label/COS_OEM", "/oem", "ext4", p(2)),
        Mount(f"/dev/{p(4)}", "/run/initramfs/cos-state", "ext4", p(4), "ro,relatime"),
        Mount(f"/dev/{p(5)}", "/usr/local", "ext4", p(5)),
        Mount("overlay", "/etc", "overlay"),
    ]
    if data_disk:
        mounts.append(Mount("/dev/disk/by-label/HARV_LH_DEFAULT", "/var/lib/harvester/defaultdisk", "ext4", data_disk))
    else:
        mounts.append(Mount(f"/dev/{p(6)}", "/var/lib/harvester/defaultdisk", "ext4", p(6)))
    links = {"disk/by-label/COS_OEM": p(2), "disk/by-label/COS_RECOVERY": p(3), "disk/by-label/COS_STATE": p(4),
             "disk/by-label/COS_PERSISTENT": p(5), "disk/by-label/HARV_LH_DEFAULT": data_disk or p(6)}
    top = f"mgmt-br.{vlan}" if vlan else "mgmt-br"
    netdevs: tuple[NetDev, ...] = ()
    routes: tuple[Route, ...] = ()
    routes6: tuple[Route6, ...] = (Route6("lo", flags=0x00200200, metric=0xFFFFFFFF),)
    if up:
        netdevs = (NetDev("mgmt-bo", "bond", mgmt), NetDev("mgmt-br", "bridge", ("mgmt-bo",)))
        if vlan:
            netdevs += (NetDev(top, "vlan", ("mgmt-br",)),)
        routes = (Route(top, gateway="192.168.1.1", metric=425),
                  Route(top, dest="192.168.1.0", mask="255.255.255.0", flags=0x0001, metric=425))
        if ipv6:
            routes6 = (Route6(top, gateway="fe800000000000000000000000000001"),
                       Route6(top, dest="fe800000000000000000000000000000", plen=64, flags=0x00000001, metric=256),
                       *routes6)
    node.runtime = Runtime(
        mounts=tuple(mounts),
        virt_blocks=(VirtBlock("loop0", backing_file="/run/initramfs/cos-state/cOS/active.img"),),
        dev_links=links,
        netdevs=netdevs,
        routes=routes,
        routes6=routes6,
        etc=nm_keyfiles(mgmt, vlan) if network == "nm" else wicked_ifcfg(mgmt),
    )
    for key, value in runtime_changes.items():
        setattr(node.runtime, key, value)
    return node


def workstation_node(**kw) -> Machine:
    """The workstation installed: sda the install disk, nvme0n1 the data disk, eno1 the
    management NIC (tests/planning.py WORKSTATION_INSTALL)."""
    return harvester_node(intel_workstation(), "sda", ("eno1",), data_disk="nvme0n1", **kw)


def epyc_node(**kw) -> Machine:
    """The EPYC installed: nvme0n1 (native multipath) the install disk, enp2s0f0 the
    management NIC (tests/planning.py EPYC_INSTALL)."""
    return harvester_node(amd_epyc_server(), "nvme0n1", ("enp2s0f0",), **kw)


def node_of(m: Machine) -> Machine:
    """`m` installed as a Harvester node, unless it already is: the EPYC and its variants
    as epyc_node() lays them out, any other machine as the workstation (sda, nvme0n1,
    eno1)."""
    if m.runtime is not None:
        return m
    if m.name.startswith("amd-epyc"):
        return harvester_node(m, "nvme0n1", ("enp2s0f0",))
    return harvester_node(m, "sda", ("eno1",), data_disk="nvme0n1")
