#!/usr/bin/env python3
"""Build installer-ext for a Harvester ISO: a self-contained archive and the overlay tree.

    python3 iso-overlay/build.py [--out DIR] [--rootfs ISO_ROOTFS] [--iso ISO_TREE]
                                 [--python-runtime TARBALL] [--lock FILE]

Writes, reproducibly (the same sources and pinned dependencies give the same bytes):

  OUT/installer-ext.pyz   the application and its pure-Python dependencies
                          (requirements.lock); runs with a `python3` >= 3.11
  OUT/rootfs/             files to lay over the installer ISO's root filesystem:
                          /usr/bin/installer-ext, /usr/lib/installer-ext/ (the launcher
                          bin/installer-ext, the archive, the optional Python runtime
                          python/, the interactive step, the install hook) and
                          /system/oem/92_installer_ext.yaml (the after-install stage)
  OUT/SHA256SUMS

--python-runtime: a relocatable CPython, python-build-standalone's `install_only`
tarball (its top directory `python/` holds bin/python3), pinned by sha256 in the lock
as a `runtime` row. It is unpacked to /usr/lib/installer-ext/python: Harvester v1.4-v1.6
have Python 3.6 only, and the install hook copies it onto the node's COS_PERSISTENT
(/usr/local/lib/installer-ext/python) with the archive.

With --rootfs, the overlay is also copied into an unpacked ISO root filesystem and its
/usr/bin/start-installer.sh gets the interactive step before the Harvester installer.
With --iso, the ISO's boot/grub2/harvester.cfg gets `intel_iommu=on iommu=pt` on the
installer's own kernel line (extra_iso_cmdline), so the install sees real IOMMU groups.
Both edits are idempotent.

Build host requirement: Python >= 3.11 with pip (to fetch the pinned dependencies from
PyPI once; they are cached in $INSTALLER_EXT_ISO_CACHE or ~/.cache/installer-ext-iso).
Target requirement: the bundled runtime, or a Python >= 3.11 on the ISO and the node.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
from installer_ext.render.app import MAIN, zip_bytes  # noqa: E402 - the one archive writer

LOCK = os.path.join(HERE, "requirements.lock")
LAUNCHER = os.path.join(REPO, "templates", "node", "installer-ext.sh")
STATIC = os.path.join(HERE, "rootfs")
APP_DIR = "usr/lib/installer-ext"
STEP = "/usr/lib/installer-ext/installer-step.sh"
STEP_MARK = "# installer-ext: GPU drivers / PCI passthrough step"
GRUB_MARK = "# installer-ext: real IOMMU groups during the install"
ISO_ARGS = "intel_iommu=on iommu=pt"
class BuildError(Exception):
    pass


def cache_dir() -> str:
    return os.environ.get("INSTALLER_EXT_ISO_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "installer-ext-iso")


def read_lock(lock: str = LOCK) -> list[tuple[str, str, str, str]]:
    """(name, version, kind, sha256) rows. Kinds: `wheel`, `sdist:DIR`, and `runtime`
    (the python-build-standalone tarball --python-runtime must match; not a Python
    dependency, so not in constraints.txt)."""
    out = []
    try:
        f = open(lock, encoding="utf-8")
    except OSError as exc:
        raise BuildError(f"{lock}: cannot read ({exc.strerror})") from None
    with f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            spec, kind, digest = parts if len(parts) == 3 else ("", "", "")
            name, _, version = spec.partition("==")
            if not version or not re.fullmatch(r"[0-9a-f]{64}", digest) or not re.fullmatch(r"wheel|sdist:\S+|runtime", kind):
                raise BuildError(f"{lock}:{n}: expected NAME==VERSION wheel|sdist:DIR|runtime SHA256")
            out.append((name, version, kind, digest))
    return out


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(name: str, version: str, kind: str, digest: str) -> str:
    """The downloaded wheel or sdist, checked against its pinned sha256."""
    dl = os.path.join(cache_dir(), "dist")
    os.makedirs(dl, exist_ok=True)
    norm = re.sub(r"[-_.]+", "_", name).lower()
    for existing in sorted(os.listdir(dl)):
        if re.sub(r"[-_.]+", "_", existing).lower().startswith(f"{norm}_{version}".replace(".", "_")) and sha256(os.path.join(dl, existing)) == digest:
            return os.path.join(dl, existing)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", dl, f"{name}=={version}"]
    if kind == "wheel":
        cmd += ["--only-binary=:all:", "--platform", "any", "--implementation", "py", "--python-version", "3.11"]
    else:
        # Only this package from source (its source tree is what we take); its build
        # requirements (setuptools, Cython, ...) come as wheels: `:all:` would compile
        # them from source too (Cython alone took most of a build).
        cmd += [f"--no-binary={name}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"pip download {name}=={version} failed: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")
    for existing in sorted(os.listdir(dl)):
        path = os.path.join(dl, existing)
        if sha256(path) == digest:
            return path
    raise BuildError(f"{name}=={version}: downloaded file does not match the pinned sha256 {digest}")


def dependency_files(name: str, version: str, kind: str, path: str) -> dict[str, bytes]:
    """Archive path -> bytes of one dependency, without compiled code or caches."""
    out: dict[str, bytes] = {}
    if kind == "wheel":
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                n = info.filename
                if info.is_dir() or n.endswith((".so", ".pyd", ".pyc")) or "/__pycache__/" in n:
                    continue
                if ".dist-info/" in n and not re.search(r"\.dist-info/(METADATA|licenses/.*|LICENSE.*)$", n):
                    continue
                out[n] = z.read(info)
        return out
    subdir = kind.split(":", 1)[1].strip("/")
    package = subdir.rsplit("/", 1)[-1]
    with tarfile.open(path) as t:
        for member in t.getmembers():
            parts = member.name.split("/", 1)
            if len(parts) < 2 or not member.isfile():
                continue
            rel = parts[1]
            if rel.startswith(subdir + "/"):
                inner = rel[len(subdir) + 1 :]
                if inner.endswith((".c", ".h", ".so", ".pyc")) or "__pycache__" in inner:
                    continue
                out[f"{package}/{inner}"] = t.extractfile(member).read()
            elif re.fullmatch(r"(LICEN[CS]E|COPYING)(\.\w+)?", rel):
                out[f"{name}-{version}.dist-info/{rel}"] = t.extractfile(member).read()
    if not out:
        raise BuildError(f"{name}=={version}: no {subdir}/ in {os.path.basename(path)}")
    return out


def project_files() -> dict[str, bytes]:
    """installer_ext and templates/ as git tracks them (templates go inside the package)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--", "installer_ext", "templates"], cwd=REPO, capture_output=True, check=True
        ).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BuildError(f"cannot list the project's files with git: {exc}") from None
    out: dict[str, bytes] = {}
    for rel in sorted(p for p in listed if p):
        if "__pycache__" in rel or rel.endswith(".pyc"):
            continue
        src = os.path.join(REPO, rel)
        if not os.path.isfile(src):
            continue  # deleted in the work tree
        with open(src, "rb") as f:
            data = f.read()
        arc = "installer_ext/" + rel if rel.startswith("templates/") else rel
        out[arc] = data
    return out


def write_zip(files: dict[str, bytes], dest: str) -> None:
    tmp = dest + ".tmp"
    with open(tmp, "wb") as f:
        f.write(zip_bytes(files))
    os.chmod(tmp, 0o755)
    os.replace(tmp, dest)


def build_archive(dest: str, lock: str = LOCK) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for name, version, kind, digest in read_lock(lock):
        if kind == "runtime":
            continue
        for arc, data in dependency_files(name, version, kind, fetch(name, version, kind, digest)).items():
            if arc in files and files[arc] != data:
                raise BuildError(f"{arc} comes from two dependencies")
            files[arc] = data
    project = project_files()
    clash = sorted(set(project) & set(files))
    if clash:
        raise BuildError(f"project files clash with dependencies: {', '.join(clash[:5])}")
    files.update(project)
    files["__main__.py"] = MAIN.encode()
    write_zip(files, dest)
    return files


def copy_static(out_rootfs: str) -> None:
    for dirpath, _, names in sorted(os.walk(STATIC)):
        for name in sorted(names):
            src = os.path.join(dirpath, name)
            rel = os.path.relpath(src, STATIC)
            dst = os.path.join(out_rootfs, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(src, dst)
            os.chmod(dst, 0o755 if os.access(src, os.X_OK) else 0o644)


def check_runtime(tarball: str, lock: str = LOCK) -> None:
    """The tarball is readable and pinned in the lock (checked before anything is built)."""
    rows = [r for r in read_lock(lock) if r[2] == "runtime"]
    if not rows:
        raise BuildError(f"{lock}: no `runtime` row pins a Python runtime; add NAME==VERSION runtime SHA256 for {os.path.basename(tarball)}")
    try:
        digest = sha256(tarball)
    except OSError as exc:
        raise BuildError(f"--python-runtime {tarball}: cannot read ({exc.strerror})") from None
    if digest not in {r[3] for r in rows}:
        raise BuildError(f"--python-runtime {tarball}: sha256 {digest} is not the one pinned in {lock}")


def unpack_runtime(tarball: str, dest: str) -> None:
    """The pinned python-build-standalone `install_only` tarball into `dest`."""
    scratch = dest + ".unpack"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        with tarfile.open(tarball) as t:
            t.extractall(scratch, filter="tar")
    except (tarfile.TarError, OSError) as exc:
        raise BuildError(f"--python-runtime {tarball}: cannot unpack ({exc})") from None
    top = os.path.join(scratch, "python")
    if not os.path.isfile(os.path.join(top, "bin", "python3")):
        raise BuildError(f"--python-runtime {tarball}: no python/bin/python3 in it (expected an install_only tarball)")
    os.replace(top, dest)
    shutil.rmtree(scratch)
    for dirpath, dirnames, names in os.walk(dest):  # fixed times: the same tarball, the same tree
        for n in dirnames + names:
            p = os.path.join(dirpath, n)
            if not os.path.islink(p):
                os.utime(p, (315532800, 315532800))


def build(out: str, runtime: str | None = None, lock: str = LOCK) -> None:
    if runtime:
        check_runtime(runtime, lock)
    rootfs = os.path.join(out, "rootfs")
    if os.path.isdir(rootfs):
        shutil.rmtree(rootfs)
    os.makedirs(os.path.join(rootfs, APP_DIR, "bin"), exist_ok=True)
    pyz = os.path.join(out, "installer-ext.pyz")
    build_archive(pyz, lock)
    copy_static(rootfs)
    shutil.copyfile(pyz, os.path.join(rootfs, APP_DIR, "installer-ext.pyz"))
    os.chmod(os.path.join(rootfs, APP_DIR, "installer-ext.pyz"), 0o644)
    launcher = os.path.join(rootfs, APP_DIR, "bin", "installer-ext")
    shutil.copyfile(LAUNCHER, launcher)
    os.chmod(launcher, 0o755)
    if runtime:
        unpack_runtime(runtime, os.path.join(rootfs, APP_DIR, "python"))
    sums = []
    for dirpath, _, names in sorted(os.walk(out)):
        for name in sorted(names):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, out)
            if rel != "SHA256SUMS" and not os.path.islink(path):
                sums.append(f"{sha256(path)}  {rel}\n")
    with open(os.path.join(out, "SHA256SUMS"), "w", encoding="utf-8") as f:
        f.writelines(sorted(sums, key=lambda line: line.split("  ", 1)[1]))


def apply_rootfs(out: str, iso_rootfs: str) -> list[str]:
    """Lay the overlay into an unpacked ISO root filesystem and hook the step in."""
    done = []
    src = os.path.join(out, "rootfs")
    for dirpath, dirnames, names in os.walk(src):
        for name in names + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            s = os.path.join(dirpath, name)
            d = os.path.join(iso_rootfs, os.path.relpath(s, src))
            os.makedirs(os.path.dirname(d), exist_ok=True)
            if os.path.islink(s):
                if os.path.lexists(d):
                    os.unlink(d)
                os.symlink(os.readlink(s), d)
            else:
                shutil.copy2(s, d)
            done.append(os.path.relpath(d, iso_rootfs))
    script = os.path.join(iso_rootfs, "usr/bin/start-installer.sh")
    try:
        with open(script, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise BuildError(f"{script}: cannot read ({exc.strerror}): is this the installer's root filesystem?") from None
    if STEP_MARK not in text:
        lines = text.splitlines(keepends=True)
        at = next((i for i, line in enumerate(lines) if re.match(r"\s*(exec\s+)?(\S*/)?harvester-installer\b", line)), None)
        if at is None:
            raise BuildError(f"{script}: no line that runs harvester-installer; add `{STEP}` before it by hand")
        indent = re.match(r"\s*", lines[at]).group(0)
        lines[at:at] = [f"{indent}{STEP_MARK}\n", f"{indent}{STEP}\n"]
        with open(script, "w", encoding="utf-8") as f:
            f.write("".join(lines))
        done.append("usr/bin/start-installer.sh (step added)")
    return done


def apply_iso(iso: str) -> list[str]:
    cfg = os.path.join(iso, "boot/grub2/harvester.cfg")
    try:
        with open(cfg, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise BuildError(f"{cfg}: cannot read ({exc.strerror}): is this the unpacked ISO?") from None
    if GRUB_MARK in text:
        return []
    if text and not text.endswith("\n"):
        text += "\n"
    text += f'{GRUB_MARK}\nset extra_iso_cmdline="${{extra_iso_cmdline}} {ISO_ARGS}"\n'
    with open(cfg, "w", encoding="utf-8") as f:
        f.write(text)
    return ["boot/grub2/harvester.cfg (IOMMU on for the installer)"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="iso-overlay/build.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.path.join(HERE, "out"), help="output directory (default iso-overlay/out)")
    p.add_argument("--rootfs", metavar="DIR", help="an unpacked installer ISO root filesystem to lay the overlay into")
    p.add_argument("--iso", metavar="DIR", help="an unpacked ISO tree whose boot/grub2/harvester.cfg gets the IOMMU on")
    p.add_argument("--python-runtime", metavar="TARBALL",
                   help="python-build-standalone install_only tarball (pinned in the lock as a `runtime` row) to bundle")
    p.add_argument("--lock", default=LOCK, help="the lock file (default iso-overlay/requirements.lock)")
    args = p.parse_args(argv)
    if sys.version_info < (3, 11):
        sys.stderr.write("build.py: needs Python 3.11 or newer\n")
        return 1
    try:
        build(args.out, args.python_runtime, args.lock)
        print(f"built {os.path.join(args.out, 'installer-ext.pyz')} and {os.path.join(args.out, 'rootfs')}")
        if args.rootfs:
            for line in apply_rootfs(args.out, args.rootfs):
                print(f"rootfs: {line}")
        if args.iso:
            for line in apply_iso(args.iso):
                print(f"iso: {line}")
    except BuildError as exc:
        sys.stderr.write(f"build.py: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
