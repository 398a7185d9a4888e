"""Scenario 1 (issue 7): `detect` against a real kernel, IOMMU off and on.

Two boots of the same machine:
- `intel_iommu=off`, as the installer ISO boots (the suite's shared ISO boot,
  tests/e2e/iso.py): detect says `available` and predicts the groups from the topology;
- `intel_iommu=on iommu=pt`, as the installed system boots, with the NVMe's two VFs
  created: detect reports the kernel's own groups, and those equal the prediction
  (on the functions both boots have: VFs exist only once SR-IOV is on).
The IOMMU-on boot also proves the harness itself: a hand bind of 00:04.0 to vfio-pci
(the driverctl sequence) passes the VFIO check and leaves its twin 00:03.0 on e1000e.
"""

from __future__ import annotations

import pytest

from . import qemu
from .iso import KERNEL_GROUPS

NVME = "0000:01:00.0"
VFS = {"0000:01:00.1", "0000:01:00.2"}
NIC_KEPT, NIC_BOUND = "0000:00:03.0", "0000:00:04.0"

# As the ISO boot's `run detect detect --json` writes it.
DETECT = """
"$PYTHON" -m installer_ext detect --json >"$E2E_OUT/detect.out" 2>"$E2E_OUT/detect.err"
echo $? >"$E2E_OUT/detect.rc"
"""

ON_HOOK = f"""
nvme=/sys/bus/pci/devices/{NVME}
{{ echo 0 >$nvme/sriov_drivers_autoprobe && echo 2 >$nvme/sriov_numvfs; }} 2>"$E2E_OUT/sriov.err"
echo $? >"$E2E_OUT/sriov.rc"
{DETECT}
{KERNEL_GROUPS}
# harness proof: bind {NIC_BOUND} by hand (driverctl's sequence), then the VFIO check
a={NIC_BOUND}; d=/sys/bus/pci/devices/$a
{{
    if [ -e $d/driver ]; then echo $a >$d/driver/unbind; fi &&
    echo vfio-pci >$d/driver_override &&
    echo $a >/sys/bus/pci/drivers_probe
}} 2>"$E2E_OUT/bind.err"
echo $? >"$E2E_OUT/bind.rc"
readlink $d/driver >"$E2E_OUT/driver-bound.txt"
readlink /sys/bus/pci/devices/{NIC_KEPT}/driver >"$E2E_OUT/driver-kept.txt"
"$PYTHON" tests/e2e/vfio_check.py $a >"$E2E_OUT/vfio.json" 2>"$E2E_OUT/vfio.err"
echo $? >"$E2E_OUT/vfio.rc"
"""


@pytest.fixture(scope="module")
def boots(iso, e2e_assets, tmp_path_factory):
    on = qemu.start(ON_HOOK, kernel_args=qemu.IOMMU_ON, assets=e2e_assets, workdir=tmp_path_factory.mktemp("boot-on"))
    return {"off": iso.result(), "on": on.result()}


def detect(r: qemu.BootResult) -> dict:
    r.check()
    rc = r.text("detect.rc").strip()
    assert rc == "0", f"detect exited {rc}: {r.text('detect.err')}\n{r.diagnostics()}"
    return r.json("detect.out")


def kernel_groups(r: qemu.BootResult) -> dict[int, set[str]]:
    groups: dict[int, set[str]] = {}
    for line in r.text("kernel-groups.txt").split("\n"):
        if line.strip():
            gid, addr = line.split()
            groups.setdefault(int(gid), set()).add(addr)
    return groups


def partition(groups) -> set[frozenset[str]]:
    return {frozenset(g) for g in groups if g}


def test_iommu_off_detect_says_available_and_predicts(boots):
    r = boots["off"]
    d = detect(r)
    assert "intel_iommu=off" in d["cmdline"]
    assert d["cpu"]["vendor"] == "intel"
    assert d["iommu"]["state"] == "available", r.diagnostics()
    assert "DMAR" in d["iommu"]["firmware_tables"]
    assert d["groups_predicted"] is True
    assert kernel_groups(r) == {}, "the kernel made groups with intel_iommu=off"
    assert d["groups"] and all(g["predicted"] for g in d["groups"])
    addrs = {dev["address"] for dev in d["devices"]}
    assert {dev for g in d["groups"] for dev in g["devices"]} == addrs
    assert all(dev["iommu_group"] is None for dev in d["devices"])


def test_iommu_on_detect_reports_the_kernels_groups(boots):
    r = boots["on"]
    d = detect(r)
    assert r.text("sriov.rc").strip() == "0", f"SR-IOV: {r.text('sriov.err')}"
    assert d["iommu"]["state"] == "enabled", r.diagnostics()
    assert d["iommu"]["interrupt_remapping"] is True
    assert d["groups_predicted"] is False
    kernel = kernel_groups(r)
    assert VFS <= set().union(*kernel.values()), "the NVMe VFs did not appear"
    assert {g["id"]: set(g["devices"]) for g in d["groups"]} == kernel
    assert all(not g["predicted"] for g in d["groups"])
    devices = {dev["address"]: dev for dev in d["devices"]}
    for addr, dev in devices.items():
        assert addr in kernel.get(dev["iommu_group"], ()), addr
    assert all(devices[vf]["physfn"] == NVME for vf in VFS)
    assert devices[NVME]["sriov"]["num_vfs"] == 2


def test_predicted_groups_equal_the_real_ones(boots):
    predicted = detect(boots["off"])["groups"]
    real = kernel_groups(boots["on"])
    pred_addrs = {a for g in predicted for a in g["devices"]}
    real_addrs = set().union(*real.values())
    # Only the VFs are new with the IOMMU on; nothing disappears.
    assert real_addrs - pred_addrs == VFS
    assert pred_addrs <= real_addrs
    common = pred_addrs & real_addrs
    assert partition(set(g["devices"]) & common for g in predicted) == partition(
        g & common for g in real.values()
    )


def test_harness_hand_bind_passes_the_vfio_check(boots):
    r = boots["on"]
    r.check()
    assert r.text("bind.rc").strip() == "0", f"bind: {r.text('bind.err')}"
    assert r.text("driver-bound.txt").strip().endswith("/vfio-pci")
    assert r.text("driver-kept.txt").strip().endswith("/e1000e")
    v = r.json("vfio.json")
    assert v["ok"], f"VFIO check failed: {v['steps'][-1]}\n{v}"
    assert v["driver"] == "vfio-pci" and v["group_devices"] == {NIC_BOUND: "vfio-pci"}
    assert [s["step"] for s in v["steps"]][-2:] == ["VFIO_IOMMU_MAP_DMA 1MiB", "VFIO_IOMMU_UNMAP_DMA"]
    assert r.text("vfio.rc").strip() == "0"
