"""Write an install config back with only its `pciPassthrough` section replaced.

The screen starts from a whole install config (`tui --config C`) and must give back a
whole one: the `install` section is what lets the planner free the devices the
install disk and the management network no longer hold, so `plan --config OUTPUT`
has to see it.

PyYAML loses comments when it dumps, so the section is replaced in the text: the
lines of the old section (its key and its value, without the comments and blank
lines that follow it) give way to the new section, and every other byte stays as it
was. The result is read again and must equal the old document with only the section
changed; where it does not (a section written in flow style on the top-level line,
an anchor inside the section used elsewhere, a flow-style document), the whole
document is dumped again instead: the same data and key order, comments lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import yaml

from installer_ext.config import keys
from installer_ext.config.goyaml import compose_yaml, parse_yaml
from installer_ext.config.section import SECTION
from installer_ext.errors import BadInput

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rewritten:
    text: str
    comments_kept: bool  # False: the document was dumped again (comments lost)


def section_text(section: dict[str, Any]) -> str:
    """`pciPassthrough:` and its mapping, as block YAML."""
    return yaml.safe_dump({SECTION: section}, sort_keys=False, default_flow_style=False)


def _without_section(doc: dict[Any, Any]) -> dict[Any, Any]:
    return {k: v for k, v in doc.items() if not keys.is_spelling(k, SECTION)}


def _line_start(text: str, index: int) -> int:
    return text[:index].rfind("\n") + 1


def _line_end(text: str, index: int) -> int:
    return text.find("\n", index) + 1 or len(text)


def _splice(text: str, block: str) -> str | None:
    """`text` with its top-level section replaced by `block` (or `block` appended),
    or None where the text cannot be edited in place."""
    root = compose_yaml(text)
    if not isinstance(root, yaml.MappingNode) or root.flow_style:
        return None
    found = [(k, v) for k, v in root.value if isinstance(k, yaml.ScalarNode) and keys.is_spelling(k.value, SECTION)]
    if not found:
        return text + ("" if text.endswith("\n") else "\n") + block  # (a mapping's text is never empty)
    key_node, value_node = found[0]
    start = key_node.start_mark.index
    if text[_line_start(text, start) : start].strip():
        return None  # something else on the key's line
    start = _line_start(text, start)
    end = _line_end(text, max(value_node.end_mark.index - 1, key_node.end_mark.index))
    # Keep the comments and blank lines between the section and what follows it.
    lines = text[start:end].splitlines(keepends=True)
    # (The first line holds the key: it is never blank nor a comment.)
    while not lines[-1].strip() or lines[-1].lstrip().startswith("#"):
        lines.pop()
    end = start + len("".join(lines))
    return text[:start] + block + text[end:]  # `block` ends with a line break


def with_section(text: str | None, doc: dict[Any, Any] | None, section: dict[str, Any], source: str) -> Rewritten:
    """The install config `text` (parsed: `doc`) with `section` as its section; with
    no config, the section alone."""
    block = section_text(section)
    if text is None or doc is None:
        return Rewritten(block, True)
    spliced = _splice(text, block)
    if spliced is not None:
        try:
            again = parse_yaml(spliced, source)
        except BadInput as exc:
            log.debug("edited text does not read back: %s", exc.lines)
        else:
            if (
                isinstance(again, dict)
                and _without_section(again) == _without_section(doc)
                and [v for k, v in again.items() if keys.is_spelling(k, SECTION)] == [section]
            ):
                return Rewritten(spliced, True)
        log.info("%s: the section could not be replaced in the text; the document is written again", source)
    # The section where it was (or last), under its canonical name.
    whole: dict[Any, Any] = {}
    for k, v in doc.items():
        if keys.is_spelling(k, SECTION):
            k, v = SECTION, section
        whole.setdefault(k, v)
    whole.setdefault(SECTION, section)
    return Rewritten(yaml.safe_dump(whole, sort_keys=False, default_flow_style=False), False)
