"""iso-overlay: the reproducible archive, the overlay, the bundled runtime, the ISO
edits, the ISO step, and a whole simulated install on fixtures that reproduce the
Harvester installer.

The whole install, step by step, with what really runs there:
1. the live ISO boots (its GRUB line, harvester-installer v1.8
   package/harvester-os/iso/boot/grub2/grub.cfg) and agetty runs start-installer.sh
   (package/harvester-os/files/usr/bin/start-installer.sh) with our step before
   `harvester-installer`: an automatic install, so the step checks the config's
   pciPassthrough section (precheck) fetched from harvester.install.config_url (a local
   HTTP server on 127.0.0.1);
2. the Go installer loads the original (unknown keys dropped) and writes
   $HARVESTER_CONFIG (tests/harvester_installer.py, checked against the Go output) and
   the hook environment;
3. elemental's after-install stage runs the command of /system/oem/92_installer_ext.yaml
   with COS_OEM and COS_PERSISTENT mounted on their own;
4. harv-install, after elemental returns: save_configs and update_grub_settings
   (package/harvester-os/files/usr/sbin/harv-install);
5. the node's first boots: elemental's yip stages from /oem, the report unit, the
   binder, `installer-ext status`, and the step in dashboard mode.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest
import yaml

from installer_ext import paths
from installer_ext.boot.binder import bind
from installer_ext.boot.options import Options
from installer_ext.render import manifest
from tests.cli import REPO
from tests.conftest import require_tool, unavailable
from tests.fakekernel import FakeKernel
from tests.fakesys import build
from tests.fakesys.machines import ISO_CMDLINE, intel_workstation, node_of
from tests.harvester_installer import hook_env, load, marshal
from tests.httpserve import serve
from tests.planning import WORKSTATION_INSTALL

BUILD = os.path.join(REPO, "iso-overlay", "build.py")
LOCK = os.path.join(REPO, "iso-overlay", "requirements.lock")
FIXTURES = os.path.join(REPO, "tests", "fixtures", "harvester-installer")
# harvester-installer v1.8 package/harvester-os/iso/boot/grub2/grub.cfg (menuentry line)
# package/harvester-os/files/etc/cos/bootargs.cfg (v1.8), as GRUB expands it on an installed node
NODE_CMDLINE = ("console=tty1 root=LABEL=COS_STATE cos-img/filename=/cOS/active.img panic=0 net.ifnames=1 rd.cos.oemlabel=COS_OEM "
                "rd.cos.mount=LABEL=COS_OEM:/oem rd.cos.mount=LABEL=COS_PERSISTENT:/usr/local rd.cos.oemtimeout=120 audit=1 "
                "audit_backlog_limit=8192 intel_iommu=on amd_iommu=on iommu=pt multipath=off")
RECOVERY_CMDLINE = "console=tty1 root=LABEL=COS_RECOVERY cos-img/filename=/cOS/recovery.img rd.neednet=1 rd.cos.oemlabel=COS_OEM"
# package/harvester-os/files/usr/bin/start-installer.sh (v1.4 to v1.8, identical)
START_INSTALLER = """#!/bin/bash -e

if [ -z "$TTY" ]; then
    export TTY=$(tty)
fi

export TERM=linux

harvester-installer
# Do not allow bash prompt if the installer doesn't exit with status 0

# We're not starting the shell using /bin/login, so we need to set $HOME manually
export HOME=/root
bash -l
"""
SECTION = {"enabled": True, "devices": [{"address": "0000:01:00.0"}, {"id": "8086:1533"}]}


def plain_python() -> str:
    """A system interpreter with none of the project's packages (Debian's python3)."""
    for candidate in ("/usr/bin/python3.11", "/usr/bin/python3"):
        if os.path.exists(candidate):
            out = subprocess.run([candidate, "-I", "-c", "import sys; print(sys.version_info >= (3, 11))"], capture_output=True, text=True)
            if out.stdout.strip() == "True":
                return candidate
    unavailable("no system Python 3.11+ outside the venv (/usr/bin/python3.11 or /usr/bin/python3)")


def digest_tree(root: str) -> dict[str, str]:
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest() + oct(os.stat(path).st_mode & 0o777)
    return out


def stand_in_runtime(tmp) -> tuple[str, str]:
    """A stand-in for python-build-standalone's install_only tarball (top directory
    python/, bin/python3) and a lock that pins it: bin/python3 runs this machine's
    Python 3.11+ and notes each use."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as t:
        def add(name: str, body: bytes, mode: int = 0o644) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(body), mode, 315532800
            t.addfile(info, io.BytesIO(body))
        add("python/bin/python3", f'#!/bin/sh\necho "$0" >> /tmp/installer-ext-stand-in-runtime.log\nexec {plain_python()} "$@"\n'.encode(), 0o755)
        add("python/lib/python3.12/stand-in.txt", b"stand-in runtime\n")
    tarball = tmp / "cpython-3.12-stand-in-install_only.tar.gz"
    tarball.write_bytes(data.getvalue())
    lock = tmp / "requirements.lock"
    with open(LOCK) as f:
        text = f.read()
    lock.write_text(text + f"cpython==3.12.0+standin runtime {hashlib.sha256(data.getvalue()).hexdigest()}\n")
    return str(tarball), str(lock)


def run_build(out: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, BUILD, "--out", out, *extra], capture_output=True, text=True, cwd=REPO, timeout=600)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("iso")
    tarball, lock = stand_in_runtime(tmp)
    out = str(tmp / "out")
    p = run_build(out, "--python-runtime", tarball, "--lock", lock)
    assert p.returncode == 0, p.stderr
    return {"out": out, "tarball": tarball, "lock": lock, "rootfs": os.path.join(out, "rootfs")}


def run_app(pyz: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    full.update(env or {})
    return subprocess.run([plain_python(), "-I", pyz, *args], capture_output=True, text=True, cwd=REPO, env=full, timeout=120)


def test_the_build_is_reproducible(built, tmp_path):
    p = run_build(str(tmp_path / "again"), "--python-runtime", built["tarball"], "--lock", built["lock"])
    assert p.returncode == 0, p.stderr
    assert digest_tree(str(tmp_path / "again")) == digest_tree(built["out"])
    with open(os.path.join(built["out"], "SHA256SUMS")) as f:
        sums = dict(line.strip().split("  ")[::-1] for line in f)
    assert set(sums) == {"installer-ext.pyz", *(f"rootfs/{p}" for p in digest_tree(built["rootfs"]))}


def test_a_runtime_must_be_pinned(built, tmp_path):
    p = run_build(str(tmp_path / "o1"), "--python-runtime", built["tarball"])
    assert p.returncode == 1 and "no `runtime` row" in p.stderr
    other = tmp_path / "other.tar.gz"
    other.write_bytes(open(built["tarball"], "rb").read() + b"\0")
    p = run_build(str(tmp_path / "o2"), "--python-runtime", str(other), "--lock", built["lock"])
    assert p.returncode == 1 and "is not the one pinned" in p.stderr
    assert not os.path.exists(tmp_path / "o2" / "rootfs")  # refused before anything was built


def test_the_archive_is_pure_python_with_fixed_timestamps(built):
    with zipfile.ZipFile(os.path.join(built["out"], "installer-ext.pyz")) as z:
        names = z.namelist()
        assert names == sorted(names)
        assert not [n for n in names if n.endswith((".so", ".pyd", ".pyc"))]
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        for needed in ("__main__.py", "installer_ext/cli.py", "installer_ext/config/schema.json",
                       "installer_ext/templates/node/installer-ext.sh", "installer_ext/templates/firstboot/nvidia-device-plugin.yaml",
                       "urwid/__init__.py", "yaml/__init__.py", "jinja2/__init__.py", "markupsafe/__init__.py",
                       "jsonschema/__init__.py", "pyrsistent/__init__.py", "pyudev/__init__.py"):
            assert needed in names, needed
    # `render` on a checkout packs the running package: the same libraries as the build.
    from installer_ext.render.app import package_files

    def tops(files):
        return {n.split("/", 1)[0] for n in files if "/" in n or n.endswith(".py")} - {"__main__.py"}

    built_tops = {t for t in tops(names) if not t.endswith((".dist-info",))}
    assert tops(package_files()) == built_tops


def test_the_archive_runs_with_a_plain_interpreter(built, tmp_path):
    pyz = os.path.join(built["out"], "installer-ext.pyz")
    assert run_app(pyz, "--help").returncode == 0
    r = run_app(pyz, "detect", "--root", "examples/workstation", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["iommu"]["state"] == "available"
    target = tmp_path / "target"
    (target / "oem").mkdir(parents=True)
    r = run_app(pyz, "render", "--root", "examples/workstation", "--config", "examples/workstation.yaml", "--target", str(target))
    assert r.returncode == 0, r.stderr
    # render from the archive lays the same archive down for the node
    assert (target / "usr/local/lib/installer-ext/installer-ext.pyz").read_bytes() == open(pyz, "rb").read()
    with open(target / "oem" / "91_installer_ext.yaml") as f:
        stage = yaml.safe_load(f)["stages"]["initramfs"]
    units = tmp_path / "units"
    units.mkdir()
    program = "/" + paths.LAUNCHER_FILE
    for step in stage:
        for file in step["files"]:
            if file["path"].startswith("/etc/systemd/system/"):
                text = file["content"].replace(program, str(target) + program)
                (units / os.path.basename(file["path"]).replace("@.service", "@check.service")).write_text(text)
    analyze = require_tool("systemd-analyze")
    names = sorted(str(u) for u in units.iterdir())
    assert {os.path.basename(n) for n in names} == {
        "installer-ext-bind.service", "installer-ext-bind@check.service", "installer-ext-firstboot.service",
        "installer-ext-reconcile.service", "installer-ext-reconcile.timer", "installer-ext-report.service"}
    check = subprocess.run([analyze, "verify", *names], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    for command in ("tui", "bind", "unbind", "firstboot", "install-hook", "precheck", "kernel-args", "status"):
        r = run_app(pyz, command, "--help")
        assert r.returncode == 0 and f"installer-ext {command}" in r.stdout, (command, r.stderr)
    r = run_app(pyz, "plan", "--root", "examples/workstation", "--config", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_overlay_tree(built):
    rootfs = built["rootfs"]
    files = set(digest_tree(rootfs))
    assert files == {
        "usr/bin/installer-ext",
        "usr/lib/installer-ext/bin/installer-ext",
        "usr/lib/installer-ext/installer-ext.pyz",
        "usr/lib/installer-ext/installer-step.sh",
        "usr/lib/installer-ext/install-hook.sh",
        "usr/lib/installer-ext/python/bin/python3",
        "usr/lib/installer-ext/python/lib/python3.12/stand-in.txt",
        "system/oem/92_installer_ext.yaml",
    }
    for script in ("usr/bin/installer-ext", "usr/lib/installer-ext/bin/installer-ext", "usr/lib/installer-ext/installer-step.sh",
                   "usr/lib/installer-ext/install-hook.sh"):
        path = os.path.join(rootfs, script)
        assert os.access(path, os.X_OK)
        assert subprocess.run(["sh", "-n", path]).returncode == 0
    with open(os.path.join(rootfs, "system/oem/92_installer_ext.yaml")) as f:
        doc = yaml.safe_load(f)
    [step] = doc["stages"]["after-install"]
    assert list(doc["stages"]) == ["after-install"]
    assert step["commands"] == ["/usr/lib/installer-ext/install-hook.sh"]


def test_the_launcher_picks_the_bundled_runtime_or_says_there_is_none(built, tmp_path):
    launcher = os.path.join(built["rootfs"], "usr/lib/installer-ext/bin/installer-ext")
    log = "/tmp/installer-ext-stand-in-runtime.log"
    if os.path.exists(log):
        os.unlink(log)
    p = subprocess.run([launcher, "--version"], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert p.returncode == 0 and p.stdout.startswith("installer-ext ")
    assert "usr/lib/installer-ext/python/bin/python3" in open(log).read()
    # No runtime and only an old system python3 (Harvester v1.4-v1.6 have 3.6): exit 127
    # and the reason, not a wrong message.
    copy = tmp_path / "lib"
    shutil.copytree(os.path.join(built["rootfs"], "usr/lib/installer-ext"), copy)
    shutil.rmtree(copy / "python")
    old = tmp_path / "oldbin"
    old.mkdir()
    (old / "python3").write_text('#!/bin/sh\n[ "$1" = -I ] && exit 1\necho 3.6.15\n')
    (old / "python3").chmod(0o755)
    for tool in ("readlink", "cat", "sha256sum", "grep"):
        os.symlink(shutil.which(tool), old / tool)
    p = subprocess.run([str(copy / "bin/installer-ext"), "--version"], capture_output=True, text=True, env={"PATH": str(old)})
    assert p.returncode == 127
    assert "no Python 3.11 or newer" in p.stderr and "3.6.15" in p.stderr


def fake_bin(tmp_path, rc: int = 0) -> str:
    path = tmp_path / "fake-installer-ext"
    path.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/args\necho "fake: $1"\nexit {rc}\n')
    path.chmod(0o755)
    return str(path)


def step_env(built, tmp_path, cmdline: str, envfile: str | None = None, rc: int = 0) -> dict:
    (tmp_path / "cmdline").write_text(cmdline + "\n")
    env = {**os.environ, "INSTALLER_EXT_CMDLINE": str(tmp_path / "cmdline"), "INSTALLER_EXT_RUN": str(tmp_path / "run"),
           "INSTALLER_EXT_BIN": fake_bin(tmp_path, rc), "INSTALLER_EXT_LOG": str(tmp_path / "console.log"),
           "INSTALLER_EXT_ENV_FILE": envfile or str(tmp_path / "no-env"), "INSTALLER_EXT_STATUS": str(tmp_path / "status"),
           "INSTALLER_EXT_HOLD": "0", "INSTALLER_EXT_PAUSE": "0"}
    return env


def run_step(built, env) -> subprocess.CompletedProcess:
    step = os.path.join(built["rootfs"], "usr/lib/installer-ext/installer-step.sh")
    return subprocess.run([step], capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=60)


@pytest.mark.parametrize("where, cmdline, envfile, runs", [
    ("live ISO", ISO_CMDLINE, None, "tui"),
    ("PXE", "root=live:http://10.0.0.1/rootfs.squashfs rd.neednet=1 console=tty1", None, "tui"),
    ("installed node", NODE_CMDLINE, os.path.join(FIXTURES, "installer-env"), None),
    ("node, env file only", "console=tty1 root=UUID=x", os.path.join(FIXTURES, "installer-env"), None),
    ("recovery", RECOVERY_CMDLINE, None, None),
    ("automatic", ISO_CMDLINE + " harvester.install.automatic=true harvester.install.config_url=http://x/c.yaml", None, "precheck"),
])
def test_the_step_runs_only_on_the_live_installer(built, tmp_path, where, cmdline, envfile, runs):
    env = step_env(built, tmp_path, cmdline, envfile)
    p = run_step(built, env)
    assert p.returncode == 0, p.stderr
    args = (tmp_path / "args").read_text().split() if (tmp_path / "args").exists() else []
    if runs is None:
        assert args == [], where
    else:
        assert args[0] == runs, where
    if runs == "tui":
        assert args == ["tui", "--root", "/", "--output", f"{tmp_path}/run/choices.yaml"]
        # A restarted installer starts from the earlier choices.
        (tmp_path / "run" / "choices.yaml").write_text("pciPassthrough: {enabled: true}\n")
        subprocess.run([os.path.join(built["rootfs"], "usr/lib/installer-ext/installer-step.sh")], env=env, check=True)
        assert (tmp_path / "args").read_text().splitlines()[-1].split()[-2:] == ["--config", f"{tmp_path}/run/choices.yaml"]


@pytest.mark.parametrize("rc, words", [(1, "no GPU / PCI passthrough choices were made"), (127, "no Python 3.11 or newer"),
                                       (7, "failed (exit 7)")])
def test_a_failing_screen_never_stops_the_install_and_says_why(built, tmp_path, rc, words):
    p = run_step(built, step_env(built, tmp_path, ISO_CMDLINE, rc=rc))
    assert p.returncode == 0 and words in (p.stdout + p.stderr)
    assert words in (tmp_path / "console.log").read_text()


def test_an_automatic_install_with_a_bad_section_stops_before_the_installer(built, tmp_path):
    auto = ISO_CMDLINE + " harvester.install.automatic=true harvester.install.config_url=http://x/c.yaml"
    p = run_step(built, step_env(built, tmp_path, auto, rc=3))
    assert p.returncode == 3  # INSTALLER_EXT_HOLD=0: the real step waits for ever here
    assert "THE INSTALL IS STOPPED before any disk was touched" in p.stdout
    assert "installer_ext.continue_without_passthrough=1" in (tmp_path / "console.log").read_text()
    # the explicit kernel argument goes on without passthrough
    p = run_step(built, step_env(built, tmp_path, auto + " installer_ext.continue_without_passthrough=1", rc=3))
    assert p.returncode == 0 and "the install goes on without GPU / PCI passthrough" in p.stdout


def test_the_node_console_shows_a_failed_install_before_the_dashboard(built, tmp_path):
    status = tmp_path / "status"
    status.mkdir()
    (status / "install-status.json").write_text(json.dumps({"version": 1, "outcome": "refused", "ok": False}, indent=2))
    (status / "install-status.txt").write_text("installer-ext: GPU / PCI passthrough was NOT set up: refused\n")
    p = run_step(built, step_env(built, tmp_path, NODE_CMDLINE, os.path.join(FIXTURES, "installer-env")))
    assert p.returncode == 0 and "was NOT set up" in p.stdout and not (tmp_path / "args").exists()


def test_apply_to_an_unpacked_iso(built, tmp_path):
    rootfs, iso = tmp_path / "rootfs", tmp_path / "iso"
    (rootfs / "usr/bin").mkdir(parents=True)
    (rootfs / "usr/bin/start-installer.sh").write_text(START_INSTALLER)
    (iso / "boot/grub2").mkdir(parents=True)
    (iso / "boot/grub2/harvester.cfg").write_text('set harvester_version=v1.8.0\nset extra_iso_cmdline=harvester.install.with_net_images=true\n')
    for _ in range(2):  # idempotent
        p = run_build(built["out"], "--rootfs", str(rootfs), "--iso", str(iso), "--python-runtime", built["tarball"], "--lock", built["lock"])
        assert p.returncode == 0, p.stderr
    lines = (rootfs / "usr/bin/start-installer.sh").read_text().splitlines()
    step = lines.index("/usr/lib/installer-ext/installer-step.sh")
    assert lines[step + 1] == "harvester-installer" and lines.count("/usr/lib/installer-ext/installer-step.sh") == 1
    cfg = (iso / "boot/grub2/harvester.cfg").read_text()
    assert cfg.count('set extra_iso_cmdline="${extra_iso_cmdline} intel_iommu=on iommu=pt"') == 1
    assert (rootfs / "usr/lib/installer-ext/installer-ext.pyz").exists()
    assert os.access(rootfs / "usr/lib/installer-ext/python/bin/python3", os.X_OK)
    (rootfs / "usr/bin/start-installer.sh").write_text("#!/bin/sh\necho nothing to hook\n")
    # (the same build arguments: `built` stays what the other tests expect)
    p = run_build(built["out"], "--rootfs", str(rootfs), "--python-runtime", built["tarball"], "--lock", built["lock"])
    assert p.returncode == 1 and "no line that runs harvester-installer" in p.stderr


def harv_install_after_hooks(target_oem: str, env: dict) -> None:
    """What harv-install does after `elemental install` returns (v1.8
    package/harvester-os/files/usr/sbin/harv-install): save_configs copies
    $HARVESTER_CONFIG to /oem/harvester.config; update_grub_settings creates /oem/grubenv
    if missing and sets third_party_kernel_args to $HARVESTER_ADDITIONAL_KERNEL_ARGUMENTS
    (the last of the two util.go appends: Go's exec keeps the last duplicate)."""
    editenv = require_tool("grub-editenv")
    shutil.copyfile(env["HARVESTER_CONFIG"], os.path.join(target_oem, "harvester.config"))
    grubenv = os.path.join(target_oem, "grubenv")
    if not os.path.exists(grubenv):
        subprocess.run([editenv, grubenv, "create"], check=True)
    subprocess.run([editenv, grubenv, "set", f"third_party_kernel_args={env['HARVESTER_ADDITIONAL_KERNEL_ARGUMENTS']}"], check=True)
    # Part 5 (kernel arguments as Harvester boots) continues from here: the grubenv as
    # harv-install leaves it, then the kernel-args keeper at boot (its own tests).


def yip_boot(node: str) -> list[dict]:
    """elemental's initramfs stage on the node, for our yip file: each step whose `if`
    holds writes its files under the node's /etc. The manifest test in the `if`
    (`sha256sum -c` over /oem paths) is done with manifest.verify on the node's root."""
    with open(os.path.join(node, paths.YIP_FILE)) as f:
        doc = yaml.safe_load(f)
    complete = manifest.verify(paths.Target(root=node)).complete
    ran = []
    for step in doc["stages"]["initramfs"]:
        cond = step["if"]
        assert cond.endswith("sha256sum --status -c -")
        if not complete or ("installer_ext.skip=1" in cond and "installer_ext.skip=1" in open(os.path.join(node, "proc/cmdline")).read()):
            continue
        if f"[ ! -e /{paths.GIVEN_BACK_FILE} ]" in cond and os.path.exists(os.path.join(node, paths.GIVEN_BACK_FILE)):
            continue
        for f in step["files"]:
            dst = os.path.join(node, f["path"].lstrip("/"))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst, "w") as out:
                out.write(f["content"])
        ran.append(step)
    return ran


def test_a_whole_simulated_install(built, tmp_path, machine_root):
    rootfs = built["rootfs"]
    lib = os.path.join(rootfs, "usr/lib/installer-ext")
    iso_machine = machine_root("intel-workstation-iommu-off")  # the ISO boots with VT-d off
    original = {"schemeVersion": 1, "install": {**WORKSTATION_INSTALL, "automatic": True}, "pciPassthrough": SECTION}
    body = yaml.safe_dump(original).encode()
    with serve({"/harvester/config.yaml": body}) as (base, requested):
        url = base + "/harvester/config.yaml"
        # 1. The live ISO, automatic install: the step checks the section first.
        live = tmp_path / "live"
        shutil.copytree(iso_machine, live, symlinks=True)
        (live / "proc" / "cmdline").unlink()
        (live / "proc" / "cmdline").write_text(f"{ISO_CMDLINE} harvester.install.automatic=true harvester.install.config_url={url}\n")
        env = step_env(built, tmp_path, (live / "proc/cmdline").read_text().strip())
        env.update(INSTALLER_EXT_BIN=os.path.join(rootfs, "usr/bin/installer-ext"), INSTALLER_EXT_ROOT=str(live),
                   PATH=f"{tmp_path}/fakebin:/usr/bin:/bin")
        # start-installer.sh's own `harvester-installer` line: record that it ran
        (tmp_path / "fakebin").mkdir()
        (tmp_path / "fakebin" / "harvester-installer").write_text(f"#!/bin/sh\necho ran > {tmp_path}/installer-ran\n")
        (tmp_path / "fakebin" / "harvester-installer").chmod(0o755)
        wrapper = os.path.join(rootfs, "usr/bin/installer-ext")
        assert open(wrapper).read().count("/usr/lib/installer-ext/bin/installer-ext") == 1
        env["INSTALLER_EXT_BIN"] = os.path.join(lib, "bin", "installer-ext")
        script = tmp_path / "start-installer.sh"
        script.write_text(START_INSTALLER.replace("harvester-installer\n", f"{lib}/installer-step.sh\nharvester-installer\n", 1))
        script.chmod(0o755)
        p = subprocess.run(["bash", str(script)], env={**env, "TTY": "/dev/tty1", "HOME": str(tmp_path)}, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stdout + p.stderr
        assert (tmp_path / "installer-ran").exists(), "the installer did not start after a valid section"
        assert "the pciPassthrough section is valid: 3 functions to VMs" in (tmp_path / "console.log").read_text()
        assert requested == ["/harvester/config.yaml"]

        # 2. The Go installer: its copy of the config and the hook environment.
        struct = load(original)
        (tmp_path / "harvester.123").write_text(marshal(struct))
        hook_environment = hook_env(str(tmp_path / "harvester.123"), url, struct)

        # 3. elemental's after-install: the command of our stage, partitions on their own.
        oem, persistent = tmp_path / "run-cos-oem", tmp_path / "run-cos-persistent"
        oem.mkdir()
        persistent.mkdir()
        with open(os.path.join(rootfs, "system/oem/92_installer_ext.yaml")) as f:
            [stage] = yaml.safe_load(f)["stages"]["after-install"]
        [command] = stage["commands"]
        henv = {**os.environ, **hook_environment, "INSTALLER_EXT_BIN": os.path.join(lib, "bin", "installer-ext"),
                "INSTALLER_EXT_APP": os.path.join(lib, "installer-ext.pyz"), "INSTALLER_EXT_RUNTIME_DIR": os.path.join(lib, "python"),
                "INSTALLER_EXT_OEM": str(oem), "INSTALLER_EXT_PERSISTENT": str(persistent), "INSTALLER_EXT_ROOT": iso_machine,
                "HARVESTER_INSTALLATION_LOG": str(tmp_path / "console.log")}
        p = subprocess.run(["sh", "-c", rootfs + command], env=henv, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "choices from the config" in p.stdout
        assert requested == ["/harvester/config.yaml"] * 2
    assert "[installer-ext hook] installer-ext: rendering the choices from the config" in (tmp_path / "console.log").read_text()
    assert (persistent / "lib/installer-ext/installer-ext.pyz").read_bytes() == open(os.path.join(lib, "installer-ext.pyz"), "rb").read()
    assert (persistent / "lib/installer-ext/python/lib/python3.12/stand-in.txt").exists()

    # 4. harv-install after elemental: its config copy and its grubenv rewrite.
    harv_install_after_hooks(str(oem), hook_environment)

    # 5. The node boots: IOMMU on; /oem and /usr/local are the partitions written above.
    node = tmp_path / "node"
    # the workstation installed as a Harvester node: its mounts, routes and management
    # bridge, which the binder re-checks (tests/fakesys/runtime.py)
    build(node_of(intel_workstation()), str(node))
    shutil.copytree(oem, node / "oem", symlinks=True)
    os.makedirs(node / "usr", exist_ok=True)
    shutil.copytree(persistent, node / "usr/local", symlinks=True)
    (node / "proc/cmdline").unlink()
    (node / "proc/cmdline").write_text(NODE_CMDLINE + "\n")
    ran = yip_boot(str(node))
    assert len(ran) == 3  # report, vfio options and udev rule, units
    report_unit = (node / "etc/systemd/system/installer-ext-report.service").read_text()
    assert "ExecStart=/usr/bin/cat /oem/installer-ext/install-status.txt" in report_unit
    assert "was set up by the install" in (node / "oem/installer-ext/install-status.txt").read_text()
    assert not (node / "etc/profile.d/installer-ext.sh").exists()  # good news is not repeated at every login
    bind_unit = (node / "etc/systemd/system/installer-ext-bind.service").read_text()
    assert f"ExecStart=/{paths.LAUNCHER_FILE} bind --plan /oem/installer-ext/plan.json" in bind_unit
    assert os.access(node / paths.LAUNCHER_FILE, os.X_OK)
    # the binder, as the unit runs it (in-process: the fake kernel's sysfs semantics)
    kernel = FakeKernel(str(node))
    result = bind(Options(root=str(node), io=kernel.io, clock=kernel.clock, out=io.StringIO(), timeout=2.0))
    assert result is not None
    bound = {a for a in kernel.addresses() if kernel.driver_of(a) == "vfio-pci"}
    assert bound == {"0000:01:00.0", "0000:01:00.1", "0000:03:00.0"}
    assert kernel.driver_of("0000:00:1f.6") == "e1000e" and kernel.driver_of("0000:00:02.0") == "i915"
    # `installer-ext status` through the node's own launcher and bundled runtime
    used = "/tmp/installer-ext-stand-in-runtime.log"
    if os.path.exists(used):
        os.unlink(used)
    st = subprocess.run([str(node / paths.LAUNCHER_FILE), "status", "--root", str(node), "--json"], capture_output=True, text=True,
                        env={"PATH": "/usr/bin:/bin"}, timeout=60)
    assert st.returncode == 0, st.stderr
    assert f"{node}/usr/local/lib/installer-ext/python/bin/python3" in open(used).read()
    status = json.loads(st.stdout)
    assert status["install"]["record"]["outcome"] == "rendered" and status["install"]["set"]["complete"]
    assert {d["address"]: d["status"] for d in status["bind"]["devices"]} == {a: "bound" for a in bound}
    assert status["firstboot"]["state"] == "not-run" and status["kernel_args"] is None
    # the console in dashboard mode: the step does nothing, the install went well
    dash = tmp_path / "dashboard"
    dash.mkdir()
    env = step_env(built, dash, NODE_CMDLINE, os.path.join(FIXTURES, "installer-env"))
    env["INSTALLER_EXT_STATUS"] = str(node / "oem/installer-ext")
    p = run_step(built, env)
    assert p.returncode == 0 and p.stdout == "" and not (dash / "args").exists()

    # 6. `unbind` gives the plan back for good: the next boot's yip stage leaves the
    # vfio-pci options and the udev rule out, and the binder binds nothing.
    from installer_ext.boot.unbinder import unbind

    assert unbind(Options(root=str(node), io=kernel.io, clock=kernel.clock, out=io.StringIO(), timeout=2.0)) is not None
    assert (node / paths.GIVEN_BACK_FILE).exists()
    shutil.rmtree(node / "etc")  # /etc is rebuilt every boot
    assert [step["name"] for step in yip_boot(str(node))] == [
        step["name"] for step in ran if not step["name"].startswith("installer-ext: vfio-pci options")]
    assert not (node / "etc/modprobe.d/installer-ext-vfio.conf").exists()
    assert not (node / "etc/udev/rules.d/40-installer-ext-vfio.rules").exists()
