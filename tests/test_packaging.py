"""The wheel ships every package and data file of the source tree: pyproject.toml names
its packages one by one (templates/ is mapped into the package), so a new package that is
not added there would be missing from an installed installer-ext."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

from tests.cli import REPO


def _source_files() -> set[str]:
    """Paths the wheel must hold: every .py and data file of the package directories."""
    out = set()
    top = os.path.join(REPO, "installer_ext")
    for dirpath, dirnames, names in os.walk(top):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        if "__init__.py" not in names:
            continue
        for n in names:
            if n.endswith((".py", ".json")):
                out.add(os.path.relpath(os.path.join(dirpath, n), REPO))
    for dirpath, _, names in os.walk(os.path.join(REPO, "templates")):
        for n in names:
            rel = os.path.relpath(os.path.join(dirpath, n), os.path.join(REPO, "templates"))
            if n.endswith((".j2", ".yaml")):
                out.add(os.path.join("installer_ext", "templates", rel))
    return out


def test_the_wheel_holds_every_package_and_data_file(tmp_path):
    # Built from a copy: an in-tree build reuses build/lib, which can hide a package the
    # package list lacks.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(REPO, name), src / name)
    for name in ("installer_ext", "templates"):
        shutil.copytree(os.path.join(REPO, name), src / name, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "dist"
    p = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert p.returncode == 0, p.stdout + p.stderr
    (wheel,) = os.listdir(out)
    with zipfile.ZipFile(out / wheel) as z:
        shipped = {n for n in z.namelist() if n.startswith("installer_ext/")}
    want = _source_files()
    assert "installer_ext/install/hook.py" in want and "installer_ext/plan/plan.schema.json" in want
    assert want - shipped == set()
