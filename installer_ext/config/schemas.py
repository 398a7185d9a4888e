"""The JSON Schemas of what installer-ext reads from an install config, and what is
derived from them: the validators, and the keys each mapping level knows (for the
spellings in `keys`). The schema files are the one list of keys; nothing repeats it.

- schema.json: the `pciPassthrough` section (printed by `installer-ext schema`);
- install.schema.json: the keys of the installer's `install` section we read.
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import json
import logging
from typing import Any

from installer_ext import jsonschema_util
from installer_ext.config import keys
from installer_ext.config.messages import key_path

log = logging.getLogger(__name__)

SECTION_SCHEMA = "schema.json"
INSTALL_SCHEMA = "install.schema.json"


@functools.lru_cache(maxsize=4)
def _schema(name: str) -> dict[str, Any]:
    # importlib.resources: read from a source tree, a wheel or the .pyz alike.
    text = importlib.resources.files("installer_ext.config").joinpath(name).read_text(encoding="utf-8")
    return json.loads(text)


def load_schema(name: str = SECTION_SCHEMA) -> dict[str, Any]:
    """A copy of a schema (the callers may keep or change it)."""
    return copy.deepcopy(_schema(name))


def _resolve(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local $refs are used here: {ref}")
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        node = target
    return node


def canonical_keys(value: Any, errors: list[str], base: str, name: str) -> Any:
    """`value` with the keys of every mapping the schema `name` describes renamed to
    their canonical spelling (a copy; the document is left as it was read). A field
    given twice under two spellings is a line in `errors`."""
    root = _schema(name)
    return _canonical(value, root, root, base, errors)


def _canonical(value: Any, node: dict[str, Any], root: dict[str, Any], path: str, errors: list[str]) -> Any:
    node = _resolve(root, node)
    props = node.get("properties")
    if isinstance(value, dict) and props:
        value, errs = keys.canonicalize(value, props, path)
        errors += errs
        for field, sub in props.items():
            if field in value:
                value[field] = _canonical(value[field], sub, root, key_path(path, [field]), errors)
        return value
    items = node.get("items")
    if isinstance(value, list) and isinstance(items, dict):
        return [_canonical(v, items, root, key_path(path, [i]), errors) for i, v in enumerate(value)]
    return value


@functools.lru_cache(maxsize=4)
def validator(name: str):
    """A Draft 2020-12 validator of schema `name` whose `pattern` matches the whole
    string, as the schema means it (installer_ext/jsonschema_util.py)."""
    return jsonschema_util.validator(_schema(name))
