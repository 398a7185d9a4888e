"""Boot Debian's kernel under QEMU (TCG) on the test machine and run a hook inside it.

The machine is the one recorded in tests/fixtures/real-kernel (q35, emulated Intel
IOMMU with interrupt remapping, `-cpu max,vendor=GenuineIntel`):

    00:01.0, 00:02.0  virtio 9p: `hostroot` (this machine's / read-only), `out` (the job)
    00:03.0, 00:04.0  two identical e1000e NICs (8086:10d3)
    00:05.0           PCIe root port; 01:00.0 NVMe (1b36:0010) with SR-IOV (2 VFs)
    00:06.0           PCIe-to-PCI bridge; 02:01.0, 02:02.0 e1000 NICs (8086:100e)
    00:1f.0/.2/.3     ICH9; the AHCI at 00:1f.2 carries sda (a null disk)

`boot()` runs one guest: the guest chroots into an overlay of this machine's root (writes
go to a tmpfs and vanish), with the repository as working directory, and runs `hook` (a
shell script) there. The hook writes result files to `$E2E_OUT`, which come back in
`BootResult.out`. Several checks belong in one hook: a boot costs 15-25 s.

`boot(..., init="systemd")` boots that overlay root as a node instead: systemd as PID 1,
systemd-udevd loading the drivers by modalias, and the hook run by a service once the
system is up (init.sh says what the guest gets and loses for it).

In the hook: $PYTHON is the project's interpreter (this process's, never a pyenv shim),
$E2E_OUT the writable result dir, $E2E_REPO the repository, the cwd is the repository.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from . import assets as assets_mod

REPO = Path(__file__).resolve().parents[2]

# Loaded after the shares and before the hook, in this order. vfio-pci last: it then
# takes nothing unless asked (vfio-pci.ids) or bound by hand.
DEFAULT_DRIVERS = ("e1000e", "e1000", "nvme", "ahci", "sd_mod", "vfio-pci", "vfio_iommu_type1")

IOMMU_OFF = ("intel_iommu=off",)  # the installer ISO's state with Debian's kernel
IOMMU_ON = ("intel_iommu=on", "iommu=pt")  # what the planner asks for on Intel

# no_timer_check: under TCG on a loaded host the kernel's early check that the timer
# interrupt arrives through the interrupt-remapped IO-APIC can time out and panic
# ("timer doesn't work through Interrupt-remapped IO-APIC"); the check proves nothing here.
BASE_CMDLINE = ("console=ttyS0", "panic=-1", "loglevel=4", "no_timer_check")

QEMU = os.environ.get("INSTALLER_EXT_E2E_QEMU") or "qemu-system-x86_64"  # e.g. a backports build

_assets_lock = threading.Lock()

# (job dir name, wall seconds, hook rc) of every boot in this process: the conftest
# prints them at the end of a pytest run.
TIMINGS: list[tuple[str, float, int | None]] = []


def machine_args() -> list[str]:
    """The emulated machine's devices (without kernel, initramfs, shares)."""
    return [
        "-M", "q35,kernel-irqchip=split",
        "-device", "intel-iommu,intremap=on,caching-mode=on",
        "-cpu", "max,vendor=GenuineIntel",
        "-device", "e1000e,romfile=,addr=03.0,mac=52:54:00:e2:e0:03",
        "-device", "e1000e,romfile=,addr=04.0,mac=52:54:00:e2:e0:04",
        "-device", "pcie-root-port,id=rp1,bus=pcie.0,chassis=1,addr=05.0",
        "-device", "nvme-subsys,id=subsys0",
        "-device", "nvme,bus=rp1,serial=deadbeef,subsys=subsys0,sriov_max_vfs=2,"
        "sriov_vq_flexible=4,sriov_vi_flexible=2,max_ioqpairs=6",
        "-device", "pcie-pci-bridge,id=br1,bus=pcie.0,addr=06.0",
        "-device", "e1000,romfile=,bus=br1,addr=01.0,mac=52:54:00:e2:e1:01",
        "-device", "e1000,romfile=,bus=br1,addr=02.0,mac=52:54:00:e2:e1:02",
        "-blockdev", "driver=null-co,node-name=disk0,size=67108864,read-zeroes=on",
        "-device", "ide-hd,drive=disk0,bus=ide.0,serial=e2edisk",
    ]


def interpreter() -> str:
    """This process's interpreter, which the guest reaches through the shared root.
    A pyenv shim is a script that would not find its pyenv in the guest: refuse it."""
    exe = sys.executable
    with open(exe, "rb") as f:
        if f.read(2) == b"#!":
            raise RuntimeError(f"{exe} is a script (pyenv shim?), not an interpreter")
    return exe


@dataclass(frozen=True)
class Link:
    """A `files` entry that is a symbolic link to `target` (e.g. a unit's enablement,
    `multi-user.target.wants/x.service -> ../x.service`)."""

    target: str


@dataclass(frozen=True)
class Executable:
    """A `files` entry written with mode 0755 (render's launcher: its units exec it)."""

    data: bytes


class BootError(AssertionError):
    """The guest did not produce a result; the message carries the console tail."""


@dataclass
class BootResult:
    rc: int | None  # the hook's exit status; None when it never finished
    out: Path  # what the hook wrote to $E2E_OUT
    job: Path  # the whole share: hook.log, dmesg.txt, hook.rc, console.log
    console: str
    wall_s: float
    cmdline: list[str] = field(default_factory=list)

    def tail(self, lines: int = 60) -> str:
        return self._tail(self.console, lines)

    @staticmethod
    def _tail(text: str, lines: int) -> str:
        return "\n".join(text.splitlines()[-lines:])

    def hook_log(self) -> str:
        p = self.job / "hook.log"
        return p.read_text(errors="replace") if p.is_file() else ""

    def journal(self) -> str:
        """The guest's journal of a systemd boot (`journalctl -b -o short-monotonic`)."""
        p = self.job / "journal.txt"
        return p.read_text(errors="replace") if p.is_file() else ""

    def prepare_log(self) -> str:
        p = self.job / "prepare.log"
        return p.read_text(errors="replace") if p.is_file() else ""

    def init_failure(self) -> str | None:
        """What /init could not do before the hook ran (its E2E-INIT-FAILED line)."""
        for line in self.console.splitlines():
            if line.startswith("E2E-INIT-FAILED:"):
                return line.split(":", 1)[1].strip()
        return None

    def diagnostics(self, lines: int = 60) -> str:
        log = "\n".join(self.hook_log().splitlines()[-lines:])
        init = self.init_failure()
        return (
            f"hook rc={self.rc}, {self.wall_s:.1f}s, kernel args {' '.join(self.cmdline)}\n"
            + (f"/init failed: {init}\n" if init else "")
            + f"job dir {self.job}\n"
            + (f"--- prepare output (tail) ---\n{self._tail(self.prepare_log(), lines)}\n" if self.prepare_log() else "")
            + f"--- hook output (tail) ---\n{log}\n"
            + f"--- serial console (tail) ---\n{self.tail(lines)}"
        )

    def check(self) -> "BootResult":
        """Raise BootError (with the console tail) unless the hook exited 0."""
        if self.rc != 0:
            raise BootError("guest hook failed\n" + self.diagnostics())
        return self

    def text(self, name: str) -> str:
        p = self.out / name
        if not p.is_file():
            raise BootError(f"the guest wrote no {name}\n" + self.diagnostics())
        return p.read_text()

    def json(self, name: str) -> Any:
        text = self.text(name)
        try:
            return json.loads(text)
        except ValueError as e:
            raise BootError(f"{name} is not JSON ({e}): {text[:500]!r}\n" + self.diagnostics()) from e


def boot(
    hook: str,
    *,
    kernel_args: Sequence[str] = (),
    files: Mapping[str, str | bytes | Link | Executable] | None = None,
    drivers: Sequence[str] = DEFAULT_DRIVERS,
    modprobe: str = "busybox",
    env: Mapping[str, str] | None = None,
    hook_timeout: int = 240,
    boot_timeout: int = 120,
    workdir: Path | None = None,
    memory_mb: int = 1024,
    smp: int = 1,
    assets: assets_mod.Assets | None = None,
    init: str = "hook",
    prepare: str | None = None,
) -> BootResult:
    """Boot the test machine once and run `hook` (a /bin/sh script) in the chroot.

    kernel_args: appended to the kernel command line (e.g. IOMMU_ON, `vfio-pci.ids=...`).
    files: {absolute guest path: content or Link} laid over the guest root before the
        drivers load (e.g. /etc/modprobe.d/vfio.conf); the host's files are never touched.
    drivers: modules loaded in this order before the hook (put vfio-pci first to let it
        claim devices at boot).
    modprobe: "busybox" (the initramfs's) or "kmod" (the host's /sbin/modprobe in the
        chroot: reads /etc/modprobe.d, softdeps, and `vfio-pci.ids=` from the cmdline).
    env: extra environment for the hook.
    workdir: where the job share lives (kept for inspection); a temp dir by default.
    init: "hook" (the hook runs in a chroot from the initramfs's /init) or "systemd"
        (the root boots with systemd as PID 1 and udev loads the drivers; `drivers` and
        `modprobe` do not apply; the hook runs as e2e-hook.service, the journal comes
        back in journal.txt).
    prepare: with init="systemd", a shell command run in the chroot after `files` are
        laid and before systemd starts (output in prepare.log); a failure stops the boot.
    """
    if modprobe not in ("busybox", "kmod"):
        raise ValueError(f"modprobe must be busybox or kmod, not {modprobe!r}")
    if init not in ("hook", "systemd"):
        raise ValueError(f"init must be hook or systemd, not {init!r}")
    if prepare is not None and init != "systemd":
        raise ValueError("prepare runs before systemd: it needs init='systemd'")
    if assets is None:
        with _assets_lock:
            assets = assets_mod.ensure()
    a = assets
    qemu = shutil.which(QEMU)
    if qemu is None:
        raise BootError(f"{QEMU} not found")
    job = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="e2e-boot-"))
    job.mkdir(parents=True, exist_ok=True)
    out = job / "out"
    for stale in (out, job / "files"):  # a reused workdir must not answer for this boot
        if stale.exists():
            shutil.rmtree(stale)
    out.mkdir()
    for name in ("hook.rc", "hook.log", "dmesg.txt", "console.log", "journal.txt", "prepare.log", "prepare.rc",
                 "systemd-hook.sh"):
        (job / name).unlink(missing_ok=True)

    variables = {
        "E2E_CWD": str(REPO),
        "E2E_REPO": str(REPO),
        "E2E_OUT": "/run/e2e/out",
        "E2E_MODPROBE": modprobe,
        "E2E_DRIVERS": " ".join(drivers),
        "E2E_HOOK_TIMEOUT": str(hook_timeout),
        "E2E_KERNEL": a.kernel_version,
        "E2E_MODE": init,
        "E2E_PREPARE": prepare or "",
        "PYTHON": interpreter(),
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        **(env or {}),
    }
    for k in variables:
        if not k.isidentifier():
            raise ValueError(f"bad environment name {k!r}")
    (job / "boot.env").write_text(
        "".join(f"export {k}={shlex.quote(v)}\n" for k, v in variables.items())
        + "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    )
    (job / "hook.sh").write_text(hook)
    for path, content in (files or {}).items():
        if not path.startswith("/") or ".." in Path(path).parts:
            raise ValueError(f"files: {path!r} is not an absolute guest path")
        dest = job / "files" / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Link):
            dest.symlink_to(content.target)
        elif isinstance(content, Executable):
            dest.write_bytes(content.data)
            dest.chmod(0o755)  # init.sh's cp keeps the mode
        elif isinstance(content, bytes):
            dest.write_bytes(content)
        else:
            dest.write_text(content)

    cmdline = [*BASE_CMDLINE, *kernel_args]
    for arg in kernel_args:
        if not arg or any(c.isspace() for c in arg):
            raise ValueError(f"kernel argument {arg!r} is empty or holds a space")
    console = job / "console.log"
    cmd = [
        "timeout", "--kill-after=5", str(boot_timeout + hook_timeout),
        qemu,
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-accel", "tcg", "-smp", str(smp), "-m", str(memory_mb),
        *machine_args(),
        "-fsdev", "local,id=fshost,path=/,security_model=none,readonly=on,multidevs=remap",
        "-device", "virtio-9p-pci,fsdev=fshost,mount_tag=hostroot,addr=01.0",
        "-fsdev", f"local,id=fsout,path={_opt(job)},security_model=none,multidevs=remap",
        "-device", "virtio-9p-pci,fsdev=fsout,mount_tag=out,addr=02.0",
        "-kernel", str(a.vmlinuz),
        "-initrd", str(a.initramfs),
        "-append", " ".join(cmdline),
        "-chardev", f"file,id=console,path={_opt(console)}",
        "-serial", "chardev:console",
        "-monitor", "none",
    ]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    wall = time.monotonic() - t0
    text = console.read_text(errors="replace") if console.is_file() else ""
    # NICs without a network are on purpose: drop QEMU's "has no peer" warnings
    stderr = "".join(l for l in proc.stderr.splitlines(True) if "has no peer" not in l)
    if stderr.strip():
        text += "\n--- qemu stderr ---\n" + stderr
    if proc.returncode in (124, 137):
        text += f"\n--- killed by timeout after {wall:.0f}s ---\n"
    rc_file = job / "hook.rc"
    rc: int | None = None
    if rc_file.is_file():
        try:
            rc = int(rc_file.read_text().strip())
        except ValueError:
            rc = None
    TIMINGS.append((job.name, wall, rc))
    return BootResult(rc=rc, out=out, job=job, console=text, wall_s=wall, cmdline=cmdline)


def _opt(path: Path) -> str:
    """A path inside a QEMU option value: a comma is written twice."""
    return str(path).replace(",", ",,")


def python_hook(code: str, name: str = "snippet.py", args: Sequence[str] = ()) -> tuple[str, dict[str, str]]:
    """A hook line and a `files` entry that run `code` with the project interpreter:
    `hook, files = python_hook(CODE); boot(hook, files=files)`."""
    path = f"/run/e2e-snippets/{name}"
    line = f'"$PYTHON" {shlex.quote(path)} {" ".join(shlex.quote(x) for x in args)}\n'
    return line, {path: code}


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def parallel_boots() -> int:
    """How many guests run at once: one per core (each guest gets one vCPU, TCG)."""
    n = os.environ.get("INSTALLER_EXT_E2E_JOBS")
    return max(1, int(n) if n else (os.cpu_count() or 1))


def start(hook: str, **kw: Any) -> "Future[BootResult]":
    """`boot()` in the background: start every boot a module needs, then wait on each
    (`.result()`). Two one-vCPU guests on two cores take ~20 s together, ~17 s alone."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=parallel_boots(), thread_name_prefix="e2e-boot")
    return _pool.submit(boot, hook, **kw)
