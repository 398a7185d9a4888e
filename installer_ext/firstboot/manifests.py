"""The device plugins' manifests, shipped as static YAML in templates/firstboot/.

Nothing in them varies per node (the node is chosen by the label first boot sets), so
they are plain YAML, not jinja2. `installer_ext.templating.template_source` finds them in
a source checkout, an installed wheel (installer_ext/templates/) and the node's .pyz.
"""

from __future__ import annotations

import hashlib
from typing import Any

import yaml

from installer_ext.errors import ExtError
from installer_ext.firstboot.objects import APPLIABLE
from installer_ext.templating import template_source

PLUGIN_TEMPLATES: dict[str, tuple[str, ...]] = {
    "nvidia": ("nvidia-runtimeclass.yaml", "nvidia-device-plugin.yaml"),
    "amd": ("amd-device-plugin.yaml",),
}


def read_template(name: str) -> str:
    try:
        return template_source(f"firstboot/{name}")
    except FileNotFoundError as exc:
        raise ExtError(str(exc)) from None


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
