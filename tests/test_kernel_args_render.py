"""`render` and the target's grubenv (issue #12 items 4-6, #15 item 12): only the
arguments installer-ext added are ever taken out, the other variables come back byte
for byte, and no previous plan.json is needed to know which arguments are ours."""

from __future__ import annotations

import os

import yaml

from installer_ext.grubline import EXTRA_VAR, RECORD_VAR, THIRD_PARTY_VAR
from installer_ext.render.grubenv import HEADER
from tests.cli import run
from tests.harvester_boot import editenv, editenv_pairs, grub_variables
from tests.planning import WORKSTATION_INSTALL
from tests.trees import snapshot

UNSAFE = "vfio_iommu_type1.allow_unsafe_interrupts=1"


def config(tmp_path, name: str = "c.yaml", **section) -> str:
    doc = {"install": WORKSTATION_INSTALL, "pciPassthrough": {"enabled": True, "devices": [{"address": "0000:03:00.0"}], **section}}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def target_with(tmp_path, *assignments: str) -> tuple[str, str]:
    target = tmp_path / "target"
    (target / "oem").mkdir(parents=True, exist_ok=True)
    env = str(target / "oem" / "grubenv")
    editenv(env, "create")
    if assignments:
        editenv(env, "set", *assignments)
    return str(target), env


def render(cfg: str, target: str, root: str):
    return run("render", "--config", cfg, "--root", root, "--target", target)


def test_the_users_arguments_survive_enabled_false(tmp_path, machine_root):
    """#12 item 4: render with [foo=bar] over `iommu=pt console=ttyS0 foo=bar`, then with
    enabled: false. Every one of those three is the user's."""
    root = machine_root("intel-workstation")
    target, env = target_with(tmp_path, "third_party_kernel_args=iommu=pt console=ttyS0 foo=bar")
    assert render(config(tmp_path, extraKernelArgs=["foo=bar"]), target, root).rc == 0
    assert grub_variables(env)[THIRD_PARTY_VAR] == "iommu=pt console=ttyS0 foo=bar"
    r = render(config(tmp_path, "off.yaml", enabled=False), target, root)
    assert r.rc == 0, r.err
    assert grub_variables(env) == {THIRD_PARTY_VAR: "iommu=pt console=ttyS0 foo=bar"}


def test_what_we_added_is_taken_out_and_nothing_else(tmp_path, machine_root):
    root = machine_root("intel-workstation-no-ir")  # where allowUnsafeInterrupts adds its argument
    target, env = target_with(tmp_path, "third_party_kernel_args=multipath=off", "extra_cmdline=console=ttyS0 x=1")
    assert render(config(tmp_path, extraKernelArgs=["x=1", "y=2"], allowUnsafeInterrupts=True), target, root).rc == 0
    assert grub_variables(env)[EXTRA_VAR] == f"console=ttyS0 x=1 {UNSAFE} y=2"
    assert grub_variables(env)[RECORD_VAR] == f"{UNSAFE} y=2"
    assert render(config(tmp_path, "off.yaml", enabled=False), target, root).rc == 0
    assert grub_variables(env) == {THIRD_PARTY_VAR: "multipath=off", EXTRA_VAR: "console=ttyS0 x=1"}


def test_other_variables_come_back_byte_for_byte(tmp_path, machine_root):
    """#12 item 5: `x=caf\\xe9` and two third_party_kernel_args lines (GRUB uses the last)."""
    lines = [b"x=caf\xe9\n", b"third_party_kernel_args=foo=bar\n", b"saved_entry=cos\n", b"third_party_kernel_args=console=ttyS0\n"]
    target = tmp_path / "target"
    (target / "oem").mkdir(parents=True)
    env = str(target / "oem" / "grubenv")
    body = b"".join(lines)
    with open(env, "wb") as f:
        f.write(HEADER + body + b"#" * (1024 - len(HEADER) - len(body)))
    r = render(config(tmp_path, extraKernelArgs=["foo=bar"]), str(target), machine_root("intel-workstation"))
    assert r.rc == 0, r.err
    with open(env, "rb") as f:
        data = f.read()
    assert data.startswith(HEADER + body) and len(data) == 1024
    pairs = editenv_pairs(env)
    assert pairs[:4] == [tuple(l[:-1].split(b"=", 1)) for l in lines]
    # foo=bar is only in the line GRUB does not read: it is added.
    assert dict(pairs)[EXTRA_VAR.encode()] == b"foo=bar"


def test_a_corrupt_previous_plan_leaves_no_stale_argument(tmp_path, machine_root):
    """#12 item 6: the grubenv records which arguments are ours."""
    root = machine_root("intel-workstation")
    target, env = target_with(tmp_path, "third_party_kernel_args=multipath=off")
    assert render(config(tmp_path, extraKernelArgs=["stale=1"]), target, root).rc == 0
    plan = os.path.join(target, "oem/installer-ext/plan.json")
    with open(plan, "w") as f:
        f.write("{ not json")
    assert render(config(tmp_path, "b.yaml", extraKernelArgs=["fresh=2"]), target, root).rc == 0
    assert grub_variables(env)[EXTRA_VAR] == "fresh=2"
    os.unlink(plan)
    assert render(config(tmp_path, "c.yaml", enabled=False), target, root).rc == 0
    assert EXTRA_VAR not in grub_variables(env) and RECORD_VAR not in grub_variables(env)


def test_a_corrupt_target_grubenv_is_exit_2_and_nothing_is_written(tmp_path, machine_root):
    """#15 item 12."""
    target = tmp_path / "target"
    (target / "oem").mkdir(parents=True)
    (target / "oem" / "grubenv").write_bytes(b"# GRUB Environment Block\nbroken")
    before = snapshot(str(target))
    r = render(config(tmp_path), str(target), machine_root("intel-workstation"))
    assert r.rc == 2, (r.out, r.err)
    assert r.err.count("\n") == 1 and f"{target}/oem/grubenv: corrupt GRUB environment block" in r.err
    assert snapshot(str(target)) == before


def test_a_target_without_grubenv_gets_one_grub_can_read(tmp_path, machine_root):
    target = tmp_path / "target"
    target.mkdir()
    r = render(config(tmp_path, allowUnsafeInterrupts=True), str(target), machine_root("intel-workstation-no-ir"))
    assert r.rc == 0, r.err
    env = str(target / "oem" / "grubenv")
    assert grub_variables(env) == {EXTRA_VAR: UNSAFE, RECORD_VAR: UNSAFE}
    assert os.path.getsize(env) == 1024
