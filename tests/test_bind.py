"""`installer-ext bind` on fake machines: the writes land where the kernel wants them,
re-validation skips what changed, and a second run writes nothing."""

from __future__ import annotations

import io
import json
import os

import pytest

from installer_ext import paths
from installer_ext.boot.binder import bind
from installer_ext.boot.options import Options
from tests.fakekernel import FakeKernel, grp, plan_json, pt, write_plan
from tests.fakesys.builder import Dev, build, with_changes
from tests.fakesys.machines import intel_workstation, intel_workstation_iommu_off, node_of

GPU = "0000:01:00.0"
AUDIO = "0000:01:00.1"
PORT = "0000:00:01.0"
IGB = "0000:03:00.0"


def gpu_plan(**kw) -> dict:
    return plan_json(
        passthrough=[
            pt(GPU, "10de:2206", 1, driver="nvidia", **kw),
            pt(AUDIO, "10de:1aef", 1, driver="snd_hda_intel", why="same-group", **kw),
            pt(IGB, "8086:1533", 11, driver="igb"),
        ],
        groups=[grp([PORT, GPU, AUDIO], [GPU, AUDIO], left=[PORT], gid=1), grp([IGB], [IGB], gid=11)],
    )


def machine(tmp_path, m=None, **kernel_kw) -> FakeKernel:
    root = str(tmp_path / "root")
    build(node_of(m or intel_workstation()), root)
    return FakeKernel(root, **kernel_kw)


def run(k: FakeKernel, **kw):
    out = io.StringIO()
    kw.setdefault("timeout", 2.0)
    result = bind(Options(root=k.root, io=k.io, clock=k.clock, out=out, **kw))
    return result, out.getvalue()


def attr(k: FakeKernel, address: str, name: str) -> str:
    with open(os.path.join(k.devdir(address), name)) as f:
        return f.read()


def drvfile(k: FakeKernel, *parts: str) -> str:
    with open(os.path.join(k.pci, *parts)) as f:
        return f.read()


def status_file(k: FakeKernel) -> dict:
    with open(os.path.join(k.root, paths.BIND_STATUS_FILE)) as f:
        return json.load(f)


def rel_writes(k: FakeKernel) -> list[tuple[str, str]]:
    return [(os.path.relpath(os.path.realpath(p), k.sys), v) for p, v in k.io.writes]


def test_binds_a_gpu_group_with_driverctls_writes(tmp_path):
    k = machine(tmp_path)
    write_plan(k.root, gpu_plan())
    result, out = run(k)

    assert result.ok
    for a in (GPU, AUDIO, IGB):
        assert k.driver_of(a) == "vfio-pci"
        assert attr(k, a, "driver_override") == "vfio-pci\n"
        # The kernel's relative link from the device to the driver.
        link = os.readlink(os.path.join(k.devdir(a), "driver"))
        assert not link.startswith("/") and link.endswith("bus/pci/drivers/vfio-pci")
        assert os.path.islink(os.path.join(k.pci, "drivers", "vfio-pci", a))
        assert "DRIVER=vfio-pci" in attr(k, a, "uevent")
    assert drvfile(k, "drivers", "nvidia", "unbind") == GPU
    assert drvfile(k, "drivers", "snd_hda_intel", "unbind") == AUDIO
    assert drvfile(k, "drivers", "igb", "unbind") == IGB
    probes = [v for p, v in rel_writes(k) if p == "bus/pci/drivers_probe"]
    assert probes == [GPU, AUDIO, IGB]
    # Per device: override first (closes the race with a native module), unbind, probe.
    gpu_writes = [(p.rsplit("/", 1)[-1], v) for p, v in rel_writes(k) if GPU in p or v == GPU]
    assert gpu_writes == [("driver_override", "vfio-pci"), ("unbind", GPU), ("drivers_probe", GPU)]
    # Nothing else moved: the root port, the boot VGA, the NICs keep their drivers.
    assert k.driver_of(PORT) == "pcieport"
    assert k.driver_of("0000:00:02.0") == "i915"
    assert k.driver_of("0000:00:1f.6") == "e1000e"
    assert attr(k, PORT, "driver_override") == "(null)\n"
    assert f"{GPU} [10de:2206]: bound to vfio-pci (was nvidia)" in out
    assert "3 bound, 0 already bound, 0 skipped, 0 failed; 9 sysfs writes" in result.message


def test_status_file_has_the_contract_format(tmp_path):
    k = machine(tmp_path)
    write_plan(k.root, gpu_plan())
    run(k)
    st = status_file(k)
    assert set(st) == {"version", "skipped", "skip_reason", "given_back", "devices", "sriov"}
    assert (st["version"], st["skipped"], st["skip_reason"], st["given_back"], st["sriov"]) == (1, False, None, None, [])
    assert st["devices"][0] == {
        "address": GPU, "vendor_id": "10de", "device_id": "2206", "status": "bound", "reason": None,
        "driver": "vfio-pci", "previous_driver": "nvidia",
    }
    assert [d["address"] for d in st["devices"]] == [GPU, AUDIO, IGB]


def test_second_run_writes_nothing_and_says_so(tmp_path):
    k = machine(tmp_path)
    write_plan(k.root, gpu_plan())
    run(k)
    record = os.path.join(k.root, paths.BIND_RECORD_FILE)
    override = os.path.join(k.devdir(GPU), "driver_override")
    before = (os.stat(record).st_mtime_ns, os.stat(override).st_mtime_ns, open(record).read())
    k.io.writes.clear()

    result, out = run(k)

    assert result.ok and result.writes == 0 and k.io.writes == []
    assert (os.stat(record).st_mtime_ns, os.stat(override).st_mtime_ns, open(record).read()) == before
    assert "nothing changed" in result.message
    assert f"{GPU} [10de:2206]: already on vfio-pci, nothing to do" in out
    assert {d["status"] for d in status_file(k)["devices"]} == {"already-bound"}


def test_record_keeps_the_first_previous_driver_and_never_vfio(tmp_path):
    k = machine(tmp_path)
    write_plan(k.root, gpu_plan())
    run(k)
    run(k)
    with open(os.path.join(k.root, paths.BIND_RECORD_FILE)) as f:
        rec = json.load(f)["devices"]
    assert rec[GPU] == {"vendor_id": "10de", "device_id": "2206", "previous_driver": "nvidia", "source": "observed"}
    assert rec[AUDIO]["previous_driver"] == "snd_hda_intel"
    assert all(e["previous_driver"] != "vfio-pci" for e in rec.values())
    assert status_file(k)["devices"][0]["previous_driver"] == "nvidia"


def test_changed_device_is_skipped_with_its_group_and_others_go_on(tmp_path):
    m = intel_workstation()
    next(d for d in m.devices if d.address == GPU).ids = "10de:2204"  # an RTX 3090 now
    k = machine(tmp_path, m)
    write_plan(k.root, gpu_plan())
    result, out = run(k)

    assert not result.ok
    by = {d.address: d for d in result.status.devices}
    assert by[GPU].status == "skipped" and "holds 10de:2204, the plan expects 10de:2206" in by[GPU].reason
    assert by[AUDIO].status == "skipped" and by[AUDIO].reason.startswith(f"with its IOMMU group: {GPU}")
    assert by[IGB].status == "bound"
    assert k.driver_of(GPU) == "nvidia" and k.driver_of(AUDIO) == "snd_hda_intel"
    assert not any(GPU in p or AUDIO in p or v in (GPU, AUDIO) for p, v in k.io.writes)
    assert by[GPU].driver == "nvidia"
    assert "skipped: holds 10de:2204" in out


@pytest.mark.parametrize("predicted", [False, True])
def test_new_endpoint_in_the_group_blocks_the_group(tmp_path, predicted):
    m = intel_workstation()
    m.devices.append(Dev("0000:01:00.2", "10de:1ad8", "0c0330", "xhci_hcd", 1, parent=PORT, multifunction=True))
    k = machine(tmp_path, m)
    data = gpu_plan(predicted=predicted)
    if predicted:  # planned from the installer ISO: no groups then, predicted from topology
        data["groups"][0].update(id=None, predicted=True)
        for p in data["passthrough"]:
            p["iommu_group"] = None
    write_plan(k.root, data)
    result, _ = run(k)

    by = {d.address: d for d in result.status.devices}
    assert "0000:01:00.2 (10de:1ad8, driver xhci_hcd), which the plan does not cover" in by[GPU].reason
    assert by[AUDIO].status == by[GPU].status == "skipped"
    assert k.driver_of(GPU) == "nvidia" and k.driver_of("0000:01:00.2") == "xhci_hcd"
    assert by[IGB].status == "bound"


def test_group_number_changed_since_install_still_binds(tmp_path):
    k = machine(tmp_path)
    data = gpu_plan()
    data["groups"][0]["id"] = 7
    for p in data["passthrough"][:2]:
        p["iommu_group"] = 7
    write_plan(k.root, data)
    result, _ = run(k)
    assert result.ok and k.driver_of(GPU) == "vfio-pci"


def test_left_member_must_stay_driverless(tmp_path):
    # 00:14.0 (USB) shares group 4 with 00:14.2, a driverless function the plan leaves.
    plan = plan_json(
        passthrough=[pt("0000:00:14.0", "8086:a36d", 4, driver="xhci_hcd")],
        groups=[grp(["0000:00:14.0", "0000:00:14.2"], ["0000:00:14.0"], left=["0000:00:14.2"], gid=4)],
    )
    k = machine(tmp_path)
    write_plan(k.root, plan)
    assert run(k)[0].ok

    m = intel_workstation()
    next(d for d in m.devices if d.address == "0000:00:14.2").driver = "intel_pch_sram"
    k2 = machine(tmp_path / "2", m)
    write_plan(k2.root, plan)
    result, _ = run(k2)
    assert result.status.devices[0].reason == (
        "IOMMU group 4: 0000:00:14.2, left as is by the plan, is now driven by intel_pch_sram"
    )
    assert k2.io.writes == []


def test_skip_arg_does_nothing_for_this_boot(tmp_path):
    k = machine(tmp_path, with_changes(intel_workstation(), "rescue", cmdline="root=LABEL=x installer_ext.skip=1 quiet"))
    write_plan(k.root, gpu_plan())
    result, _ = run(k)
    assert result.ok and k.io.writes == []
    assert k.driver_of(GPU) == "nvidia"
    st = status_file(k)
    assert st["skipped"] is True and "installer_ext.skip=1" in st["skip_reason"] and st["devices"] == []
    assert "skipped for this boot" in result.message


def test_skip_arg_must_be_the_exact_token(tmp_path):
    k = machine(tmp_path, with_changes(intel_workstation(), "x", cmdline="installer_ext.skip=10 xinstaller_ext.skip=1"))
    write_plan(k.root, gpu_plan())
    assert run(k)[0].status.skipped is False and k.driver_of(GPU) == "vfio-pci"


def test_a_bind_that_never_completes_times_out_within_the_bound(tmp_path):
    k = machine(tmp_path)
    k.stall.add(GPU)
    write_plan(k.root, gpu_plan())
    start = k.clock.now()
    result, _ = run(k, timeout=2.0)

    by = {d.address: d for d in result.status.devices}
    assert by[GPU].status == "failed"
    assert by[GPU].reason == "vfio-pci did not take it within 2s (driver now: none)"
    waited = k.clock.now() - start
    assert 2.0 <= waited <= 2.0 + 0.001
    assert k.clock.sleeps <= 2.0 / 0.05 + 1
    assert by[AUDIO].status == "bound" and by[IGB].status == "bound"  # the others went on
    assert not result.ok


def test_an_asynchronous_bind_is_waited_for(tmp_path):
    k = machine(tmp_path)
    k.defer[GPU] = 5
    write_plan(k.root, gpu_plan())
    result, _ = run(k)
    assert result.ok and k.driver_of(GPU) == "vfio-pci"
    assert k.clock.sleeps == 5


def test_ids_mode_device_claimed_at_boot_is_only_checked(tmp_path):
    m = intel_workstation()
    for d in m.devices:
        if d.address in (GPU, AUDIO):
            d.driver = "vfio-pci"
    k = machine(tmp_path, m)
    write_plan(k.root, gpu_plan(bind="ids"))
    k.io.writes.clear()
    result, _ = run(k)
    by = {d.address: d for d in result.status.devices}
    assert by[GPU].status == "already-bound" and by[GPU].previous_driver == "nvidia"  # from the plan
    assert not any(GPU in p or v == GPU for p, v in k.io.writes)


def test_ids_mode_falls_back_to_address_when_the_native_driver_won(tmp_path):
    k = machine(tmp_path)
    write_plan(k.root, gpu_plan(bind="ids"))
    result, _ = run(k)
    gpu = result.status.devices[0]
    assert gpu.status == "bound" and k.driver_of(GPU) == "vfio-pci"
    assert gpu.reason == "vfio-pci.ids did not claim it at boot (nvidia had it); bound by address"


def test_override_set_by_the_udev_rule_is_not_rewritten(tmp_path):
    # The rule set driver_override at "add", but the native driver had the device already.
    k = machine(tmp_path)
    k.io.write(os.path.join(k.devdir(GPU), "driver_override"), "vfio-pci")
    k.io.writes.clear()
    write_plan(k.root, gpu_plan())
    assert run(k)[0].ok
    gpu = [os.path.basename(p) for p, v in k.io.writes if GPU in p or v == GPU]
    assert gpu == ["unbind", "drivers_probe"]


def test_vfio_pci_is_loaded_with_a_fixed_modprobe(tmp_path):
    k = machine(tmp_path)
    os.system(f"rm -rf '{os.path.join(k.pci, 'drivers', 'vfio-pci')}'")
    calls = []

    def modprobe(argv):
        calls.append(tuple(argv))
        k.load_driver("vfio-pci")
        return 0, ""

    write_plan(k.root, gpu_plan())
    result, _ = run(k, modprobe=modprobe)
    assert calls == [("modprobe", "vfio-pci")]
    assert result.ok and k.driver_of(GPU) == "vfio-pci"


def test_without_vfio_pci_nothing_is_unbound(tmp_path):
    k = machine(tmp_path)
    os.system(f"rm -rf '{os.path.join(k.pci, 'drivers', 'vfio-pci')}'")
    write_plan(k.root, gpu_plan())
    result, _ = run(k)  # a test tree: modprobe is never run
    assert {d.status for d in result.status.devices} == {"failed"}
    assert "vfio-pci is not loaded" in result.status.devices[0].reason
    assert k.io.writes == [] and k.driver_of(GPU) == "nvidia"


def test_iommu_off_skips_everything(tmp_path):
    k = machine(tmp_path, intel_workstation_iommu_off())
    write_plan(k.root, gpu_plan())
    result, _ = run(k)
    assert not result.ok and k.io.writes == []
    assert {d.status for d in result.status.devices} == {"skipped"}
    assert "IOMMU is off" in result.status.devices[0].reason


def test_missing_device_boot_vga_and_bridge_are_skipped(tmp_path):
    k = machine(tmp_path)
    write_plan(k.root, plan_json(passthrough=[
        pt("0000:05:00.0", "10de:2206"), pt("0000:00:02.0", "8086:3e98", 2), pt(PORT, "8086:1901", 1),
    ]))
    result, _ = run(k)
    reasons = {d.address: d.reason for d in result.status.devices}
    assert reasons["0000:05:00.0"].startswith("not present on this boot")
    assert reasons["0000:00:02.0"].startswith("is the boot VGA device now")
    assert reasons[PORT] == "is a PCI bridge; bridges are never bound"
    assert k.io.writes == []


def test_empty_plan_is_nothing_to_do(tmp_path):
    k = machine(tmp_path)
    write_plan(k.root, plan_json())
    result, _ = run(k)
    assert result.ok and k.io.writes == [] and "nothing to do" in result.message
    assert status_file(k)["devices"] == []


def test_address_run_binds_one_device_and_keeps_the_boots_status(tmp_path):
    k = machine(tmp_path)
    write_plan(k.root, gpu_plan())
    run(k)  # the boot's full run
    # The NIC was given back and the udev rule fires for it alone.
    k.detach(IGB)
    k.attach(IGB, "igb")
    k.io.writes.clear()
    result, out = run(k, address=IGB)
    assert result.ok and k.driver_of(IGB) == "vfio-pci"
    assert [d.address for d in result.status.devices] == [GPU, AUDIO, IGB]  # merged
    assert out.splitlines()[0].startswith(f"{IGB} [8086:1533]: bound")
    assert len(out.splitlines()) == 1
    assert not any(v in (GPU, AUDIO) for _, v in k.io.writes)


def test_address_not_in_plan_does_nothing(tmp_path):
    k = machine(tmp_path)
    write_plan(k.root, gpu_plan())
    result, _ = run(k, address="0000:00:1f.6")
    assert result.ok and k.io.writes == [] and "not in the plan" in result.message
