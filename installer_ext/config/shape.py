"""A guard on the shape of parsed YAML before anything walks it: no structure that
contains itself (a YAML alias can build one), no absurd nesting or size."""

from __future__ import annotations

import logging
from typing import Any

from installer_ext.errors import BadInput

log = logging.getLogger(__name__)

MAX_DEPTH = 64
MAX_NODES = 200_000


def check_shape(doc: Any, source: str) -> None:
    """BadInput naming `source` if `doc` is recursive, too deep or too big."""
    count = 0
    stack: list[tuple[Any, int, frozenset[int]]] = [(doc, 0, frozenset())]
    while stack:
        node, depth, parents = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise BadInput(f"{source}: more than {MAX_NODES} values, not an install config")
        if depth > MAX_DEPTH:
            raise BadInput(f"{source}: nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, (dict, list)):
            if id(node) in parents:
                raise BadInput(f"{source}: a YAML alias refers to itself (recursive structure)")
            inner = parents | {id(node)}
            children = node.values() if isinstance(node, dict) else node
            for child in children:
                stack.append((child, depth + 1, inner))
