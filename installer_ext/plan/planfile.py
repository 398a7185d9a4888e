"""Read a plan file and check it against the plan's JSON Schema before anything uses it
(bind, unbind, firstboot, the kernel-args keeper).

The plan comes from disk (/oem), so it is input like any other, and a hand-edited one
is met at every boot. The file is read bounded (size), parsed bounded (nesting, number
lengths, duplicate keys), then validated against `plan.schema.json` (JSON Schema
2020-12, the one description of the format; `installer-ext schema --plan` prints it):
every address that may be joined to a sysfs path matches the PCI address pattern
exactly (no `../`, no trailing newline, no short form), every id is four hex digits,
every driver name is a plain name. What a schema cannot say (an address listed twice)
is checked after it. A bad plan is `BadInput`: one line naming the file and the key
path, exit 2.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any

from installer_ext import jsonschema_util
from installer_ext.config.messages import did_you_mean, path_order, quote, type_name
from installer_ext.errors import BadInput
from installer_ext.fsutil import read_input
from installer_ext.plan.model import Plan

SCHEMA_FILE = "plan.schema.json"
MAX_PLAN_BYTES = 16 << 20
MAX_DEPTH = 16  # a plan is 4 levels deep (groups[0].devices[0])
MAX_VALUES = 2_000_000
MAX_NUMBER_CHARS = 24  # the largest number in a plan is an IOMMU group (10 digits)


class _Bad(Exception):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")


@functools.lru_cache(maxsize=1)
def _schema_text() -> bytes:
    # The module's own loader reads a file next to it from a source tree, a wheel or the
    # .pyz (zipimport) alike, without importlib.resources (18 ms at every boot).
    return __spec__.loader.get_data(os.path.join(os.path.dirname(__file__), SCHEMA_FILE))  # type: ignore[union-attr]


def load_schema() -> dict[str, Any]:
    """The plan's JSON Schema (a fresh copy: callers may change it)."""
    return json.loads(_schema_text())


# --- bounded parsing ---------------------------------------------------------------------

class _Number(ValueError):
    pass


class _Twice(ValueError):
    pass


def _int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Number(f"a number of {len(text)} digits, longer than any plan value ({MAX_NUMBER_CHARS})")
    return int(text)


def _float(text: str) -> float:
    shown = text if len(text) <= MAX_NUMBER_CHARS else text[:MAX_NUMBER_CHARS] + "..."
    raise _Number(f"{shown} is not a whole number (every number of a plan is)")


def _constant(name: str) -> float:
    raise _Number(f"{name} is not a JSON value")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Twice(f"key {quote(key)} given twice in one object")
        out[key] = value
    return out


def _check_shape(data: Any) -> None:
    """Depth and size, walked level by level (no recursion)."""
    count, depth, level = 0, 0, [data]
    while level:
        if depth > MAX_DEPTH:
            raise _Bad("(top level)", f"nested more than {MAX_DEPTH} levels deep, not a plan")
        count += len(level)
        if count > MAX_VALUES:
            raise _Bad("(top level)", f"more than {MAX_VALUES} values, not a plan")
        below: list[Any] = []
        for node in level:
            if isinstance(node, dict):
                below.extend(node.values())
            elif isinstance(node, list):
                below.extend(node)
        level, depth = below, depth + 1


def parse(raw: bytes, path: str) -> Any:
    """The JSON value of a plan file's bytes; BadInput (one line) for anything that is
    not plain, bounded JSON."""
    try:
        text = raw.decode()  # UTF-8
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 text (bad byte at offset {exc.start})") from None
    try:
        data = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant, object_pairs_hook=_pairs)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except (_Number, _Twice) as exc:
        raise BadInput(f"{path}: {exc}") from None
    except RecursionError:
        raise BadInput(f"{path}: nested more than {MAX_DEPTH} levels deep, not a plan") from None
    try:
        _check_shape(data)
    except _Bad as exc:
        raise BadInput(f"{path}: {exc}") from None
    return data


# --- the schema --------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _fast_check():
    from installer_ext.plan.schemacheck import compile_schema

    return compile_schema(load_schema())


@functools.lru_cache(maxsize=1)
def _validator():
    # jsonschema is imported by the first call: only a plan that fails the fast check pays
    # for it. `pattern` is a whole-string match: `0000:01:00.0\n` never passes.
    return jsonschema_util.validator(load_schema())


_PLAIN_KEY = re.compile(r"\A[A-Za-z0-9_-]{1,64}\Z")


def _key(name: object) -> str:
    """A key as it may appear in a key path: plain names as they are, anything else
    (a newline, a dot, a very long name) quoted and escaped, so the line stays one line."""
    return str(name) if isinstance(name, str) and _PLAIN_KEY.match(name) else quote(name)


def _key_path(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{_key(p)}" if out else _key(p))
    return out or "(top level)"


_DEFS = "#/$defs/"


def _expected(schema: dict[str, Any]) -> str:
    """What `schema` asks for: its description, else that of the definition it refers to
    (`{"$ref": "#/$defs/address"}`), else "valid here"."""
    desc = schema.get("description")
    ref = schema.get("$ref")
    if desc is None and ref and ref.startswith(_DEFS):
        desc = load_schema()["$defs"][ref.removeprefix(_DEFS)].get("description")
    return desc or "valid here"


def _message(err) -> tuple[str, str]:
    """(key path, what is wrong) for one schema error: the value and what was expected."""
    path = _key_path(err.absolute_path)
    v, inst, schema = err.validator, err.instance, err.schema
    if v == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        key = next(k for k in inst if k not in allowed)
        return _key_path([*err.absolute_path, key]), f"unknown key{did_you_mean(str(key), allowed)}"
    if v == "required":
        missing = next(k for k in err.validator_value if k not in inst)
        return path, f"missing key {quote(missing)}"
    if v == "type":
        return path, f"{quote(inst)} is {type_name(inst, null='null')}, expected {_expected(schema)}"
    if v in ("maxItems", "maxProperties"):
        return path, f"more than {err.validator_value} entries"
    return path, f"{quote(inst)} is not {_expected(schema)}"


def _sort_key(err) -> tuple:
    return (path_order(err.absolute_path), str(err.validator))


def _semantic(data: dict[str, Any]) -> None:
    """What the schema cannot say: an address may be listed once per list."""
    for name in ("passthrough", "sriov"):
        seen: dict[str, str] = {}
        for i, item in enumerate(data[name]):
            key = f"{name}[{i}]"
            address = item["address"]
            if address in seen:
                raise _Bad(f"{key}.address", f"{quote(address)} is listed twice (also {seen[address]})")
            seen[address] = key


def validate(data: object) -> None:
    """Raise _Bad for the first problem in key order, naming its key path (and how
    many more there are). A valid plan is recognised without jsonschema (schemacheck);
    jsonschema words what is wrong with one that is not."""
    if _fast_check()(data):
        _semantic(data)  # type: ignore[arg-type]
        return
    errors = sorted(_validator().iter_errors(data), key=_sort_key)
    if not errors:  # the two checks of one schema disagree: refuse, never guess
        raise _Bad("(top level)", "does not pass the plan schema's check")
    n = len(errors) - 1
    more = f" (and {n} more problem{'s' if n > 1 else ''})" if n else ""
    key, what = _message(errors[0])
    raise _Bad(key, what + more)


# --- loading -----------------------------------------------------------------------------

@dataclass(frozen=True)
class PlanFile:
    """A validated plan and the file it came from: `digest` is the SHA-256 of the file's
    bytes, what a mark made for this plan (given back) refers to."""

    path: str
    plan: Plan
    digest: str


def read_plan_file(path: str) -> PlanFile:
    """The validated plan at `path`; BadInput (exit 2) naming the file and the key."""
    raw = read_input(path, MAX_PLAN_BYTES, "a plan file")
    data = parse(raw, path)
    try:
        validate(data)
        plan = Plan.from_json(data)  # type: ignore[arg-type]
    except _Bad as exc:
        raise BadInput(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:  # a schema that lets through what from_json cannot take
        raise BadInput(f"{path}: invalid plan: {type(exc).__name__}: {exc}") from None
    return PlanFile(path, plan, hashlib.sha256(raw).hexdigest())


def load_plan(path: str) -> Plan:
    """The validated plan at `path`; BadInput (exit 2) naming the file and the key."""
    return read_plan_file(path).plan
