"""The device plugins' manifests, shipped as static YAML in templates/firstboot/.

Nothing in them varies per node (the node is chosen by the label first boot sets), so
they are plain YAML, not jinja2. They are read through importlib.resources from the
package `installer_ext.templates` (pyproject maps templates/ to it, so the wheel and the
node's .pyz carry them) and, in a source checkout, from the repository's
templates/firstboot/.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from pathlib import Path
from typing import Any

import yaml

from installer_ext.errors import ExtError
from installer_ext.firstboot.objects import APPLIABLE

PLUGIN_TEMPLATES: dict[str, tuple[str, ...]] = {
    "nvidia": ("nvidia-runtimeclass.yaml", "nvidia-device-plugin.yaml"),
    "amd": ("amd-device-plugin.yaml",),
}

_SOURCE_DIR = Path(__file__).resolve().parents[2] / "templates" / "firstboot"


def read_template(name: str) -> str:
    # installed wheel or .pyz: the package `installer_ext.templates` (pyproject maps the
    # top-level templates/ to it); a plain source checkout: the repository's directory.
    for package, parts in (("installer_ext.templates", ("firstboot",)), ("installer_ext", ("templates", "firstboot"))):
        try:
            res = importlib.resources.files(package)
            for part in (*parts, name):
                res = res.joinpath(part)
            if res.is_file():
                return res.read_text(encoding="utf-8")
        except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError, TypeError):
            continue
    path = _SOURCE_DIR / name
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ExtError(f"template firstboot/{name} not found in the package nor in {_SOURCE_DIR}: {exc.strerror}") from None


def manifests(plugin: str) -> list[dict[str, Any]]:
    """The objects to apply for `plugin`, in order (RuntimeClass before its users)."""
    out = []
    for name in PLUGIN_TEMPLATES[plugin]:
        for doc in yaml.safe_load_all(read_template(name)):
            if not doc:
                continue
            if (doc.get("apiVersion"), doc.get("kind")) not in APPLIABLE or not (doc.get("metadata") or {}).get("name"):
                raise ExtError(f"template firstboot/{name}: {doc.get('apiVersion')} {doc.get('kind')} cannot be applied")
            out.append(doc)
    return out


def fingerprint(plugins: list[str]) -> str:
    """Changes when the manifests change, so an upgraded package re-applies them."""
    h = hashlib.sha256()
    for p in sorted(plugins):
        for name in PLUGIN_TEMPLATES[p]:
            h.update(name.encode() + b"\0" + read_template(name).encode())
    return h.hexdigest()[:16]
