"""iso-overlay: the reproducible archive, the overlay tree, the ISO edits, the hook, and a
whole simulated install (config -> hook -> target -> bind on the same machine)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
import yaml

from installer_ext.boot.binder import bind
from installer_ext.boot.options import Options
from tests.cli import REPO
from tests.conftest import require_tool
from tests.fakekernel import FakeKernel
from tests.planning import WORKSTATION_INSTALL

BUILD = os.path.join(REPO, "iso-overlay", "build.py")


def plain_python() -> str:
    """A system interpreter with none of the project's packages (Debian's python3)."""
    for candidate in ("/usr/bin/python3.11", "/usr/bin/python3"):
        if os.path.exists(candidate):
            out = subprocess.run([candidate, "-I", "-c", "import sys; print(sys.version_info >= (3, 11))"], capture_output=True, text=True)
            if out.stdout.strip() == "True":
                return candidate
    pytest.skip("no system Python 3.11+ outside the venv")


def digest_tree(root: str) -> dict[str, str]:
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest() + oct(os.stat(path).st_mode & 0o777)
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("iso-out"))
    p = subprocess.run([sys.executable, BUILD, "--out", out], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert p.returncode == 0, p.stderr
    return out


def run_app(pyz: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    full.update(env or {})
    return subprocess.run([plain_python(), "-I", pyz, *args], capture_output=True, text=True, cwd=REPO, env=full, timeout=120)


def test_the_build_is_reproducible(built, tmp_path):
    p = subprocess.run([sys.executable, BUILD, "--out", str(tmp_path / "again")], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert p.returncode == 0, p.stderr
    assert digest_tree(str(tmp_path / "again")) == digest_tree(built)
    with open(os.path.join(built, "SHA256SUMS")) as f:
        sums = dict(line.strip().split("  ")[::-1] for line in f)
    assert set(sums) == {"installer-ext.pyz", *(f"rootfs/{p}" for p in digest_tree(os.path.join(built, "rootfs")))}


def test_the_archive_is_pure_python_with_fixed_timestamps(built):
    with zipfile.ZipFile(os.path.join(built, "installer-ext.pyz")) as z:
        names = z.namelist()
        assert names == sorted(names)
        assert not [n for n in names if n.endswith((".so", ".pyd", ".pyc"))]
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        for needed in ("__main__.py", "installer_ext/cli.py", "installer_ext/config/schema.json",
                       "installer_ext/templates/node/yip.yaml.j2", "installer_ext/templates/firstboot/nvidia-device-plugin.yaml",
                       "urwid/__init__.py", "yaml/__init__.py", "jinja2/__init__.py", "markupsafe/__init__.py",
                       "jsonschema/__init__.py", "pyrsistent/__init__.py", "pyudev/__init__.py"):
            assert needed in names, needed


def test_the_archive_runs_with_a_plain_interpreter(built, tmp_path):
    pyz = os.path.join(built, "installer-ext.pyz")
    assert run_app(pyz, "--help").returncode == 0
    r = run_app(pyz, "detect", "--root", "examples/workstation", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["iommu"]["state"] == "available"
    r = run_app(pyz, "plan", "--root", "examples/workstation", "--config", "examples/workstation.yaml", "--json")
    assert r.returncode == 0, r.stderr
    target = tmp_path / "target"
    (target / "oem").mkdir(parents=True)
    r = run_app(pyz, "render", "--root", "examples/workstation", "--config", "examples/workstation.yaml", "--target", str(target))
    assert r.returncode == 0, r.stderr
    # The units the archive renders for the node pass systemd's own check.
    with open(target / "oem" / "91_installer_ext.yaml") as f:
        stage = yaml.safe_load(f)["stages"]["initramfs"]
    units = tmp_path / "units"
    units.mkdir()
    for step in stage:
        for file in step["files"]:
            if file["path"].startswith("/etc/systemd/system/"):
                (units / os.path.basename(file["path"]).replace("@.service", "@check.service")).write_text(file["content"])
    analyze = require_tool("systemd-analyze")
    names = sorted(str(u) for u in units.iterdir())
    assert len(names) == 3
    check = subprocess.run([analyze, "verify", *names], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    for command in ("tui", "bind", "unbind", "firstboot", "install-hook", "kernel-args"):
        r = run_app(pyz, command, "--help")
        assert r.returncode == 0 and f"installer-ext {command}" in r.stdout, (command, r.stderr)
    r = run_app(pyz, "plan", "--root", "examples/workstation", "--config", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_overlay_tree(built):
    rootfs = os.path.join(built, "rootfs")
    assert digest_tree(rootfs).keys() == {
        "usr/bin/installer-ext",
        "usr/lib/installer-ext/installer-ext.pyz",
        "usr/lib/installer-ext/installer-step.sh",
        "usr/lib/installer-ext/install-hook.sh",
        "system/oem/92_installer_ext.yaml",
    }
    for script in ("usr/bin/installer-ext", "usr/lib/installer-ext/installer-step.sh", "usr/lib/installer-ext/install-hook.sh"):
        path = os.path.join(rootfs, script)
        assert os.access(path, os.X_OK)
        assert subprocess.run(["sh", "-n", path]).returncode == 0
    with open(os.path.join(rootfs, "system/oem/92_installer_ext.yaml")) as f:
        doc = yaml.safe_load(f)
    [step] = doc["stages"]["after-install"]
    assert list(doc["stages"]) == ["after-install"]
    assert step["commands"] == ["/usr/lib/installer-ext/install-hook.sh"]


def test_the_wrapper_runs_the_archive(built):
    rootfs = os.path.join(built, "rootfs")
    env = {**os.environ, "INSTALLER_EXT_APP": os.path.join(rootfs, "usr/lib/installer-ext/installer-ext.pyz"),
           "PATH": os.path.dirname(plain_python()) + ":/usr/bin:/bin"}
    p = subprocess.run([os.path.join(rootfs, "usr/bin/installer-ext"), "--version"], capture_output=True, text=True, env=env)
    assert p.returncode == 0 and p.stdout.startswith("installer-ext ")


def fake_bin(tmp_path, rc: int = 0) -> str:
    path = tmp_path / "fake-installer-ext"
    path.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\nexit {rc}\n')
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize("cmdline, runs", [("quiet harvester.install.automatic=true x", False), ("quiet console=tty1", True)])
def test_the_interactive_step(built, tmp_path, cmdline, runs):
    (tmp_path / "cmdline").write_text(cmdline + "\n")
    env = {**os.environ, "INSTALLER_EXT_CMDLINE": str(tmp_path / "cmdline"), "INSTALLER_EXT_RUN": str(tmp_path / "run"),
           "INSTALLER_EXT_BIN": fake_bin(tmp_path)}
    step = os.path.join(built, "rootfs/usr/lib/installer-ext/installer-step.sh")
    p = subprocess.run([step], capture_output=True, text=True, env=env)
    assert p.returncode == 0
    if not runs:
        assert not (tmp_path / "args").exists()
        return
    assert (tmp_path / "args").read_text().split() == ["tui", "--root", "/", "--output", f"{tmp_path}/run/choices.yaml"]
    # A restarted installer starts from the earlier choices.
    (tmp_path / "run" / "choices.yaml").write_text("pciPassthrough: {enabled: true}\n")
    subprocess.run([step], env=env, check=True)
    assert (tmp_path / "args").read_text().split()[-2:] == ["--config", f"{tmp_path}/run/choices.yaml"]
    # A failing screen never stops the install.
    env["INSTALLER_EXT_BIN"] = fake_bin(tmp_path, rc=7)
    p = subprocess.run([step], capture_output=True, text=True, env=env)
    assert p.returncode == 0 and "goes on without it" in p.stderr


START_INSTALLER = """#!/bin/bash
export TERM=linux
setterm --msg off
harvester-installer
exec /bin/login -p -f root
"""


def test_apply_to_an_unpacked_iso(built, tmp_path):
    rootfs, iso = tmp_path / "rootfs", tmp_path / "iso"
    (rootfs / "usr/bin").mkdir(parents=True)
    (rootfs / "usr/bin/start-installer.sh").write_text(START_INSTALLER)
    (iso / "boot/grub2").mkdir(parents=True)
    (iso / "boot/grub2/harvester.cfg").write_text('set extra_iso_cmdline="rd.cos.disable"\n')
    for _ in range(2):  # idempotent
        p = subprocess.run([sys.executable, BUILD, "--out", built, "--rootfs", str(rootfs), "--iso", str(iso)], capture_output=True, text=True, cwd=REPO)
        assert p.returncode == 0, p.stderr
    lines = (rootfs / "usr/bin/start-installer.sh").read_text().splitlines()
    step = lines.index("/usr/lib/installer-ext/installer-step.sh")
    assert lines[step + 1] == "harvester-installer" and lines.count("/usr/lib/installer-ext/installer-step.sh") == 1
    cfg = (iso / "boot/grub2/harvester.cfg").read_text()
    assert cfg.count('set extra_iso_cmdline="${extra_iso_cmdline} intel_iommu=on iommu=pt"') == 1
    assert (rootfs / "usr/lib/installer-ext/installer-ext.pyz").exists()
    (rootfs / "usr/bin/start-installer.sh").write_text("#!/bin/sh\necho nothing to hook\n")
    p = subprocess.run([sys.executable, BUILD, "--out", built, "--rootfs", str(rootfs)], capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 1 and "no line that runs harvester-installer" in p.stderr


def test_a_whole_simulated_install(built, tmp_path, machine_root):
    """Unattended config -> the ISO's after-install hook (through the overlay's scripts
    and the archive) -> the installed target -> bind on that machine's next boot."""
    rootfs = os.path.join(built, "rootfs")
    config = {
        "install": WORKSTATION_INSTALL,
        "pciPassthrough": {"enabled": True, "devices": [{"address": "0000:01:00.0"}, {"id": "8086:1533"}]},
    }
    (tmp_path / "harvester.config").write_text(yaml.safe_dump(config))
    oem = tmp_path / "oem"
    oem.mkdir()
    env = {**os.environ, "PATH": os.path.dirname(plain_python()) + ":/usr/bin:/bin",
           "INSTALLER_EXT_BIN": os.path.join(rootfs, "usr/bin/installer-ext"),
           "INSTALLER_EXT_APP": os.path.join(rootfs, "usr/lib/installer-ext/installer-ext.pyz"),
           "INSTALLER_EXT_OEM": str(oem), "HARVESTER_CONFIG": str(tmp_path / "harvester.config")}
    hook = os.path.join(rootfs, "usr/lib/installer-ext/install-hook.sh")
    # The install runs from the ISO: VT-d off, groups predicted.
    args = ["--root", machine_root("intel-workstation-iommu-off")]
    p = subprocess.run([hook, *args], capture_output=True, text=True, env=env, cwd=REPO)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "choices from the config" in p.stdout
    assert (oem / "installer-ext" / "installer-ext.pyz").read_bytes() == open(env["INSTALLER_EXT_APP"], "rb").read()
    again = subprocess.run([hook, *args], capture_output=True, text=True, env=env, cwd=REPO)
    assert again.returncode == 0 and "wrote" not in again.stdout

    # The installed node boots with the IOMMU on: the binder runs from /oem.
    node = tmp_path / "node"
    shutil.copytree(machine_root("intel-workstation"), node, symlinks=True)
    shutil.copytree(oem, node / "oem", symlinks=True)
    kernel = FakeKernel(str(node))
    result = bind(Options(root=str(node), io=kernel.io, clock=kernel.clock, out=io.StringIO(), timeout=2.0))
    assert result is not None
    bound = {a for a in kernel.addresses() if kernel.driver_of(a) == "vfio-pci"}
    assert bound == {"0000:01:00.0", "0000:01:00.1", "0000:03:00.0"}
    assert {a for a in kernel.addresses() if kernel.override_of(a) == "vfio-pci"} == bound
    assert kernel.driver_of("0000:00:1f.6") == "e1000e" and kernel.driver_of("0000:00:02.0") == "i915"
    with open(node / "run/installer-ext/bind-status.json") as f:
        status = json.load(f)
    assert {d["address"]: d["status"] for d in status["devices"]} == {a: "bound" for a in bound}
