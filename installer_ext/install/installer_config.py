"""`$HARVESTER_CONFIG`: the Go installer's own copy of the install config.

harvester-installer pkg/console/util.go (v1.4-v1.8) `saveTemp(hvstConfig, "harvester")`
writes `yaml.Marshal` (gopkg.in/yaml.v3 v3.0.1) of its HarvesterConfig struct
(pkg/config/config.go). yaml.v3 ignores the `json` tags, so every key is the lowercased
Go field name (`managementinterface`, `hwaddr`, `datadisk`, `configurl`), every field is
present (no omitempty without a yaml tag), and keys the struct does not have, such as our
`pciPassthrough`, are gone. harv-install copies the same file to /oem/harvester.config.

From it we take the `install` keys the planner needs (device, dataDisk,
managementInterface): what the installer really installed to, whatever the user's
original said.
"""

from __future__ import annotations

import os
from typing import Any

from installer_ext import paths
from installer_ext.config import keys
from installer_ext.config.load import read_yaml
from installer_ext.errors import BadInput

CONFIG_ENV = "HARVESTER_CONFIG"
SAVED_COPY = "oem/harvester.config"  # harv-install save_configs


def locate(environ: dict[str, str] | None = None, target_root: str | None = None) -> str | None:
    """`$HARVESTER_CONFIG`; without it, given the installed system's root, the copy
    harv-install saved there (the hook run by hand after the install)."""
    env = os.environ if environ is None else environ
    found = (env.get(CONFIG_ENV) or "").strip() or None
    if found is None and target_root:
        saved = paths.under(target_root, SAVED_COPY)
        if os.path.exists(saved):
            return saved
    return found


def install_section(path: str) -> dict[str, Any]:
    """The `install` mapping of the installer's config file (its own spelling)."""
    doc = read_yaml(path)
    if not isinstance(doc, dict):
        raise BadInput(f"{path}: the top level is not a mapping")
    for k, v in doc.items():
        if keys.is_spelling(k, "install"):
            if v is None:
                return {}
            if not isinstance(v, dict):
                raise BadInput(f"{path}: install is not a mapping")
            return v
    return {}
