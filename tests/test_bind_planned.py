"""The binder on plans made by the real planner: the plan written at install time
(IOMMU off on the ISO, groups predicted) is carried out on the installed system's boot
(IOMMU on, the kernel's groups)."""

from __future__ import annotations

import io
import json
import os

from installer_ext.boot.binder import bind
from installer_ext.boot.options import Options
from installer_ext.cli import main
from tests.fakekernel import FakeKernel, write_plan
from tests.fakesys.builder import build
from tests.fakesys.machines import amd_epyc_server, intel_workstation, intel_workstation_iommu_off, node_of
from tests.planning import EPYC_INSTALL, WORKSTATION_INSTALL, plan_for


def installed(tmp_path, iso_machine, node_machine, section, install, **kernel_kw) -> tuple[FakeKernel, dict]:
    iso = str(tmp_path / "iso")
    build(iso_machine, iso)
    plan = plan_for(iso, section, install).to_json()
    root = str(tmp_path / "node")
    build(node_of(node_machine), root)
    k = FakeKernel(root, **kernel_kw)
    write_plan(root, plan)
    return k, plan


def run(k: FakeKernel):
    return bind(Options(root=k.root, io=k.io, clock=k.clock, out=io.StringIO(), timeout=2.0))


def test_install_time_plan_with_predicted_groups(tmp_path):
    section = {"enabled": True, "devices": [{"address": "0000:01:00.0"}]}
    k, plan = installed(tmp_path, intel_workstation_iommu_off(), intel_workstation(), section, WORKSTATION_INSTALL)
    assert plan["host"]["groups_predicted"] is True
    assert {p["address"] for p in plan["passthrough"]} == {"0000:01:00.0", "0000:01:00.1"}
    result = run(k)
    assert result.ok, result.status.to_json()
    assert k.driver_of("0000:01:00.0") == k.driver_of("0000:01:00.1") == "vfio-pci"
    assert k.driver_of("0000:00:01.0") == "pcieport"
    k.io.writes.clear()
    assert run(k).writes == 0


def test_planned_sriov_vfs(tmp_path):
    section = {"enabled": True, "sriov": [{"address": "0000:02:00.1", "numVfs": 4, "vfsToVfio": True}]}
    k, plan = installed(tmp_path, amd_epyc_server(), amd_epyc_server(), section, EPYC_INSTALL)
    assert plan["sriov"][0]["num_vfs"] == 4
    result = run(k)
    assert result.ok, result.status.to_json()
    assert result.status.sriov[0].status == "set"
    vfs = [d.address for d in result.status.devices]
    assert len(vfs) == 4 and all(k.driver_of(v) == "vfio-pci" for v in vfs)


def test_cli_bad_plan_is_exit_2_with_one_line(tmp_path, capsys):
    root = str(tmp_path / "node")
    build(intel_workstation(), root)
    path = write_plan(root, json.dumps({"passthrough": [{"address": "0000:01:00.0/../../x"}]}))
    assert main(["bind", "--root", root]) == 2
    err = capsys.readouterr().err
    # The first problem in key order, and how many more there are: one line.
    assert err == f'installer-ext: {path}: (top level): missing key "version" (and 27 more problems)\n'
    iso = build(intel_workstation_iommu_off(), str(tmp_path / "iso"))
    plan = plan_for(iso, {"enabled": True, "devices": [{"address": "0000:01:00.0"}]}, WORKSTATION_INSTALL).to_json()
    plan["passthrough"][0]["address"] = "0000:01:00.0/../../x"
    write_plan(root, plan)
    assert main(["bind", "--root", root]) == 2
    assert capsys.readouterr().err == (
        f'installer-ext: {path}: passthrough[0].address: "0000:01:00.0/../../x" is not a PCI address (like 0000:65:00.0)\n'
    )
    assert main(["unbind", "--root", root, "--plan", os.path.join(root, "nope.json")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_cli_skip_arg_exit_0(tmp_path, capsys):
    root = str(tmp_path / "node")
    m = intel_workstation()
    m.cmdline += " installer_ext.skip=1"
    build(m, root)
    assert main(["bind", "--root", root, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["skipped"] is True
