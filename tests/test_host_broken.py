"""Broken and hostile trees: a report with the device marked unknown, never a crash."""

from __future__ import annotations

import os
import shutil

from installer_ext.host import config_space
from installer_ext.host.facts import gather
from installer_ext.report import detect_blockers
from tests.fakesys import machines as fm

DEV = "sys/bus/pci/devices"


def devdir(root: str, addr: str) -> str:
    return os.path.realpath(os.path.join(root, DEV, addr))


def test_missing_identity_files_mark_the_device_unknown(fresh_machine):
    root = fresh_machine(fm.intel_workstation())
    d = devdir(root, "0000:03:00.0")
    for name in ("uevent", "vendor", "device", "class"):
        os.remove(os.path.join(d, name))
    f = gather(root)
    dev = f.device("0000:03:00.0")
    assert dev.vendor_id is None and dev.class_id is None and dev.kind == "other"
    assert {"vendor", "device", "class"} <= set(dev.unknown)
    # The planner will not give away what it cannot check.
    [b] = detect_blockers(f)[dev.address]
    assert b.code == "unknown" and b.subject == "vendor, device, class" and "unreadable" in b.reason
    # Everything else is still read.
    assert f.device("0000:01:00.0").ids == "10de:2206"


def test_garbage_class_and_unreadable_attributes(fresh_machine):
    root = fresh_machine(fm.intel_workstation())
    d = devdir(root, "0000:01:00.0")
    with open(os.path.join(d, "uevent"), "w") as fh:
        fh.write("DRIVER=nvidia\nPCI_CLASS=zzzz\nPCI_ID=10DE:2206\n")
    with open(os.path.join(d, "class"), "w") as fh:
        fh.write("0xnotahex\n")
    # A directory where a file belongs reads like an attribute the kernel refuses (EISDIR).
    os.remove(os.path.join(d, "boot_vga"))
    os.mkdir(os.path.join(d, "boot_vga"))
    f = gather(root)
    dev = f.device("0000:01:00.0")
    assert dev.class_id is None and "class" in dev.unknown and dev.kind == "other"
    assert dev.boot_vga is False
    assert dev.driver == "nvidia"


def test_dangling_links(fresh_machine):
    root = fresh_machine(fm.intel_workstation())
    d = devdir(root, "0000:03:00.0")
    os.remove(os.path.join(d, "iommu_group"))
    os.symlink("../../../kernel/iommu_groups/notanumber", os.path.join(d, "iommu_group"))
    net = os.path.join(root, "sys/class/net/enp9s9")
    os.symlink("../../devices/pci0000:00/0000:00:09.0/net/enp9s9", net)
    blk = os.path.join(root, "sys/class/block/sdz")
    os.symlink("../../devices/gone/block/sdz", blk)
    f = gather(root)
    assert "iommu_group" in f.device("0000:03:00.0").unknown
    assert f.device("0000:03:00.0").iommu_group is None
    # The interface points at a function that does not exist: listed, matched to nothing.
    assert {n.name: n.address for n in f.net}["enp9s9"] == "0000:00:09.0"
    assert {b.name: b.controllers for b in f.block}["sdz"] == ()


def test_odd_names_in_the_bus_directory_are_ignored(fresh_machine):
    root = fresh_machine(fm.intel_workstation())
    os.mkdir(os.path.join(root, DEV, "..evil"))
    os.mkdir(os.path.join(root, DEV, "0000:01:00.0\n"))
    f = gather(root)
    assert len(f.devices) == len(fm.intel_workstation().devices)
    assert any("not a PCI address" in p for p in f.problems)


def test_empty_and_half_trees(tmp_path):
    f = gather(str(tmp_path))
    assert f.devices == () and f.iommu.state == "absent"
    assert f.cpu.vendor == "other" and f.iommu.interrupt_remapping is None
    assert any("no PCI bus" in p for p in f.problems)
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cpuinfo").write_bytes(b"\xff\xfe garbage\0\n:::\n")
    (tmp_path / "proc" / "interrupts").write_text("nothing useful\n")
    f = gather(str(tmp_path))
    assert f.cpu.vendor == "other" and f.iommu.interrupt_remapping is None


def test_truncated_and_looping_config_space():
    assert config_space.parse_config(None).complete is False
    assert config_space.parse_config(b"\xff" * 256).complete is False
    header_only = bytearray(64)
    header_only[0x0E] = 0x81
    info = config_space.parse_config(bytes(header_only))
    assert (info.header_type, info.multifunction, info.complete) == (1, True, False)
    # A capability list that points at itself must not hang the reader.
    b = bytearray(4096)
    b[6] = 0x10
    b[0x34] = 0x40
    b[0x40], b[0x41] = 0x05, 0x40
    b[0x100:0x104] = (0x0001 | (0x100 << 20)).to_bytes(4, "little")
    info = config_space.parse_config(bytes(b))
    assert info.pcie_type is None and info.complete


def test_unreadable_config_makes_prediction_conservative(fresh_machine):
    root = fresh_machine(fm.intel_workstation_iommu_off())
    # An unprivileged reader sees 64 bytes: PCIe type and ACS are unknown, so the
    # ports count as not isolating and groups can only grow.
    for addr in os.listdir(os.path.join(root, DEV)):
        path = os.path.join(devdir(root, addr), "config")
        with open(path, "rb") as fh:
            data = fh.read(64)
        with open(path, "wb") as fh:
            fh.write(data)
    f = gather(root)
    nvme = f.device("0000:02:00.0")
    assert nvme.predicted_group == f.device("0000:00:1b.0").predicted_group
    assert "config" in nvme.unknown


def test_vanished_device_directory(fresh_machine):
    root = fresh_machine(fm.intel_workstation())
    shutil.rmtree(devdir(root, "0000:03:00.0"))
    f = gather(root)
    dev = f.device("0000:03:00.0")
    assert dev is not None and "directory" in dev.unknown
    # Its interface's operstate went with the directory: it may have a link, so it stays a
    # candidate for the management network too.
    assert [b.code for b in detect_blockers(f)[dev.address]] == ["unknown", "management-nic"]
