"""The application archive the node runs (installer-ext.pyz): the running one, or one
packed from the running package.

`iso-overlay/build.py` builds the shipped archive from the pinned lock; `render` on a
development checkout has no archive, so it packs the running package and the pure-Python
libraries it imports (their compiled speedups left out: each falls back to its
pure-Python code, as in the shipped archive). Both are zip applications with fixed
timestamps and sorted entries: the same files give the same bytes.
"""

from __future__ import annotations

import importlib.util
import io
import os
import stat
import sys
import zipfile

from installer_ext.errors import BadInput
from installer_ext.fsutil import read_input

EPOCH = (1980, 1, 1, 0, 0, 0)  # zip's earliest time: every entry gets it
MAX_APP_BYTES = 64 << 20
MAIN = (
    "# installer-ext as a zip application: python3 installer-ext.pyz COMMAND ...\n"
    "import sys\n"
    "if sys.version_info < (3, 11):\n"
    "    sys.exit('installer-ext: needs Python 3.11 or newer, this is ' + sys.version.split()[0])\n"
    "from installer_ext.cli import main\n"
    "sys.exit(main())\n"
)
# Top-level modules of the libraries the archive carries (iso-overlay/requirements.lock;
# tests/test_iso_overlay.py checks that the two archives carry the same ones).
LIBRARIES = ("urwid", "wcwidth", "typing_extensions", "jinja2", "markupsafe", "yaml", "jsonschema",
             "attr", "attrs", "pyrsistent", "pyudev")
_SKIP_SUFFIXES = (".so", ".pyd", ".pyc", ".c", ".h", ".pyx")


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """A zip application (with a python3 shebang) of `files`, reproducibly."""
    buf = io.BytesIO()
    buf.write(b"#!/usr/bin/env python3\n")
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.create_system = 3
            z.writestr(info, files[name])
    return buf.getvalue()


def _tree(base: str, arc_prefix: str, out: dict[str, bytes]) -> None:
    for dirpath, dirnames, names in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for n in sorted(names):
            if n.endswith(_SKIP_SUFFIXES):
                continue
            p = os.path.join(dirpath, n)
            with open(p, "rb") as f:
                out[arc_prefix + os.path.relpath(p, base).replace(os.sep, "/")] = f.read()


def package_files() -> dict[str, bytes]:
    """The running installer_ext package (templates inside it) and its libraries."""
    import installer_ext

    pkg = os.path.dirname(os.path.abspath(installer_ext.__file__))
    out: dict[str, bytes] = {}
    _tree(pkg, "installer_ext/", out)
    checkout_templates = os.path.join(os.path.dirname(pkg), "templates")
    if os.path.isdir(checkout_templates):
        _tree(checkout_templates, "installer_ext/templates/", out)
    for name in LIBRARIES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        if spec.submodule_search_locations:
            _tree(os.path.dirname(spec.origin), name + "/", out)
        elif spec.origin.endswith(".py"):
            with open(spec.origin, "rb") as f:
                out[name + ".py"] = f.read()
    out["__main__.py"] = MAIN.encode()
    return out


def running_archive() -> str | None:
    """The .pyz this process runs from."""
    main = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return main if main.endswith(".pyz") and os.path.isfile(main) else None


def app_bytes(path: str | None) -> bytes:
    """The archive to lay on the node: `path`, else the running one, else packed from
    the running package. BadInput naming the file when it cannot be read."""
    path = path or running_archive()
    if path is None:
        return zip_bytes(package_files())
    data = read_input(path, MAX_APP_BYTES, "an installer-ext archive")
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise BadInput(f"{path}: not a zip application (installer-ext.pyz)")
    return data
