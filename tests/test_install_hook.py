"""The install hook on fixtures that reproduce what the Harvester installer really hands
it (tests/harvester_installer.py, checked against the Go installer's own output). The
boot-time kernel-args keeper: tests/test_kernel_args_keeper.py.

What the hook gets (harvester-installer v1.8 pkg/console/util.go generateEnvAndConfig):
`$HARVESTER_CONFIG` is the installer's yaml.v3 marshal of its struct (no pciPassthrough,
lowercased keys); the user's original config is only at
`$HARVESTER_STREAMDISK_CLOUDINIT_URL` (and `harvester.install.config_url` on the kernel
line); `$HARVESTER_CONFIG_URL` is the generated cos config, not the original.
"""

from __future__ import annotations

import json
import os
import subprocess

import yaml

from installer_ext import paths
from installer_ext.render import manifest
from tests.cli import run
from tests.conftest import require_tool
from tests.harvester_installer import hook_env, load, marshal
from tests.httpserve import serve
from tests.planning import WORKSTATION_INSTALL
from tests.trees import snapshot

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "harvester-installer")
SECTION = {"enabled": True, "devices": [{"address": "0000:01:00.0"}, {"id": "8086:1533"}]}
ORIGINAL = {"schemeVersion": 1, "install": {**WORKSTATION_INSTALL, "automatic": True}, "os": {"additionalKernelArguments": "console=ttyS0"},
            "pciPassthrough": SECTION}
MACHINE = "intel-workstation-iommu-off"


def test_the_model_writes_what_the_go_installer_writes():
    """The fixture model against the real yaml.v3 marshal of the installer's struct."""
    with open(os.path.join(FIXTURES, "original-config.yaml")) as f:
        original = yaml.safe_load(f)
    with open(os.path.join(FIXTURES, "harvester-config.v1.8.yaml")) as f:
        real = f.read()
    assert marshal(load(original)) == real
    assert "pciPassthrough" in original and "pcipassthrough" not in real.lower()
    assert "    managementinterface:\n" in real and "hwaddr: aa:bb:cc:dd:ee:01" in real


def grub(target: str, *args: str) -> str:
    editenv = require_tool("grub-editenv")
    return subprocess.run([editenv, os.path.join(target, "oem", "grubenv"), *args], check=True, capture_output=True, text=True).stdout


def installed(tmp_path, original: dict, url: str | None, stream_url: bool = True):
    """A fresh target (harv-install's grubenv), the installer's copy of the config, and
    the hook's environment."""
    target = tmp_path / "target"
    (target / "oem").mkdir(parents=True)
    grub(str(target), "create")
    struct = load(original)
    (tmp_path / "harvester.XXXX").write_text(marshal(struct))
    env = hook_env(str(tmp_path / "harvester.XXXX"), url if (url and stream_url) else "", struct)
    return str(target), env


def hook(root: str, target: str, env: dict, *extra: str):
    return run("install-hook", "--root", root, "--target", target, *extra, env=env)


def plan_of(target: str) -> dict:
    with open(os.path.join(target, paths.PLAN_FILE)) as f:
        return json.load(f)


def record_of(target: str) -> dict:
    with open(os.path.join(target, paths.INSTALL_STATUS_FILE)) as f:
        return json.load(f)


def test_the_section_comes_from_the_original_behind_the_url(tmp_path, machine_root):
    root = machine_root(MACHINE)
    (tmp_path / "original.yaml").write_text(yaml.safe_dump(ORIGINAL))
    with serve({"/harvester/config.yaml": yaml.safe_dump(ORIGINAL).encode()}) as (base, requested):
        target, env = installed(tmp_path, ORIGINAL, base + "/harvester/config.yaml")
        r = hook(root, target, env)
        # Twice: nothing changes.
        before = snapshot(target)
        again = hook(root, target, env)
    assert again.rc == 0 and "wrote" not in again.out, again.out
    assert snapshot(target) == before
    assert r.rc == 0, r.err
    assert "choices from the config" in r.out and requested == ["/harvester/config.yaml"] * 2
    # The plan rendered from the pair equals `plan` on the original.
    p = run("plan", "--json", "--root", root, "--config", str(tmp_path / "original.yaml"))
    assert p.rc == 0, p.err
    assert plan_of(target) == json.loads(p.out)
    assert record_of(target)["outcome"] == "rendered" and record_of(target)["config"] == base + "/harvester/config.yaml"
    assert manifest.verify(paths.Target(root=target)).complete


def test_the_original_as_a_file_and_from_the_kernel_line(tmp_path, machine_root):
    root = machine_root(MACHINE)
    original = tmp_path / "original.yaml"
    original.write_text(yaml.safe_dump(ORIGINAL))
    # file:// in the environment
    target, env = installed(tmp_path, ORIGINAL, f"file://{original}")
    assert hook(root, target, env).rc == 0
    expected = plan_of(target)
    # a plain path on the kernel line, the environment's URL empty (as when the
    # installer had none): harvester.install.config_url under --root's proc/cmdline
    fake = tmp_path / "machine"
    fake.mkdir()
    os.symlink(os.path.join(root, "sys"), fake / "sys")
    (fake / "proc").mkdir()
    for n in os.listdir(os.path.join(root, "proc")):
        os.symlink(os.path.join(root, "proc", n), fake / "proc" / n) if n != "cmdline" else None
    (fake / "proc" / "cmdline").write_text(
        f"cdroot root=live:CDLABEL=COS_LIVE rd.live.dir=/ console=tty1 harvester.install.automatic=true harvester.install.config_url={original}\n")
    other = tmp_path / "other"
    other.mkdir()
    target2, env2 = installed(other, ORIGINAL, None)
    r = hook(str(fake), target2, env2)
    assert r.rc == 0, r.err
    assert plan_of(target2) == expected


def test_the_installers_copy_alone_asks_for_nothing(tmp_path, machine_root):
    """$HARVESTER_CONFIG never carries the section (the installer drops it): without the
    original, nothing is asked; $HARVESTER_CONFIG_URL (the cos config) is not read."""
    target, env = installed(tmp_path, ORIGINAL, None)
    (tmp_path / "cos.yaml").write_text(yaml.safe_dump({"pciPassthrough": SECTION}))
    env["HARVESTER_CONFIG_URL"] = str(tmp_path / "cos.yaml")
    r = hook(machine_root(MACHINE), target, env)
    assert r.rc == 0 and "nothing to do" in r.out
    assert record_of(target)["outcome"] == "nothing-asked"
    assert not os.path.exists(os.path.join(target, paths.PLAN_FILE))
    assert not os.path.exists(os.path.join(target, paths.APP_FILE))


def test_install_keys_come_from_the_installers_copy(tmp_path, machine_root):
    """The original names no management NIC; the installer's copy (what was really
    installed, in its own spelling) does: its NIC is protected, so asking for it is
    refused, with the record on the target and nothing else of the plan."""
    section = {"enabled": True, "devices": [{"address": "0000:00:1f.6"}]}
    original = {"install": {"device": "/dev/sda"}, "pciPassthrough": section}
    (tmp_path / "original.yaml").write_text(yaml.safe_dump(original))
    target, env = installed(tmp_path, {"install": WORKSTATION_INSTALL}, f"file://{tmp_path}/original.yaml")
    r = hook(machine_root(MACHINE), target, env)
    assert r.rc == 3 and "management network eno1" in r.err, r.err
    rec = record_of(target)
    assert rec["outcome"] == "refused" and not rec["ok"] and any("eno1" in line for line in rec["reason"])
    assert not os.path.exists(os.path.join(target, paths.PLAN_FILE))
    check = manifest.verify(paths.Target(root=target))
    assert check.complete and not check.names_plan
    text = open(os.path.join(target, paths.INSTALL_STATUS_TEXT)).read()
    assert "NOT set up" in text and "eno1" in text
    # the report unit and the login-shell line are in the yip file
    with open(os.path.join(target, paths.YIP_FILE)) as f:
        stage = yaml.safe_load(f)["stages"]["initramfs"]
    written = {f["path"] for step in stage for f in step["files"]}
    assert written == {"/etc/systemd/system/installer-ext-report.service", "/etc/profile.d/installer-ext.sh"}


def test_a_config_that_cannot_be_fetched_fails_in_one_line_and_is_recorded(tmp_path, machine_root):
    with serve({}) as (base, requested):
        url = base.replace("http://", "http://user:secret@") + "/missing.yaml"
        target, env = installed(tmp_path, ORIGINAL, url)
        r = hook(machine_root(MACHINE), target, env)
    assert r.rc == 1, r.err
    [line] = r.err.strip().splitlines()
    assert "HTTP 404" in line and "/missing.yaml" in line and requested == ["/missing.yaml"]
    rec = record_of(target)
    assert rec["outcome"] == "failed" and "HTTP 404" in rec["reason"][0]
    assert "secret" not in json.dumps(rec) and "secret" not in open(os.path.join(target, paths.INSTALL_STATUS_TEXT)).read()


def test_an_invalid_section_is_recorded_as_failed(tmp_path, machine_root):
    bad = {**ORIGINAL, "pciPassthrough": {"enabled": True, "devices": [{"address": "0000:zz:00.0"}]}}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    target, env = installed(tmp_path, bad, str(tmp_path / "bad.yaml"))
    r = hook(machine_root(MACHINE), target, env)
    assert r.rc == 2 and "pciPassthrough.devices[0].address" in r.err
    assert record_of(target)["outcome"] == "failed"


def test_screen_choices_are_planned_with_the_installers_install_keys(tmp_path, machine_root):
    target, env = installed(tmp_path, {"install": WORKSTATION_INSTALL, "os": {"additionalKernelArguments": "console=ttyS0"}}, None)
    grub(target, "set", "third_party_kernel_args=multipath=off", "saved_entry=cos")
    (tmp_path / "choices.yaml").write_text(yaml.safe_dump({"pciPassthrough": {"enabled": True, "devices": [{"address": "0000:01:00.0"}]}}))
    r = hook(machine_root(MACHINE), target, env, "--choices", str(tmp_path / "choices.yaml"))
    assert r.rc == 0, r.err
    assert "choices from the screen" in r.out
    assert [p["address"] for p in plan_of(target)["passthrough"]] == ["0000:01:00.0", "0000:01:00.1"]
    env_list = grub(target, "list")
    # Harvester's bootargs.cfg sets intel_iommu=on iommu=pt: nothing is added (tests/test_kernel_args_keeper.py).
    assert "third_party_kernel_args=multipath=off\n" in env_list and "extra_cmdline" not in env_list
    assert "saved_entry=cos" in env_list
    saved = yaml.safe_load(open(os.path.join(target, paths.MERGED_CONFIG_FILE)))
    assert saved["install"]["managementinterface"]["interfaces"][0]["name"] == "eno1"
    assert os.stat(os.path.join(target, paths.MERGED_CONFIG_FILE)).st_mode & 0o777 == 0o600


def fake_runtime(tmp_path) -> str:
    """A stand-in for a relocatable CPython: bin/python3 runs this machine's python3."""
    rt = tmp_path / "runtime"
    (rt / "bin").mkdir(parents=True)
    (rt / "bin" / "python3").write_text('#!/bin/sh\necho "$0" >> "${0%/*}/../used"\nexec /usr/bin/python3 "$@"\n')
    (rt / "bin" / "python3").chmod(0o755)
    (rt / "lib").mkdir()
    (rt / "lib" / "marker").write_text("stand-in runtime\n")
    return str(rt)


def test_partitions_mounted_on_their_own_get_app_launcher_and_runtime(tmp_path, machine_root):
    """elemental's after-install: COS_OEM at /run/cos/oem, COS_PERSISTENT at
    /run/cos/persistent (elemental-toolkit v1.1.x pkg/constants/constants.go)."""
    oem, persistent = tmp_path / "run-cos-oem", tmp_path / "run-cos-persistent"
    oem.mkdir()
    persistent.mkdir()
    (tmp_path / "original.yaml").write_text(yaml.safe_dump(ORIGINAL))
    _, env = installed(tmp_path, ORIGINAL, str(tmp_path / "original.yaml"))
    app = tmp_path / "installer-ext.pyz"
    from installer_ext.render.app import package_files, zip_bytes

    app.write_bytes(zip_bytes(package_files()))
    runtime = fake_runtime(tmp_path)
    r = run("install-hook", "--root", machine_root(MACHINE), "--oem", str(oem), "--persistent", str(persistent),
            "--app", str(app), "--runtime", runtime, env=env)
    assert r.rc == 0, r.err
    assert (persistent / "lib/installer-ext/installer-ext.pyz").read_bytes() == app.read_bytes()
    assert os.access(persistent / "lib/installer-ext/bin/installer-ext", os.X_OK)
    assert (persistent / "lib/installer-ext/python/lib/marker").read_text() == "stand-in runtime\n"
    assert (oem / "installer-ext/plan.json").is_file() and (oem / "91_installer_ext.yaml").is_file()
    assert manifest.verify(paths.Target(oem=str(oem), persistent=str(persistent))).complete
    # The launcher as laid down runs the app with the bundled runtime.
    launcher = persistent / "lib/installer-ext/bin/installer-ext"
    v = subprocess.run([str(launcher), "--version"], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert v.returncode == 0 and v.stdout.startswith("installer-ext "), v.stderr
    assert (persistent / "lib/installer-ext/python/used").read_text().count("python3") >= 2  # the check, then the run


def test_every_program_the_node_runs_exists_after_the_hook(tmp_path, machine_root):
    (tmp_path / "original.yaml").write_text(yaml.safe_dump(ORIGINAL))
    target, env = installed(tmp_path, ORIGINAL, str(tmp_path / "original.yaml"))
    assert hook(machine_root(MACHINE), target, env).rc == 0
    with open(os.path.join(target, paths.YIP_FILE)) as f:
        doc = yaml.safe_load(f)
    programs = {c.split()[0] for step in doc["stages"]["boot"] for c in step["commands"]}
    for step in doc["stages"]["initramfs"]:
        for f in step["files"]:
            programs |= {line.split("=", 1)[1].split()[0] for line in f["content"].splitlines() if line.startswith("ExecStart=")}
            assert "RUN" not in f["content"], "a udev rule that runs a program"
    assert programs == {"/usr/local/lib/installer-ext/bin/installer-ext", "/usr/bin/cat"}
    assert os.access(os.path.join(target, "usr/local/lib/installer-ext/bin/installer-ext"), os.X_OK)
    assert os.path.isfile(os.path.join(target, paths.APP_FILE))

