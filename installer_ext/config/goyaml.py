"""Read a YAML config the way the Harvester installer's Go code reads it.

harvester-installer v1.8 decodes its config with gopkg.in/yaml.v3 (go.mod: v3.0.1;
pkg/config/schemas.go `LoadHarvesterConfig`: `yaml.Unmarshal` into a map). What
differs from PyYAML's safe loader, and what this loader does like yaml.v3:

- No YAML 1.1 base-60 numbers: an unquoted `0000:01:00.0` or `02:00.0` stays a
  string instead of becoming 60.0 or 120.0 (yaml.v3 resolve.go has no sexagesimal).
- A key given twice in one mapping is an error (yaml.v3 decode.go `mapping`,
  `uniqueKeys`: "mapping key ... already defined"); `<<` given twice too.
- Merge keys: `<<: *defaults` or `<<: [*a, *b]` copy the keys of those mappings
  that the mapping does not set itself; among several merged mappings the first one
  that has a key wins (yaml.v3 decode.go `merge`: the mapping's own keys are
  recorded first, then each merged mapping in order only fills what is left).
  Anything else after `<<` is an error ("map merge requires map or sequence of maps").
- A mapping or a list as a key is an error (yaml.v3: "invalid map key").
"""

from __future__ import annotations

import logging
import re
from typing import Any

import yaml

from installer_ext.config.messages import quote
from installer_ext.config.shape import check_shape
from installer_ext.errors import BadInput
from installer_ext.fsutil import read_input

log = logging.getLogger(__name__)

MAX_BYTES = 1 << 20
MERGE_TAG = "tag:yaml.org,2002:merge"


class _Resolver(yaml.resolver.Resolver):
    """YAML 1.1 scalars without base-60 numbers (see the module docstring)."""


_Resolver.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
    for first, resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
}
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"""^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$""", re.X),
    list("-+0123456789"),
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


class _Loader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    yaml.constructor.SafeConstructor,
    _Resolver,
):
    """A SafeLoader with the resolver above that checks every mapping's own keys
    before anything is constructed (merges flatten mappings in place)."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        _Resolver.__init__(self)

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        self._check_keys(node)
        return self.construct_document(node)

    def _check_keys(self, root: yaml.Node) -> None:
        done: set[int] = set()
        stack = [root]
        while stack:
            node = stack.pop()
            if id(node) in done:
                continue
            done.add(id(node))
            if isinstance(node, yaml.SequenceNode):
                stack.extend(node.value)
            elif isinstance(node, yaml.MappingNode):
                seen: set[Any] = set()
                for key_node, value_node in node.value:
                    if key_node.tag == MERGE_TAG:
                        key: Any = "<<"
                    elif isinstance(key_node, yaml.ScalarNode):
                        key = self.construct_object(key_node, deep=True)
                    else:
                        raise yaml.constructor.ConstructorError(
                            None, None, "a mapping key must be a plain value", key_node.start_mark
                        )
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"key {quote(key)} given twice", key_node.start_mark
                        )
                    seen.add(key)
                    stack.append(value_node)


def parse_yaml(text: str, source: str) -> Any:
    """The data of YAML `text` (read from `source`), or BadInput with one line."""
    try:
        doc = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise BadInput(f"{source}: not valid YAML: {where}{problem}") from None
    except yaml.YAMLError as exc:
        raise BadInput(f"{source}: not valid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise BadInput(f"{source}: nested too deeply") from None
    if doc is not None:
        check_shape(doc, source)
    return doc


def compose_yaml(text: str) -> yaml.Node | None:
    """The node tree of `text` (its marks say where each value is in the text)."""
    return yaml.compose(text, Loader=_Loader)  # noqa: S506 - composing builds no objects


def read_text(path: str, what: str = "an install config") -> str:
    """The text of a config file, or BadInput with one clear line."""
    data = read_input(path, MAX_BYTES, what)
    if b"\0" in data:
        raise BadInput(f"{path}: binary data (NUL byte at offset {data.index(0)}), not YAML")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not UTF-8 text (bad byte at offset {exc.start}), not YAML") from None
