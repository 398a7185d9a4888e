"""The benchmark machine: 4096 PCI functions (GPUs with their audio functions, SR-IOV
NICs with their VFs), each behind an ACS root port, IOMMU on."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.fakesys.builder import Dev, Machine  # noqa: E402
from tests.fakesys.machines import RP  # noqa: E402


def big_host(total: int = 4096, nics: int = 16, gpus: int = 16) -> Machine:
    devs = [
        Dev("0000:00:00.0", "8086:2020", "060000", None, 0, pcie_type=None),
        Dev("0000:00:1f.0", "8086:a1c8", "060100", None, 1, pcie_type=None, multifunction=True),
        Dev("0000:00:1f.6", "8086:15b9", "020000", "e1000e", 1, pcie_type=None, multifunction=True, net=(("eno1", "a4:bf:01:00:00:01"),)),
    ]
    gid = 2
    ports = []
    for i in range(gpus + nics):
        dev, fn = divmod(i, 8)
        ports.append(f"0000:00:{dev + 1:02x}.{fn}")
    fixed = len(devs) + len(ports) + 2 * gpus + nics
    vfs_each, extra = divmod(total - fixed, nics)
    for port in ports:
        devs.append(Dev(port, "8086:2030", "060400", "pcieport", gid, pcie_type=RP, acs=True, multifunction=True))
        gid += 1
    for i in range(gpus):
        bus = 0x10 + i
        for fn, (ids, cls, drv) in enumerate((("10de:2204", "030000", "nvidia"), ("10de:1aef", "040300", "snd_hda_intel"))):
            devs.append(Dev(f"0000:{bus:02x}:00.{fn}", ids, cls, drv, gid, parent=ports[i], multifunction=True))
        gid += 1
    for i in range(nics):
        bus = 0x40 + 2 * i  # two buses apart: a PF's VFs run past the end of its bus
        vfs = vfs_each + (1 if i < extra else 0)
        devs.append(
            Dev(
                f"0000:{bus:02x}:00.0", "8086:1593", "020000", "ice", gid, parent=ports[gpus + i],
                sriov_total=256, num_vfs=vfs, vf_device="1889", vf_offset=8, vf_stride=1,
                vf_driver="iavf", vf_groups=gid + 1, net=((f"ens{i + 1}f0", f"b4:96:91:00:{i:02x}:00"),),
            )
        )
        gid += 1 + vfs
    return Machine(name="big-host", devices=devs, cpu_model="Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz")
