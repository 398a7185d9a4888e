"""The harness itself: cached assets, the kmod boot-time path, a check that can fail.

One boot as a later scenario 3 will use it: kmod's modprobe in the chroot, a shipped
modprobe.d softdep (`e1000 pre: vfio-pci`) and `vfio-pci.ids=8086:100e` on the kernel
command line, so vfio-pci claims both e1000 functions behind the PCIe-to-PCI bridge
before e1000 loads. The same boot then gives one of them back to e1000 and the VFIO check
must say the group is no longer viable: the check can fail.
"""

from __future__ import annotations

import subprocess

import pytest

from . import assets, qemu

E1000 = ("0000:02:01.0", "0000:02:02.0")
E1000_ID = "8086:100e"
SOFTDEP = "softdep e1000 pre: vfio-pci\n"

HOOK = f"""
for a in {' '.join(E1000)} 0000:00:03.0; do
    echo "$a $(basename "$(readlink /sys/bus/pci/devices/$a/driver)")"
done >"$E2E_OUT/drivers-at-start.txt"
dmesg | grep -o 'vfio_pci: add \\[.*' >"$E2E_OUT/vfio-pci-add.txt"
"$PYTHON" tests/e2e/vfio_check.py {E1000[0]} {E1000[1]} >"$E2E_OUT/vfio-bound.json" 2>"$E2E_OUT/vfio-bound.err"
# give {E1000[1]} back to e1000: the group is then split between drivers
d=/sys/bus/pci/devices/{E1000[1]}
{{
    echo {E1000[1]} >$d/driver/unbind && echo e1000 >$d/driver_override &&
    echo {E1000[1]} >/sys/bus/pci/drivers_probe
}} 2>"$E2E_OUT/rebind.err"
echo $? >"$E2E_OUT/rebind.rc"
basename "$(readlink $d/driver)" >"$E2E_OUT/driver-given-back.txt"
"$PYTHON" tests/e2e/vfio_check.py {E1000[0]} >"$E2E_OUT/vfio-split.json" 2>"$E2E_OUT/vfio-split.err"
echo $? >"$E2E_OUT/vfio-split.rc"
"""


@pytest.fixture(scope="module")
def kmod_boot(e2e_assets, e2e_kmod, tmp_path_factory):
    return qemu.boot(
        HOOK,
        kernel_args=(*qemu.IOMMU_ON, f"vfio-pci.ids={E1000_ID}"),
        files={"/etc/modprobe.d/e2e-vfio.conf": SOFTDEP},
        modprobe="kmod",
        assets=e2e_assets,
        workdir=tmp_path_factory.mktemp("boot-kmod"),
    ).check()


def test_boot_time_ids_bind_with_kmod_and_softdep(kmod_boot):
    r = kmod_boot
    drivers = dict(line.split() for line in r.text("drivers-at-start.txt").splitlines())
    assert drivers == {E1000[0]: "vfio-pci", E1000[1]: "vfio-pci", "0000:00:03.0": "e1000e"}, r.diagnostics()
    # vfio-pci got the ids from the kernel command line, through kmod
    assert r.text("vfio-pci-add.txt").startswith(f"vfio_pci: add [{E1000_ID}[")
    results = r.json("vfio-bound.json")
    assert [v["ok"] for v in results] == [True, True], results


def test_vfio_check_fails_for_a_split_group(kmod_boot):
    r = kmod_boot
    assert r.text("rebind.rc").strip() == "0", r.text("rebind.err")
    assert r.text("driver-given-back.txt").strip() == "e1000"
    v = r.json("vfio-split.json")
    assert not v["ok"] and r.text("vfio-split.rc").strip() == "1"
    assert v["steps"][-1]["step"] == "VFIO_GROUP_GET_STATUS viable" and not v["steps"][-1]["ok"]
    assert v["group_devices"] == {"0000:00:06.0": None, E1000[0]: "vfio-pci", E1000[1]: "e1000"}


def test_cached_assets_need_no_download_or_build(e2e_assets, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"a cached run ran {args[0] if args else kwargs}")

    monkeypatch.setattr(subprocess, "run", refuse)
    assert assets.ensure() == e2e_assets
