"""The kernel-argument policy through the planner: a refused extra argument refuses the
plan (exit 3, a host-wide refusal with code kernel-arg), the config keeps only the token
syntax, and the plan says which arguments Harvester sets and which installer-ext adds."""

from __future__ import annotations

import json

import pytest
import yaml

from installer_ext.config.load import parse_config
from installer_ext.config.model import Choices, InstallInfo
from installer_ext.host.facts import gather
from installer_ext.kernel_cmdline import UNSAFE_INTERRUPTS_ARG
from installer_ext.plan.planner import make_plan
from tests.cli import run
from tests.planning import WORKSTATION_INSTALL, plan_for
from tests.trees import snapshot

# Issue #12 items 1 and 2, word for word, and the spellings the kernel reads the same.
DEFEATING = [
    "pcie-acs-override=downstream",
    "pcie_acs_override=downstream,multifunction",
    "intel_iommu=off",
    "intel-iommu=on,off",
    "iommu=off",
    "amd_iommu=off",
    "installer_ext.skip=1",
    "installer-ext.skip=1",
    "vfio-pci.ids=",
    "vfio_pci.ids=10de:2206",
    "modprobe.blacklist=vfio_pci",
    "modprobe.blacklist=nouveau,vfio-pci",
    "vfio_iommu_type1.allow_unsafe_interrupts=1",
]


def write_config(tmp_path, extra, **section) -> str:
    doc = {
        "install": WORKSTATION_INSTALL,
        "pciPassthrough": {"enabled": True, "devices": [{"address": "0000:03:00.0"}], "extraKernelArgs": extra, **section},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.mark.parametrize("token", DEFEATING)
def test_the_planner_refuses_the_plan_exit_3(tmp_path, machine_root, token):
    r = run("plan", "--config", write_config(tmp_path, ["video=efifb:off", token]), "--root", machine_root("intel-workstation"))
    assert r.rc == 3, (r.out, r.err)
    assert f'refused: host: pciPassthrough.extraKernelArgs: "{token}"' in r.err
    assert "Traceback" not in r.err


@pytest.mark.parametrize("token", DEFEATING)
def test_the_config_checks_only_the_token_syntax(token):
    config = parse_config({"pciPassthrough": {"extraKernelArgs": [token]}})
    assert config.choices.extra_kernel_args == (token,)


def test_a_refusal_is_host_wide_with_a_code_and_the_argument_is_never_in_the_plan(machine_root):
    plan = plan_for(machine_root("intel-workstation"), {"enabled": True, "extraKernelArgs": ["pcie-acs-override=downstream", "quiet"]}, WORKSTATION_INSTALL)
    fatal = [r for r in plan.refused if r.fatal]
    assert [(r.address, r.code) for r in fatal] == [(None, "kernel-arg")]
    assert "fakes IOMMU isolation" in fatal[0].reason and "pcie_acs_override" in fatal[0].reason
    assert "pcie-acs-override=downstream" not in plan.kernel_args and "quiet" in plan.kernel_args


def test_refused_even_with_passthrough_off(machine_root):
    plan = plan_for(machine_root("intel-workstation"), {"enabled": False, "extraKernelArgs": ["iommu=off"]}, WORKSTATION_INSTALL)
    assert [r.code for r in plan.fatal_refusals] == ["kernel-arg"]


def test_render_of_a_refused_argument_writes_nothing(tmp_path, machine_root):
    target = tmp_path / "target"
    (target / "oem").mkdir(parents=True)
    r = run("render", "--config", write_config(tmp_path, ["intel_iommu=off"]), "--root", machine_root("intel-workstation"), "--target", str(target))
    assert r.rc == 3 and "nothing written" in r.err and "turns the Intel IOMMU off" in r.err
    assert snapshot(str(target)) == {}


def test_the_unsafe_interrupts_switch_is_the_planners(machine_root):
    plan = plan_for(machine_root("intel-workstation-no-ir"), {"enabled": True, "allowUnsafeInterrupts": True}, WORKSTATION_INSTALL)
    assert UNSAFE_INTERRUPTS_ARG in plan.kernel_args and not plan.fatal_refusals


def test_the_plan_says_what_harvester_sets_and_what_is_added(tmp_path, machine_root):
    no_remapping = machine_root("intel-workstation-no-ir")  # where allowUnsafeInterrupts adds its argument
    r = run(
        "plan", "--json", "--config", write_config(tmp_path, ["video=efifb:off"], allowUnsafeInterrupts=True),
        "--root", no_remapping,
    )
    assert r.rc == 0, r.err
    plan = json.loads(r.out)
    # Intel: Harvester's bootargs.cfg has intel_iommu=on amd_iommu=on iommu=pt already.
    assert plan["kernel_args"] == ["intel_iommu=on", "iommu=pt", UNSAFE_INTERRUPTS_ARG, "video=efifb:off"]
    assert plan["harvester_kernel_args"] == ["intel_iommu=on", "iommu=pt"]
    assert plan["added_kernel_args"] == [UNSAFE_INTERRUPTS_ARG, "video=efifb:off"]
    text = run("plan", "--config", write_config(tmp_path, ["video=efifb:off"], allowUnsafeInterrupts=True), "--root", no_remapping).out
    assert "  already set by Harvester (bootargs.cfg): intel_iommu=on iommu=pt" in text.splitlines()
    assert f"  added by installer-ext (/oem/grubenv extra_cmdline): {UNSAFE_INTERRUPTS_ARG} video=efifb:off" in text.splitlines()


def test_amd_plans_add_nothing_harvester_has(machine_root):
    facts = gather(machine_root("amd-epyc-server"))
    plan = make_plan(facts, Choices(enabled=True), InstallInfo())
    assert plan.kernel_args == ["iommu=pt"] == plan.harvester_kernel_args and plan.added_kernel_args == []


def test_the_preview_says_it_too(machine_root):
    from installer_ext.tui.preview import preview_lines
    from installer_ext.tui.session import Session

    s = Session(gather(machine_root("intel-workstation-no-ir")), InstallInfo(), Choices(enabled=True, allow_unsafe_interrupts=True))
    lines = [t for _, t in preview_lines(s, None)]
    assert "  already set by Harvester: intel_iommu=on iommu=pt" in lines
    assert f"  added by installer-ext: {UNSAFE_INTERRUPTS_ARG}" in lines
