"""Load an install config: the `pciPassthrough` section (`section`) and the `install`
keys the planner needs (`install`), from YAML read as the Go installer reads it
(`goyaml`), into a typed `Config`.

Problems are raised together as BadInput (exit 2), one line each. A top-level key
that looks like a misspelled section is a warning, not an error: the installer
ignores unknown top-level keys, and so does this loader.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from installer_ext.config import keys
from installer_ext.config.goyaml import MAX_BYTES, parse_yaml, read_text
from installer_ext.config.install import INSTALL, parse_install
from installer_ext.config.messages import did_you_mean, quote, type_name
from installer_ext.config.model import Config
from installer_ext.config.schemas import load_schema
from installer_ext.config.section import SECTION, parse_section
from installer_ext.errors import BadInput

log = logging.getLogger(__name__)

__all__ = ["SECTION", "INSTALL", "MAX_BYTES", "load_config", "parse_config", "read_yaml", "load_schema", "section_key"]

# The top-level fields of harvester-installer's HarvesterConfig (pkg/config/config.go,
# v1.8): never taken for a misspelled section.
INSTALLER_TOP_KEYS = (
    "schemeVersion", "serverUrl", "token", "sans", "os", "install", "runtimeVersion", "rancherVersion",
    "harvesterChartVersion", "monitoringChartVersion", "systemSettings", "loggingChartVersion",
    "kubeovnChartVersion",
)
OURS = (SECTION, INSTALL)


def _folded(name: str) -> str:
    return keys.yaml_key(name).replace("_", "").replace("-", "")


def section_key(doc: dict[Any, Any]) -> Any | None:
    """The key under which `doc` holds the pciPassthrough section (any spelling the
    installer would take for it), or None."""
    return next((k for k in doc if keys.is_spelling(k, SECTION)), None)


def near_misses(doc: dict[Any, Any]) -> list[str]:
    """One warning per unknown top-level key that looks like one this program reads."""
    out = []
    for key in doc:
        if keys.canonical(key, OURS + INSTALLER_TOP_KEYS) is not None:
            continue
        hint = did_you_mean(str(key), list(OURS), _folded)
        if hint:
            out.append(f"{quote(key)}: unknown top-level key, ignored as the installer ignores it{hint}")
    return out


def parse_config(doc: Any, source: str = "<config>") -> Config:
    if not isinstance(doc, dict):
        raise BadInput(f"{source}: the top level is {type_name(doc)}, expected a mapping with a {SECTION} section")
    top, errors = keys.canonicalize(doc, OURS, "")
    choices = parse_section(top.get(SECTION), errors)
    install = parse_install(top.get(INSTALL), errors, INSTALL in top)
    if errors:
        raise BadInput(*errors)
    return Config(
        choices=choices,
        install=install,
        source=source,
        has_section=SECTION in top,
        warnings=tuple(near_misses(doc)),
        document=doc,
    )


def _read(path: str) -> tuple[str, Any]:
    text = read_text(path)
    if not text.strip():
        raise BadInput(f"{path}: empty file; expected an install config with a {SECTION} section")
    doc = parse_yaml(text, path)
    if doc is None:
        raise BadInput(f"{path}: empty file (only comments); expected an install config with a {SECTION} section")
    return text, doc


def read_yaml(path: str) -> Any:
    """The data of a YAML config file, or BadInput with one clear line."""
    return _read(path)[1]


def load_config(path: str) -> Config:
    text, doc = _read(path)
    config = dataclasses.replace(parse_config(doc, path), text=text)
    log.debug("config %s: %s", path, config)
    return config
