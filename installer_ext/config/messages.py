"""The words of config errors: how a value is quoted, what kind of value it is, and a
JSON Schema error turned into one English line that names the key path.

One way to quote: `quote` (JSON style, escapes visible: a key or value with a line
break or a control character shows as `"a\\nb"`, never as a broken line).
"""

from __future__ import annotations

import difflib
import json
import logging
from typing import Any

log = logging.getLogger(__name__)

MAX_SHOWN = 60


def quote(value: Any) -> str:
    """A key or value as the user would recognise it in a message."""
    # json.dumps escapes every non-ASCII character by default (ensure_ascii).
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = json.dumps(str(value))
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def type_name(value: Any, null: str = "empty") -> str:
    """What kind of value this is, with its article. `null` names None: "empty" for a
    YAML key with nothing after it, "null" in the plan file's JSON."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return null
    if isinstance(value, (int, float)):
        return "a number"
    return "a string"


def path_order(parts) -> list[tuple[int, int | str]]:
    """Sort key of a key path: list indexes in number order (sriov[2] before
    sriov[10]), keys by name."""
    return [(0, p) if isinstance(p, int) else (1, str(p)) for p in parts]


def key_path(base: str, parts) -> str:
    out = base
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def expected(schema: dict[str, Any]) -> str:
    """What the schema asks for, from its description (`a boolean: ...` -> `a boolean`)."""
    desc = schema.get("description")
    if desc:
        return desc.partition(": ")[0]
    t = schema.get("type")
    return f"of type {t}" if t else "valid here"


def did_you_mean(word: str, choices: list[str], fold=lambda s: s.lower()) -> str:
    """` (did you mean "x"?)` for the closest of `choices`, or nothing."""
    folded = {fold(c): c for c in choices}
    hint = difflib.get_close_matches(fold(word), list(folded))  # best first; difflib's cutoff 0.6
    return f" (did you mean {quote(folded[hint[0]])}?)" if hint else ""


# The order in which errors on one key path are kept: the first one found in this
# list is the line for that key (a null devicePlugin breaks both "type" and "enum":
# one mistake, one line).
_PRECEDENCE = ("type", "required", "additionalProperties", "minProperties", "maxProperties", "enum", "pattern")


def _rank(err) -> int:
    return _PRECEDENCE.index(err.validator) if err.validator in _PRECEDENCE else len(_PRECEDENCE)


def schema_errors(errors, base: str) -> list[str]:
    """jsonschema errors -> one line per mistake, in key order."""
    by_path: dict[tuple, list] = {}
    for err in errors:
        by_path.setdefault(tuple(err.absolute_path), []).append(err)
    lines: list[str] = []
    for path in sorted(by_path, key=path_order):
        first = min(by_path[path], key=_rank)
        lines += schema_error_lines(first, base)
    return lines


def schema_error_lines(err, base: str) -> list[str]:
    path = key_path(base, err.absolute_path)
    v = err.validator
    inst = err.instance
    if v == "additionalProperties":
        from installer_ext.config.keys import yaml_key

        allowed = list(err.schema.get("properties", {}))
        return [
            f"{key_path(path, [key])}: unknown key{did_you_mean(str(key), allowed, lambda s: yaml_key(s).replace('_', ''))}; "
            f"expected one of {', '.join(allowed)}"
            for key in inst
            if key not in allowed
        ]
    if v == "required":
        return [f"{path}: missing key {quote(k)}" for k in err.validator_value if k not in inst]
    if v in ("minProperties", "maxProperties"):
        found = ", ".join(map(str, inst)) or "nothing"
        keys = ", ".join(err.schema.get("properties", {}))
        return [f"{path}: {expected(err.schema)} needs exactly one of {keys} (found: {found})"]
    if inst is None:
        return [f"{path}: empty, expected {expected(err.schema)}"]
    if v == "type":
        return [f"{path}: {quote(inst)} is {type_name(inst)}, expected {expected(err.schema)}"]
    if v == "enum":
        choices = [str(x) for x in err.validator_value]
        return [f"{path}: {quote(inst)} is not {expected(err.schema)}{did_you_mean(str(inst), choices)}"]
    if v in ("pattern", "minimum", "maximum", "maxLength", "maxItems"):
        return [f"{path}: {quote(inst)} is not {expected(err.schema)}"]
    return [f"{path}: {err.message}"]
