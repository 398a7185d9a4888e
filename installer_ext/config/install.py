"""The keys of the installer's `install` section that the planner needs (the install
disk, the data disk, the management interfaces), checked with install.schema.json.

The section belongs to the Harvester installer, which reads many more keys: those are
left alone, whatever they hold. Spellings are the installer's (see `keys`).
"""

from __future__ import annotations

import logging
from typing import Any

from installer_ext.config.messages import schema_errors
from installer_ext.config.model import InstallInfo, ManagementInterface
from installer_ext.config.schemas import INSTALL_SCHEMA, canonical_keys, validator

log = logging.getLogger(__name__)

INSTALL = "install"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_install(install: Any, errors: list[str], present: bool) -> InstallInfo:
    """The `install` value -> InstallInfo; problems are appended to `errors`.
    `present`: the document has the section (even empty)."""
    if not present or install is None:
        return InstallInfo(known=False)
    mine: list[str] = []
    install = canonical_keys(install, mine, INSTALL, INSTALL_SCHEMA)
    mine += schema_errors(validator(INSTALL_SCHEMA).iter_errors(install), INSTALL)
    if mine:
        errors += mine
        return InstallInfo(known=False)
    mi = install.get("managementInterface") or {}
    mgmt = []
    for i, iface in enumerate(mi.get("interfaces") or []):
        name, hw = _text(iface.get("name")), _text(iface.get("hwAddr"))
        if name or hw:
            path = f"{INSTALL}.managementInterface.interfaces[{i}]"
            mgmt.append(ManagementInterface(name, hw.lower() if hw else None, path))
    return InstallInfo(
        known=True,
        mode=_text(install.get("mode")),
        device=_text(install.get("device")),
        data_disk=_text(install.get("dataDisk")),
        management=tuple(mgmt),
    )
