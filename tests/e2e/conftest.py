"""Real-kernel tests: every test here carries the `e2e` marker and needs QEMU, except in
modules that say `E2E = False` (tests of the harness's own pure code, e.g. the yip
stand-in, which run everywhere).

Without qemu-system-x86_64 (or busybox-static, cpio, or a way to fetch the kernel) the
tests skip with a one-line reason on a developer machine, and FAIL in CI (CI or
INSTALLER_EXT_CI set): CI must never pass by skipping. `.ci/e2e-setup` installs it all.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import unavailable

from . import assets, qemu
from . import iso as iso_mod

SETUP_HINT = ".ci/e2e-setup installs it (qemu-system-x86 busybox-static cpio kmod systemd udev)"


def missing_requirement() -> str | None:
    """Why this machine cannot run the suite, in one line; None when it can."""
    if shutil.which(qemu.QEMU) is None:
        return f"{qemu.QEMU} not found"
    if not Path(assets.BUSYBOX).is_file():
        return f"{assets.BUSYBOX} not found (busybox-static)"
    if shutil.which("cpio") is None:
        return "cpio not found"
    if shutil.which("timeout") is None:
        return "timeout (coreutils) not found"
    cache = assets.cache_dir()
    if not assets.cached_kernels(cache) and not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        return f"no guest kernel in {cache} and no apt-get/dpkg-deb to fetch one"
    return None


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents and _boots(item):
            item.add_marker(pytest.mark.e2e)


def _boots(item) -> bool:
    return getattr(getattr(item, "module", None), "E2E", True)


def _unavailable(reason: str):
    unavailable(f"e2e: {reason}; {SETUP_HINT}")


@pytest.fixture(scope="session")
def e2e_assets() -> assets.Assets:
    """The guest kernel and initramfs (fetched and built once, then cached)."""
    reason = missing_requirement()
    if reason:
        _unavailable(reason)
    try:
        return assets.ensure()
    except assets.AssetError as e:
        pytest.fail(f"e2e assets: {e}", pytrace=False)


@pytest.fixture(scope="session")
def e2e_kmod() -> None:
    """For boots with modprobe="kmod": the guest runs this machine's kmod."""
    if shutil.which("kmod") is None and not Path("/sbin/modprobe").is_file():
        _unavailable("kmod not found (boot-time vfio-pci.ids needs kmod's modprobe)")


@pytest.fixture(scope="session")
def e2e_systemd() -> None:
    """For boots with init="systemd": the guest boots this machine's systemd and udev."""
    for tool, package in (("/lib/systemd/systemd", "systemd"), ("/lib/systemd/systemd-udevd", "udev"),
                          ("/sbin/depmod", "kmod")):
        if not Path(tool).exists():
            _unavailable(f"{tool} not found (apt-get install {package})")


@pytest.fixture(scope="session")
def iso(e2e_assets, tmp_path_factory) -> iso_mod.IsoBoot:
    """The installer ISO's boot (tests/e2e/iso.py): detect and the suite's renders."""
    return iso_mod.start(e2e_assets, tmp_path_factory.mktemp("iso"))


@pytest.fixture(autouse=True)
def _e2e_available(request):
    """Every e2e test needs the assets: skip or fail before anything boots."""
    if _boots(request.node):
        request.getfixturevalue("e2e_assets")


def pytest_terminal_summary(terminalreporter):
    if qemu.TIMINGS:
        boots = ", ".join(f"{name} {wall:.1f}s (rc {rc})" for name, wall, rc in qemu.TIMINGS)
        terminalreporter.write_line(f"e2e boots: {boots}")
