"""`bind` and `unbind` on a real Linux kernel (QEMU TCG, emulated VT-d; tests/e2e's
harness): the kernel itself answers the writes, and a VFIO check proves a VM could use
what was bound (group viable, container, DMA map).

One boot, one hook: plan -> bind (SR-IOV on the NVMe from 0 VFs, a NIC whose twin stays,
the two NICs behind the PCI bridge) -> VFIO check -> bind again (no writes) -> unbind
(drivers back) -> unbind again. About 20-60 s.
"""

from __future__ import annotations

import json

import pytest

from tests.fakekernel import grp, plan_json, pt, sriov_entry

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

NIC_KEPT, NIC = "0000:00:03.0", "0000:00:04.0"
NVME, VF0, VF1 = "0000:01:00.0", "0000:01:00.1", "0000:01:00.2"
BRIDGE, E1000A, E1000B = "0000:00:06.0", "0000:02:01.0", "0000:02:02.0"
ALL = [NIC_KEPT, NIC, NVME, VF0, VF1, E1000A, E1000B]

PLAN = plan_json(
    passthrough=[
        pt(NIC, "8086:10d3", 4, driver="e1000e"),
        pt(E1000A, "8086:100e", 6, driver="e1000"),
        pt(E1000B, "8086:100e", 6, driver="e1000", why="same-group"),
        pt(VF0, "1b36:0010", why="sriov-vf", vf_of=NVME),
        pt(VF1, "1b36:0010", why="sriov-vf", vf_of=NVME),
    ],
    sriov=[sriov_entry(NVME, 2, True, "1b36:0010", "0010", 2, [VF0, VF1])],
    groups=[grp([NIC], [NIC], gid=4), grp([BRIDGE, E1000A, E1000B], [E1000A, E1000B], [BRIDGE], 6)],
)

HOOK = f"""
run() {{ name=$1; shift; "$PYTHON" -m installer_ext "$@" >"$E2E_OUT/$name.out" 2>"$E2E_OUT/$name.err"; echo $? >"$E2E_OUT/$name.rc"; }}
drivers() {{ for a in {' '.join(ALL)}; do echo "$a $(basename "$(readlink /sys/bus/pci/devices/$a/driver)" 2>/dev/null)"; done >"$E2E_OUT/$1"; }}
run bind1 bind --timeout 5
cp /run/installer-ext/bind-status.json "$E2E_OUT/status.json"
cp /usr/local/lib/installer-ext/bind-record.json "$E2E_OUT/record.json"
cat /sys/bus/pci/devices/{NVME}/sriov_drivers_autoprobe >"$E2E_OUT/autoprobe.txt"
cat /sys/bus/pci/devices/{NIC}/driver_override >"$E2E_OUT/override.txt"
drivers drivers-bound.txt
"$PYTHON" tests/e2e/vfio_check.py {NIC} {E1000A} {VF0} >"$E2E_OUT/vfio.json" 2>"$E2E_OUT/vfio.err"; echo $? >"$E2E_OUT/vfio.rc"
run bind2 bind
run unbind1 unbind
drivers drivers-released.txt
cat /sys/bus/pci/devices/{NIC}/driver_override >"$E2E_OUT/override-released.txt"
run unbind2 unbind
"""


@pytest.fixture(scope="module")
def guest(tmp_path_factory):
    from tests.e2e import assets, qemu
    from tests.conftest import unavailable
    from tests.e2e.conftest import SETUP_HINT, missing_requirement

    reason = missing_requirement()
    if reason:
        unavailable(f"e2e: {reason}; {SETUP_HINT}")
    files = {"/oem/installer-ext/plan.json": json.dumps(PLAN)}
    r = qemu.boot(HOOK, kernel_args=qemu.IOMMU_ON, files=files, assets=assets.ensure(),
                  workdir=tmp_path_factory.mktemp("bind-e2e"))
    return r.check()


def drivers(r, name: str) -> dict[str, str]:
    return dict((line.split() + [""])[:2] for line in r.text(name).splitlines() if line.strip())


def step(r, name: str) -> tuple[int, str]:
    return int(r.text(f"{name}.rc")), r.text(f"{name}.out") + r.text(f"{name}.err")


def test_bind_on_a_real_kernel(guest):
    rc, out = step(guest, "bind1")
    assert rc == 0, f"{out}\n{guest.diagnostics()}"
    d = drivers(guest, "drivers-bound.txt")
    assert d == {NIC_KEPT: "e1000e", NIC: "vfio-pci", NVME: "nvme", VF0: "vfio-pci", VF1: "vfio-pci",
                 E1000A: "vfio-pci", E1000B: "vfio-pci"}, out
    assert guest.text("autoprobe.txt").strip() == "0"
    assert guest.text("override.txt") == "vfio-pci\n"
    st = guest.json("status.json")
    assert st["sriov"] == [{"address": NVME, "num_vfs": 2, "status": "set", "reason": None}]
    assert {x["address"]: (x["status"], x["previous_driver"]) for x in st["devices"]} == {
        NIC: ("bound", "e1000e"), E1000A: ("bound", "e1000"), E1000B: ("bound", "e1000"),
        VF0: ("bound", None), VF1: ("bound", None),
    }
    rec = guest.json("record.json")["devices"]
    assert rec[NIC]["previous_driver"] == "e1000e" and rec[NIC]["source"] == "observed"


def test_what_was_bound_is_usable_by_a_vm(guest):
    results = guest.json("vfio.json")
    for v in results:
        assert v["ok"], f"VFIO check failed for {v.get('address')}: {v['steps'][-1]}"
    assert int(guest.text("vfio.rc")) == 0


def test_second_bind_writes_nothing(guest):
    rc, out = step(guest, "bind2")
    assert rc == 0 and "bind: 0 bound, 5 already bound, 0 skipped, 0 failed; nothing changed" in out, out


def test_unbind_gives_the_drivers_back(guest):
    rc, out = step(guest, "unbind1")
    assert rc == 0, out
    d = drivers(guest, "drivers-released.txt")
    assert d == {NIC_KEPT: "e1000e", NIC: "e1000e", NVME: "nvme", VF0: "", VF1: "", E1000A: "e1000", E1000B: "e1000"}, out
    assert guest.text("override-released.txt") == "(null)\n"
    rc, out = step(guest, "unbind2")
    assert rc == 0 and "nothing changed" in out, out
