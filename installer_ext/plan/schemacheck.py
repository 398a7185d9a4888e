"""A fast yes/no check of a document against the plan's JSON Schema.

The plan is read at every boot by several short processes (the binder, one binder run
per device from the udev rule, the kernel-args keeper, first boot). Importing jsonschema
costs about 0.15 s a process, and validating a plan of 3200 VFs with it about 1.4 s
(bench/node_bench.py). A valid plan, the usual case, is therefore checked here: the
schema file is compiled into plain Python checks, and jsonschema is imported only to
word the errors of a plan that fails.

Only the keywords plan.schema.json uses are implemented, with JSON Schema 2020-12's
meaning; compiling a schema with any other keyword raises, so a constraint added to the
schema can never be skipped here unnoticed. `pattern` is a whole-string match, as the
project's validators extend it (installer_ext/jsonschema_util.py: a trailing newline
never passes).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from installer_ext.jsonschema_util import whole_match

Check = Callable[[Any], bool]

_ANNOTATIONS = {"$schema", "$id", "$comment", "title", "description", "$defs", "default"}
_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    # JSON Schema's integer: not a boolean; a float that is whole would be one too, but
    # the plan loader never lets a float through (planfile.parse).
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}


def _type_check(names: list[str]) -> Check:
    if any(n not in _TYPES for n in names):
        raise NotImplementedError(f"type {names!r}")
    exact = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
    kinds = tuple(exact[n] for n in names if n in exact)
    numbers = (int, float) if "number" in names else (int,) if "integer" in names else ()

    def check(v: Any) -> bool:
        if isinstance(v, kinds):
            return True
        return bool(numbers) and isinstance(v, numbers) and not isinstance(v, bool)

    return check


def _same(a: Any, b: Any) -> bool:
    """JSON equality for the scalars of `enum` / `const`: true is not 1."""
    return type(a) is type(b) and a == b


class _Compiler:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Check] = {}
        self.compiling: set[str] = set()

    def ref(self, ref: str) -> Check:
        if not ref.startswith("#/$defs/"):
            raise NotImplementedError(f"$ref {ref!r}: only #/$defs/NAME")
        if ref not in self.refs:
            if ref in self.compiling:
                raise NotImplementedError(f"$ref {ref!r} refers to itself")
            self.compiling.add(ref)
            self.refs[ref] = self.compile(self.root["$defs"][ref[len("#/$defs/"):]])
            self.compiling.discard(ref)
        return self.refs[ref]

    def compile(self, schema: dict[str, Any]) -> Check:  # noqa: C901 - one branch per keyword
        checks: list[Check] = []
        for key, value in schema.items():
            if key in _ANNOTATIONS or key in ("properties", "additionalProperties"):
                continue
            if key == "type":
                checks.append(_type_check([value] if isinstance(value, str) else value))
            elif key == "enum":
                checks.append(lambda v, allowed=value: any(_same(v, a) for a in allowed))
            elif key == "const":
                checks.append(lambda v, c=value: _same(v, c))
            elif key == "pattern":
                rx = re.compile(value)
                checks.append(lambda v, rx=rx: not isinstance(v, str) or whole_match(rx, v))
            elif key == "maxLength":
                checks.append(lambda v, n=value: not isinstance(v, str) or len(v) <= n)
            elif key in ("minimum", "maximum"):
                op = (lambda v, n: v >= n) if key == "minimum" else (lambda v, n: v <= n)
                checks.append(lambda v, n=value, op=op: not _TYPES["number"](v) or op(v, n))
            elif key == "maxItems":
                checks.append(lambda v, n=value: not isinstance(v, list) or len(v) <= n)
            elif key == "maxProperties":
                checks.append(lambda v, n=value: not isinstance(v, dict) or len(v) <= n)
            elif key == "required":
                checks.append(lambda v, keys=tuple(value): not isinstance(v, dict) or all(k in v for k in keys))
            elif key == "items":
                checks.append(_each(self.compile(value), list))
            elif key == "propertyNames":
                checks.append(_each(self.compile(value), dict))
            elif key == "$ref":
                checks.append(self.ref(value))
            else:
                raise NotImplementedError(f"keyword {key!r} is not checked here")
        if "properties" in schema or "additionalProperties" in schema:
            checks.append(self._object(schema))
        if len(checks) == 1:
            return checks[0]

        def all_of(v: Any) -> bool:
            for c in checks:
                if not c(v):
                    return False
            return True

        return all_of

    def _object(self, schema: dict[str, Any]) -> Check:
        props = {k: self.compile(s) for k, s in schema.get("properties", {}).items()}
        extra = schema.get("additionalProperties", True)
        rest: Check | None = None if extra is True else (lambda v: False) if extra is False else self.compile(extra)

        def check(v: Any) -> bool:
            if not isinstance(v, dict):
                return True
            for k, x in v.items():
                c = props.get(k)
                if c is not None:
                    if not c(x):
                        return False
                elif rest is not None and not rest(x):
                    return False
            return True

        return check


def _each(check: Check, kind: type) -> Check:
    """`check` on every item of a list (or every key of an object)."""

    def each(v: Any) -> bool:
        if not isinstance(v, kind):
            return True
        for x in v:
            if not check(x):
                return False
        return True

    return each


def compile_schema(schema: dict[str, Any]) -> Check:
    """A function that says whether a document is valid against `schema`."""
    return _Compiler(schema).compile(schema)
