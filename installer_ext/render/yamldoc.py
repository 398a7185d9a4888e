"""YAML documents built as data and dumped with PyYAML: valid YAML by construction.

File contents become literal blocks (`|`) where YAML allows one (PyYAML falls back to a
quoted scalar otherwise, still valid); file modes are written as octal (`0644`), which
yip (rancher/yip pkg/schema: `permissions` is a uint32 read with YAML 1.1 rules) reads as
the mode.
"""

from __future__ import annotations

from typing import Any


class Literal(str):
    """A string dumped as a literal block."""


class Octal(int):
    """An int dumped in octal with a leading 0 (a file mode)."""


def dump(doc: Any, header: str = "") -> bytes:
    import yaml  # imported here: `detect` must not pay for it

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(
        Literal, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", str(s), style="|")
    )
    Dumper.add_representer(Octal, lambda d, n: d.represent_scalar("tag:yaml.org,2002:int", "0%o" % int(n)))
    text = yaml.dump(doc, Dumper=Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1 << 16)
    prefix = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return (prefix + text).encode("utf-8")
