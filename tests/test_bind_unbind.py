"""`installer-ext unbind`: devices go back to the driver recorded at bind time."""

from __future__ import annotations

import io
import json
import os

from installer_ext import paths
from installer_ext.boot.binder import bind
from installer_ext.boot.options import Options
from installer_ext.boot.unbinder import unbind
from tests.fakekernel import FakeKernel, grp, plan_json, pt, sriov_entry, write_plan
from tests.fakesys.builder import build
from tests.fakesys.machines import amd_epyc_server, intel_workstation, node_of

GPU, AUDIO, PORT = "0000:01:00.0", "0000:01:00.1", "0000:00:01.0"


def gpu_plan(bind_at_boot: str = "address") -> dict:
    return plan_json(
        passthrough=[
            pt(GPU, "10de:2206", 1, bind_at_boot, driver="nvidia"),
            pt(AUDIO, "10de:1aef", 1, bind_at_boot, driver="snd_hda_intel"),
        ],
        groups=[grp([PORT, GPU, AUDIO], [GPU, AUDIO], [PORT], 1)],
    )


def kernel(tmp_path, m=None, **kw) -> FakeKernel:
    root = str(tmp_path / "root")
    build(node_of(m or intel_workstation()), root)
    return FakeKernel(root, **kw)


def opts(k: FakeKernel, **kw) -> Options:
    return Options(root=k.root, io=k.io, clock=k.clock, out=io.StringIO(), timeout=2.0, **kw)


def override(k: FakeKernel, a: str) -> str:
    with open(os.path.join(k.devdir(a), "driver_override")) as f:
        return f.read()


def test_unbind_restores_the_previous_drivers_and_is_idempotent(tmp_path):
    k = kernel(tmp_path)
    write_plan(k.root, gpu_plan())
    assert bind(opts(k)).ok
    k.io.writes.clear()

    result = unbind(opts(k))
    assert result.ok
    assert (k.driver_of(GPU), k.driver_of(AUDIO)) == ("nvidia", "snd_hda_intel")
    assert override(k, GPU) == override(k, AUDIO) == "(null)\n"
    with open(os.path.join(k.pci, "drivers", "vfio-pci", "unbind")) as f:
        assert f.read() == AUDIO  # the last one written
    assert [d.status for d in result.devices] == ["released", "released"]
    assert [d.driver for d in result.devices] == ["nvidia", "snd_hda_intel"]
    assert "2 given back" in result.message

    k.io.writes.clear()
    again = unbind(opts(k))
    assert again.ok and k.io.writes == [] and "nothing changed" in again.message
    assert [d.status for d in again.devices] == ["already-released"] * 2


def test_unbind_beats_vfio_pci_ids(tmp_path):
    # Bound at boot by vfio-pci.ids: a plain reprobe would hand the GPU to vfio-pci again.
    m = intel_workstation()
    for d in m.devices:
        if d.address in (GPU, AUDIO):
            d.driver = "vfio-pci"
    k = kernel(tmp_path, m, native={"10de:2206": "nvidia", "10de:1aef": "snd_hda_intel"},
               vfio_ids=("10de:2206", "10de:1aef"))
    k.load_driver("nvidia")
    write_plan(k.root, gpu_plan("ids"))
    assert bind(opts(k)).status.devices[0].status == "already-bound"
    result = unbind(opts(k))
    assert result.ok and k.driver_of(GPU) == "nvidia" and k.driver_of(AUDIO) == "snd_hda_intel"
    assert override(k, GPU) == "(null)\n"
    gpu = [(os.path.basename(p), v) for p, v in k.io.writes if GPU in p or v == GPU]
    assert gpu == [("unbind", GPU), ("driver_override", "nvidia"), ("drivers_probe", GPU), ("driver_override", "\n")]


def test_unbind_without_the_previous_driver_loaded_fails_cleanly(tmp_path):
    k = kernel(tmp_path)
    write_plan(k.root, gpu_plan())
    bind(opts(k))
    os.system(f"rm -rf '{os.path.join(k.pci, 'drivers', 'nvidia')}'")
    result = unbind(opts(k))
    gpu = result.devices[0]
    assert gpu.status == "failed"
    assert gpu.reason == "nvidia did not take it back (is its module loaded?); left without a driver"
    assert k.driver_of(GPU) is None and override(k, GPU) == "(null)\n"  # a later load can take it
    assert result.devices[1].status == "released"
    assert not result.ok
    assert k.clock.sleeps == 0  # no wait for a driver that is not there


def test_unbind_loads_the_previous_driver_by_modalias(tmp_path):
    k = kernel(tmp_path)
    write_plan(k.root, gpu_plan())
    bind(opts(k))
    os.system(f"rm -rf '{os.path.join(k.pci, 'drivers', 'nvidia')}'")
    calls = []

    def modprobe(argv):
        calls.append(tuple(argv))
        k.load_driver("nvidia")
        k.probe(GPU)  # a module's init binds the devices that match (the override)
        return 0, ""

    result = unbind(opts(k, modprobe=modprobe))
    assert result.ok and k.driver_of(GPU) == "nvidia"
    assert calls == [("modprobe", "-b", "-q", "pci:v000010DEd00002206sv00001458sd0000403Bbc03sc00i00")]


def test_record_without_a_driver_is_upgraded_once_one_is_seen(tmp_path):
    k = kernel(tmp_path)
    k.detach(GPU)  # the binder ran before the native module was loaded
    data = gpu_plan()
    data["passthrough"][0]["driver"] = None
    write_plan(k.root, data)
    bind(opts(k))
    unbind(opts(k))  # no previous driver: the native one (loaded by now) takes it
    assert k.driver_of(GPU) == "nvidia"
    bind(opts(k, again=True))  # taken back: bound again, the native driver recorded
    with open(os.path.join(k.root, paths.BIND_RECORD_FILE)) as f:
        assert json.load(f)["devices"][GPU]["previous_driver"] == "nvidia"


def test_unbind_leaves_a_changed_device_alone(tmp_path):
    k = kernel(tmp_path)
    data = gpu_plan()
    data["passthrough"][0]["device_id"] = "2204"
    write_plan(k.root, data)
    result = unbind(opts(k))
    assert result.devices[0].status == "skipped" and "holds 10de:2206, the plan expects 10de:2204" in result.devices[0].reason
    assert result.devices[1].status == "already-released"
    assert k.io.writes == []


def test_unbind_clears_a_stale_override(tmp_path):
    # A bind that failed half-way: override set, no driver.
    k = kernel(tmp_path)
    write_plan(k.root, gpu_plan())
    k.io.write(os.path.join(k.devdir(GPU), "driver_override"), "vfio-pci")
    k.io.write(os.path.join(k.devdir(GPU), "driver", "unbind"), GPU)
    k.io.writes.clear()
    result = unbind(opts(k))
    assert result.devices[0].status == "released" and k.driver_of(GPU) == "nvidia"
    assert override(k, GPU) == "(null)\n"


def test_unbind_vfs_with_autoprobe_off_leaves_them_driverless(tmp_path):
    pf = "0000:02:00.1"
    k = kernel(tmp_path, amd_epyc_server(), native={"8086:154c": "iavf"})
    k.load_driver("iavf")
    write_plan(k.root, plan_json(sriov=[sriov_entry(pf, 2, True, "8086:1572", "154c", 64)]))
    assert bind(opts(k)).ok
    result = unbind(opts(k))
    vfs = [d.address for d in result.devices]
    assert result.ok and len(vfs) == 2
    assert [k.driver_of(v) for v in vfs] == [None, None]  # they had none before
    assert [override(k, v) for v in vfs] == ["(null)\n"] * 2
    with open(os.path.join(k.root, paths.BIND_RECORD_FILE)) as f:
        rec = json.load(f)["devices"]
    assert [rec[v]["previous_driver"] for v in vfs] == [None, None]
