"""`installer-ext kernel-args`, the every-boot keeper, on Harvester's real boot sequence
reproduced (tests/harvester_boot.py): render on the ISO, harv-install's grubenv edit
after the hooks, then the node's boots, each /proc/cmdline built from the grubenv,
bootargs.cfg and grub.cfg the way GRUB builds it. The keeper's status file is the
contract `installer-ext status` shows."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from installer_ext.grubline import EXTRA_VAR, RECORD_VAR, THIRD_PARTY_VAR
from tests.cli import run
from tests.harvester_boot import (
    BOOTARGS_V13,
    BOOTARGS_V14,
    OLD_COS_GRUB_CFG,
    boot_cmdline,
    editenv,
    grub_variables,
    harv_install,
    node_root,
    reboot,
)
from tests.planning import WORKSTATION_INSTALL
from tests.trees import snapshot

UNSAFE = "vfio_iommu_type1.allow_unsafe_interrupts=1"
KEYS = ["wanted", "harvester_sets", "ours", "on_cmdline", "missing", "state", "reason"]


class Node:
    """An installed node: its OEM partition (target/oem) and the root the keeper reads
    (proc/cmdline, etc/cos/bootargs.cfg, the state partition's grub.cfg, run/)."""

    def __init__(self, tmp_path, bootargs: str = BOOTARGS_V14, grub_cfg: str | None = None) -> None:
        self.target = str(tmp_path / "target")
        os.makedirs(os.path.join(self.target, "oem"))
        self.root = str(tmp_path / "node")
        self.bootargs = bootargs
        self.grub_cfg = grub_cfg
        self.grubenv = os.path.join(self.target, "oem", "grubenv")
        self.plan = os.path.join(self.target, "oem", "installer-ext", "plan.json")
        self.tmp = tmp_path

    def install(self, machine_root, additional: str | None = "multipath=off", **section) -> None:
        doc = {"install": WORKSTATION_INSTALL, "pciPassthrough": {"enabled": True, "devices": [{"address": "0000:03:00.0"}], **section}}
        cfg = self.tmp / "config.yaml"
        cfg.write_text(yaml.safe_dump(doc))
        # allowUnsafeInterrupts adds its argument only where interrupt remapping is off
        machine = "intel-workstation-no-ir" if section.get("allowUnsafeInterrupts") else "intel-workstation"
        r = run("render", "--config", str(cfg), "--root", machine_root(machine), "--target", self.target)
        assert r.rc == 0, r.err
        harv_install(os.path.join(self.target, "oem"), additional)

    def boot(self, image: str = "/cOS/active.img") -> str:
        """GRUB builds the line from the grubenv as it is now; /run starts empty."""
        kwargs = {} if self.grub_cfg is None else {"grub_cfg": self.grub_cfg}
        cmdline = boot_cmdline(self.grubenv, self.bootargs, image=image, **kwargs)
        node_root(self.root, cmdline, self.bootargs, **({} if self.grub_cfg is None else {"grub_cfg": self.grub_cfg}))
        reboot(self.root)
        return cmdline

    def keeper(self, plan: str | None = None):
        return run("kernel-args", "--plan", plan or self.plan, "--grubenv", self.grubenv, "--root", self.root)

    def status(self) -> dict:
        with open(os.path.join(self.root, "run/installer-ext/kernel-args.json")) as f:
            data = json.load(f)
        assert list(data) == KEYS
        return data


def test_first_boot_has_every_argument_of_the_plan(tmp_path, machine_root):
    """#10 part 5: harv-install rewrites third_party_kernel_args after the hooks; the
    first boot has the plan's arguments anyway, and the keeper says so."""
    node = Node(tmp_path)
    node.install(machine_root, allowUnsafeInterrupts=True, extraKernelArgs=["video=efifb:off"])
    assert grub_variables(node.grubenv)[THIRD_PARTY_VAR] == "multipath=off"
    cmdline = node.boot()
    for arg in ("intel_iommu=on", "iommu=pt", UNSAFE, "video=efifb:off", "multipath=off"):
        assert f" {arg}" in cmdline, (arg, cmdline)
    r = node.keeper()
    assert r.rc == 0, r.err
    assert "all 4 of the plan are on the kernel line" in r.out
    assert node.status() == {
        "wanted": ["intel_iommu=on", "iommu=pt", UNSAFE, "video=efifb:off"],
        "harvester_sets": ["intel_iommu=on", "iommu=pt"],
        "ours": [UNSAFE, "video=efifb:off"],
        "on_cmdline": ["intel_iommu=on", "iommu=pt", UNSAFE, "video=efifb:off"],
        "missing": [],
        "state": "ok",
        "reason": "",
    }


def test_harvester_1_3_takes_them_too(tmp_path, machine_root):
    """v1.3's bootargs.cfg has no $third_party_kernel_args; grub.cfg's ${extra_cmdline} works."""
    node = Node(tmp_path, bootargs=BOOTARGS_V13)
    node.install(machine_root, additional=None, allowUnsafeInterrupts=True)
    cmdline = node.boot()
    assert f" {UNSAFE}" in cmdline and " intel_iommu=on" in cmdline
    assert node.keeper().rc == 0
    assert node.status()["state"] == "ok" and node.status()["ours"] == [UNSAFE]


def test_the_users_additional_arguments_are_not_added_twice(tmp_path, machine_root):
    """os.additionalKernelArguments replaces multipath=off (util.go sets the variable
    twice); an extra the user also has there is Harvester's to set."""
    node = Node(tmp_path)
    node.install(machine_root, additional="console=ttyS0 foo=bar", extraKernelArgs=["foo=bar"])
    # At render time third_party_kernel_args did not exist yet: foo=bar was added.
    assert grub_variables(node.grubenv)[EXTRA_VAR] == "foo=bar"
    node.boot()
    r = node.keeper()
    assert r.rc == 0 and "updated" in r.out
    st = node.status()
    assert st["state"] == "ok" and st["harvester_sets"] == ["intel_iommu=on", "iommu=pt", "foo=bar"] and st["ours"] == []
    assert grub_variables(node.grubenv) == {THIRD_PARTY_VAR: "console=ttyS0 foo=bar"}


def test_a_removed_argument_is_put_back_and_the_reboot_is_pending(tmp_path, machine_root):
    node = Node(tmp_path)
    node.install(machine_root, allowUnsafeInterrupts=True)
    node.boot()
    assert node.keeper().rc == 0 and node.status()["state"] == "ok"
    editenv(node.grubenv, "unset", EXTRA_VAR)  # somebody took it off
    node.boot()
    r = node.keeper()
    assert r.rc == 0 and "reboot pending" in r.out
    st = node.status()
    assert st["state"] == "reboot-pending" and st["missing"] == [UNSAFE] and st["ours"] == [UNSAFE]
    assert "during this boot; they apply from the next boot" in st["reason"]
    # A second run in the same boot changes nothing and still says so.
    before = snapshot(node.target)
    assert node.keeper().rc == 0 and node.status()["state"] == "reboot-pending"
    assert snapshot(node.target) == before
    node.boot()
    assert node.keeper().rc == 0 and node.status()["state"] == "ok"


def test_a_grub_that_does_not_read_extra_cmdline_is_unsupported(tmp_path, machine_root):
    node = Node(tmp_path, grub_cfg=OLD_COS_GRUB_CFG)
    node.install(machine_root, allowUnsafeInterrupts=True)
    assert UNSAFE not in node.boot()
    r = node.keeper()
    assert r.rc == 0 and "kernel arguments unsupported" in r.err
    st = node.status()
    assert st["state"] == "unsupported" and st["missing"] == [UNSAFE]
    assert "grub2/grub.cfg does not append ${extra_cmdline}" in st["reason"]


def test_missing_with_no_grub_cfg_to_read_is_unknown(tmp_path, machine_root):
    node = Node(tmp_path, grub_cfg=OLD_COS_GRUB_CFG)
    node.install(machine_root, allowUnsafeInterrupts=True)
    node.boot()
    os.unlink(os.path.join(node.root, "run/initramfs/cos-state/grub2/grub.cfg"))
    assert node.keeper().rc == 0
    st = node.status()
    assert st["state"] == "unknown" and "held them before this boot" in st["reason"]


def test_a_recovery_boot_says_so(tmp_path, machine_root):
    node = Node(tmp_path)
    node.install(machine_root)
    node.boot(image="/cOS/recovery.img")
    assert node.keeper().rc == 0
    st = node.status()
    assert st["state"] == "unknown" and st["missing"] == ["intel_iommu=on", "iommu=pt"] and "recovery boot" in st["reason"]


def test_a_plan_without_arguments_takes_ours_out_and_keeps_the_users(tmp_path, machine_root):
    node = Node(tmp_path)
    node.install(machine_root, allowUnsafeInterrupts=True)
    editenv(node.grubenv, "set", f"{EXTRA_VAR}=console=ttyS0 {UNSAFE}")  # the user's first
    node.boot()
    with open(node.plan) as f:
        plan = json.load(f)
    plan["kernel_args"] = []
    off = str(tmp_path / "off.json")
    with open(off, "w") as f:
        json.dump(plan, f)
    assert node.keeper(off).rc == 0
    assert grub_variables(node.grubenv) == {THIRD_PARTY_VAR: "multipath=off", EXTRA_VAR: "console=ttyS0"}
    assert node.status()["state"] == "ok" and node.status()["ours"] == []


def test_dash_spellings_on_the_line_count(tmp_path, machine_root):
    node = Node(tmp_path)
    node.install(machine_root)
    node_root(node.root, "BOOT_IMAGE=x intel-iommu=on iommu=pt\n")
    assert node.keeper().rc == 0 and node.status()["state"] == "ok"


@pytest.mark.parametrize(
    "token",
    ["intel_iommu=off", "iommu=off", "amd_iommu=off", "installer_ext.skip=1", "vfio-pci.ids=", "modprobe.blacklist=vfio_pci", "pcie-acs-override=downstream"],
)
def test_a_hand_edited_plan_is_refused_and_nothing_written(tmp_path, machine_root, token):
    """#12 item 3: the keeper applies the planner's argument policy to the plan it reads."""
    node = Node(tmp_path)
    node.install(machine_root)
    node.boot()
    with open(node.plan) as f:
        plan = json.load(f)
    plan["kernel_args"].append(token)
    with open(node.plan, "w") as f:
        json.dump(plan, f)
    before = snapshot(node.target)
    r = node.keeper()
    assert r.rc == 3, (r.out, r.err)
    assert f'{node.plan}: kernel_args: "{token}"' in r.err and f"{node.grubenv}: nothing written" in r.err
    assert snapshot(node.target) == before
    st = node.status()
    assert st["state"] == "unknown" and st["reason"].startswith("refused by the safety policy")


def test_the_grubenv_directory_must_exist(tmp_path, machine_root):
    """#15 item 12: a missing directory is an error naming it, never created."""
    node = Node(tmp_path)
    node.install(machine_root)
    node.boot()
    missing = str(tmp_path / "nowhere" / "oem" / "grubenv")
    r = run("kernel-args", "--plan", node.plan, "--grubenv", missing, "--root", node.root)
    assert r.rc == 2 and r.err == f"installer-ext: {missing}: no such directory {os.path.dirname(missing)}\n"
    assert not os.path.exists(tmp_path / "nowhere")


def test_a_corrupt_grubenv_is_exit_2(tmp_path, machine_root):
    node = Node(tmp_path)
    node.install(machine_root)
    node.boot()
    with open(node.grubenv, "wb") as f:
        f.write(b"# GRUB Environment Block\nbroken")
    r = node.keeper()
    assert r.rc == 2 and r.err.count("\n") == 1 and "corrupt GRUB environment block" in r.err


def test_a_plan_that_is_not_json_is_exit_2(tmp_path, machine_root):
    node = Node(tmp_path)
    node.install(machine_root)
    node.boot()
    r = node.keeper(str(tmp_path / "config.yaml"))
    assert r.rc == 2 and "not valid JSON" in r.err


def test_the_record_survives_harvesters_upgrade_grep(tmp_path, machine_root):
    """Harvester's upgrade (package/upgrade/upgrade_node.sh) reads the variable with
    `grub2-editenv list | grep third_party_kernel_args`: our lines must not match."""
    node = Node(tmp_path)
    node.install(machine_root, allowUnsafeInterrupts=True)
    listed = editenv(node.grubenv, "list").decode().splitlines()
    assert [l for l in listed if "third_party_kernel_args" in l] == ["third_party_kernel_args=multipath=off"]
    assert f"{RECORD_VAR}={UNSAFE}" in listed
