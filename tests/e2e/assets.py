"""Guest assets for the real-kernel tests: Debian's kernel and a small busybox initramfs.

Everything lands in a cache dir (default ~/.cache/installer-ext-e2e, or
$INSTALLER_EXT_E2E_CACHE) and is reused: once a kernel is unpacked and an initramfs
built, later runs neither download nor rebuild anything.

    cache/kernel/<ver>/vmlinuz                the kernel
    cache/kernel/<ver>/lib/modules/<ver>/...  the needed modules and their modules.dep
    cache/kernel/<ver>/complete               written last: the unpack finished
    cache/initramfs-<hash>.cpio.gz            busybox + modules + /init, by content hash

The kernel is the one Debian's `linux-image-amd64` points to (fetched with `apt-get
download`, unpacked with `dpkg-deb -x`, never installed), unless $INSTALLER_EXT_E2E_KERNEL
names one (`6.1.0-56-amd64`) or a kernel is already cached (the newest cached one wins,
so a cached run never asks apt).

Run `python -m tests.e2e.assets` to prefetch (CI does it in .ci/e2e-setup).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

BUSYBOX = "/bin/busybox"  # from busybox-static: must be a static binary

# Modules the guest needs; their dependencies come from modules.dep.
MODULES = (
    # the harness: virtio 9p shares and the overlay root
    "virtio_pci", "9pnet_virtio", "9p", "netfs", "fscache", "overlay",
    # the devices under test
    "e1000e", "e1000", "nvme", "ahci", "sd_mod",
    # VFIO
    "vfio", "vfio-pci", "vfio_iommu_type1",
)

INIT = Path(__file__).with_name("init.sh")


class AssetError(RuntimeError):
    """The assets cannot be fetched or built; the message says why, in one line."""


@dataclass(frozen=True)
class Assets:
    kernel_version: str  # e.g. 6.1.0-56-amd64
    vmlinuz: Path
    modules: Path  # .../lib/modules/<ver>: kernel/**.ko, modules.dep
    initramfs: Path


def cache_dir() -> Path:
    return Path(os.environ.get("INSTALLER_EXT_E2E_CACHE") or "~/.cache/installer-ext-e2e").expanduser()


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)
    except FileNotFoundError as e:
        raise AssetError(f"{cmd[0]} not found") from e
    except subprocess.CalledProcessError as e:
        msg = (e.stderr or e.stdout or "").strip().splitlines()
        raise AssetError(f"{' '.join(cmd)} failed: {msg[-1] if msg else e.returncode}") from e


def _version_key(ver: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", ver)]


def cached_kernels(cache: Path) -> list[str]:
    root = cache / "kernel"
    if not root.is_dir():
        return []
    return sorted((p.name for p in root.iterdir() if (p / "complete").is_file()), key=_version_key)


def _apt_kernel_version() -> str:
    """The ABI name Debian's linux-image-amd64 depends on, e.g. 6.1.0-56-amd64."""
    for attempt in (1, 2):
        try:
            out = _run(["apt-cache", "depends", "linux-image-amd64"]).stdout
        except AssetError:
            out = ""
        m = re.search(r"Depends:\s*linux-image-(\S+-amd64)\b", out)
        if m:
            return m.group(1)
        if attempt == 1:  # empty or missing package lists
            log.info("apt-cache knows no linux-image-amd64: running apt-get update")
            _run(["apt-get", "update"])
    raise AssetError("apt-cache depends linux-image-amd64 names no kernel package")


def pick_kernel(cache: Path) -> str:
    want = os.environ.get("INSTALLER_EXT_E2E_KERNEL")
    if want:
        if not re.fullmatch(r"[0-9][0-9A-Za-z.+~-]*", want):
            raise AssetError(f"INSTALLER_EXT_E2E_KERNEL={want!r} is not a kernel version like 6.1.0-56-amd64")
        return want
    have = cached_kernels(cache)
    return have[-1] if have else _apt_kernel_version()


def _module_closure(dep_file: Path, names: tuple[str, ...]) -> list[str]:
    """Relative .ko paths for `names` and everything they depend on (modules.dep)."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in dep_file.read_text().splitlines():
        if ":" not in line:
            continue
        path, rest = line.split(":", 1)
        deps[path] = rest.split()
        by_name[_modname(path)] = path
    out: set[str] = set()
    todo = []
    for n in names:
        key = n.replace("-", "_")
        if key not in by_name:
            raise AssetError(f"module {n} is not in {dep_file}")
        todo.append(by_name[key])
    while todo:
        p = todo.pop()
        if p not in out:
            out.add(p)
            todo.extend(deps.get(p, []))
    return sorted(out)


def _modname(path: str) -> str:
    base = os.path.basename(path)
    for ext in (".ko", ".ko.xz", ".ko.zst", ".ko.gz"):
        if base.endswith(ext):
            base = base[: -len(ext)]
    return base.replace("-", "_")


def fetch_kernel(cache: Path, ver: str) -> Path:
    """Download and unpack linux-image-<ver>; keep vmlinuz and the needed modules."""
    dest = cache / "kernel" / ver
    if (dest / "complete").is_file():
        return dest
    log.info("fetching linux-image-%s", ver)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kernel-", dir=cache) as tmp:
        t = Path(tmp)
        os.chmod(t, 0o755)  # apt's _apt user writes the download here
        _run(["apt-get", "download", f"linux-image-{ver}"], cwd=t)
        debs = list(t.glob("linux-image-*.deb"))
        if len(debs) != 1:
            raise AssetError(f"apt-get download linux-image-{ver} left {len(debs)} packages")
        x = t / "x"
        _run(["dpkg-deb", "-x", str(debs[0]), str(x)])
        mods = x / "lib" / "modules" / ver
        vmlinuz = x / "boot" / f"vmlinuz-{ver}"
        if not vmlinuz.is_file() or not mods.is_dir():
            raise AssetError(f"linux-image-{ver} has no boot/vmlinuz-{ver} or lib/modules/{ver}")
        _run([BUSYBOX, "depmod", "-b", str(x), ver])
        keep = _module_closure(mods / "modules.dep", MODULES)

        stage = t / "stage"
        smods = stage / "lib" / "modules" / ver
        for rel in keep:
            (smods / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(mods / rel, smods / rel)
        for f in ("modules.builtin", "modules.builtin.modinfo", "modules.order"):
            if (mods / f).is_file():
                shutil.copy2(mods / f, smods / f)
        _run([BUSYBOX, "depmod", "-b", str(stage), ver])  # modules.dep for the kept set
        shutil.copy2(vmlinuz, stage / "vmlinuz")
        (stage / "complete").write_text(f"{debs[0].name}\n")
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            stage.rename(dest)
        except OSError:
            if not (dest / "complete").is_file():  # else another run got there first
                raise
    return dest


def _tree_hash(paths: list[tuple[str, Path]], extra: bytes) -> str:
    h = hashlib.sha256(extra)
    for name, p in sorted(paths):
        h.update(name.encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()[:16]


def build_initramfs(cache: Path, kdir: Path, ver: str) -> Path:
    """busybox-static with its applet links, the modules, /init; cpio newc, gzip."""
    bb = Path(BUSYBOX)
    if not bb.is_file():
        raise AssetError(f"{BUSYBOX} not found (apt-get install busybox-static)")
    mods = kdir / "lib" / "modules" / ver
    files = [(f"lib/modules/{ver}/{p.relative_to(mods)}", p) for p in mods.rglob("*") if p.is_file()]
    files += [("bin/busybox", bb), ("init", INIT)]
    out = cache / f"initramfs-{_tree_hash(files, ver.encode())}.cpio.gz"
    if out.is_file():
        return out
    log.info("building %s", out.name)
    applets = _run([BUSYBOX, "--list-full"]).stdout.split()
    with tempfile.TemporaryDirectory(prefix="initramfs-", dir=cache) as tmp:
        root = Path(tmp) / "root"
        for d in ("bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "mnt", "tmp", "run"):
            (root / d).mkdir(parents=True, exist_ok=True)
        for name, src in files:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / name)
        os.chmod(root / "init", 0o755)
        for a in applets:  # bin/ls -> /bin/busybox; never replace busybox itself
            link = root / a
            if a == "bin/busybox" or link.exists():
                continue
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to("/bin/busybox")
        names = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
        cpio = _cpio(root, names)
        tmp_out = Path(tmp) / "initramfs.cpio.gz"
        with gzip.open(tmp_out, "wb", compresslevel=6) as f:
            f.write(cpio)
        tmp_out.rename(out)
    _prune(cache, keep=out)
    return out


def _prune(cache: Path, keep: Path, spare: int = 3) -> None:
    """Drop all but the newest few initramfs builds (each /init edit makes one)."""
    old = sorted(cache.glob("initramfs-*.cpio.gz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for p in [p for p in old if p != keep][spare:]:
        p.unlink(missing_ok=True)


def _cpio(root: Path, names: list[str]) -> bytes:
    try:
        p = subprocess.run(
            ["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"],
            input="\n".join(names).encode() + b"\n",
            capture_output=True,
            cwd=root,
            check=True,
        )
    except FileNotFoundError as e:
        raise AssetError("cpio not found (apt-get install cpio)") from e
    except subprocess.CalledProcessError as e:
        raise AssetError(f"cpio failed: {e.stderr.decode(errors='replace').strip()}") from e
    return p.stdout


def ensure(cache: Path | None = None) -> Assets:
    """The kernel and initramfs, fetched and built once, then taken from the cache."""
    cache = cache or cache_dir()
    ver = pick_kernel(cache)
    try:
        kdir = fetch_kernel(cache, ver)
    except AssetError as e:
        if os.environ.get("INSTALLER_EXT_E2E_KERNEL") or cached_kernels(cache):
            raise
        # Stale package lists name a kernel the mirror no longer has: refresh once.
        log.info("%s; running apt-get update and trying again", e)
        _run(["apt-get", "update"])
        ver = _apt_kernel_version()
        kdir = fetch_kernel(cache, ver)
    initrd = build_initramfs(cache, kdir, ver)
    return Assets(kernel_version=ver, vmlinuz=kdir / "vmlinuz", modules=kdir / "lib" / "modules" / ver, initramfs=initrd)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        a = ensure()
    except AssetError as e:
        print(f"e2e assets: {e}", file=sys.stderr)
        return 1
    print(f"kernel {a.kernel_version}: {a.vmlinuz}")
    print(f"initramfs: {a.initramfs} ({a.initramfs.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
