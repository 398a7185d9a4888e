"""Key spellings, read the way the Harvester installer reads its config.

harvester-installer (v1.8, pkg/config/schemas.go `LoadHarvesterConfig`) decodes the
YAML into a map, renames keys with the `FuzzyNames` mapper (pkg/config/rename.go),
then fills its structs through encoding/json. For a field `dataDisk` that accepts:

- the field name in any case (encoding/json matches names case-insensitively):
  `dataDisk`, `datadisk`, `DATADISK`;
- its snake_case form (rancher/mapper convert.ToYAMLKey): `data_disk`;
- and the same for the name less a final "s" or "es" (rename.go `ModifySchema`):
  `interface` or `interfac` for `interfaces`.

No other spelling: `data-disk` and `Data_Disk` are unknown keys to the installer, and
so they are here. The rule is applied to each mapping level (rancher/mapper's
typeMapper renames a level, then descends into its fields by their canonical names).
This is the one place that says which key a spelling stands for; the install hook
finds the section with `is_spelling` too.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from typing import Any

from installer_ext.config.messages import quote

log = logging.getLogger(__name__)


def yaml_key(name: str) -> str:
    """camelCase -> snake_case as rancher/mapper convert.ToYAMLKey: every letter
    lowercased, "_" before an upper-case letter that follows a lower-case one
    (`configUrl` -> `config_url`, `ISOURL` -> `isourl`)."""
    out: list[str] = []
    after_upper = False
    for i, ch in enumerate(name):
        if i == 0:
            after_upper = ch.isupper()
            out.append(ch.lower())
        elif ch.isupper():
            out.append(ch.lower() if after_upper else "_" + ch.lower())
        else:
            after_upper = False
            out.append(ch)
    return "".join(out)


@functools.lru_cache(maxsize=256)
def spellings(name: str) -> frozenset[str]:
    """The spellings FuzzyNames renames to `name` (exact-case variants aside)."""
    forms = {name}
    if name.endswith("s") and len(name) > 1:
        forms.add(name[:-1])
    if name.endswith("es") and len(name) > 2:
        forms.add(name[:-2])
    out: set[str] = set()
    for form in forms:
        out |= {form.lower(), yaml_key(form), yaml_key(form).lower()}
    return frozenset(out)


def is_spelling(key: object, name: str) -> bool:
    """Whether the installer would read `key` as the field `name`."""
    if not isinstance(key, str):
        return False
    return key.casefold() == name.casefold() or key in spellings(name)


def canonical(key: object, names: Iterable[str]) -> str | None:
    """The field of `names` that `key` stands for, or None."""
    return next((n for n in names if is_spelling(key, n)), None)


def canonicalize(mapping: dict[Any, Any], names: Iterable[str], path: str) -> tuple[dict[Any, Any], list[str]]:
    """`mapping` with its keys renamed to the canonical spelling among `names`.

    Returns the new mapping and one line per field given twice under two spellings.
    Unknown keys are kept as they are (the schema reports them, with a hint)."""
    names = list(names)
    out: dict[Any, Any] = {}
    seen: dict[str, object] = {}
    errors: list[str] = []
    for key, value in mapping.items():
        name = canonical(key, names)
        if name is None:
            out[key] = value
            continue
        if name in out:
            where = f"{path}.{name}" if path else name
            errors.append(f"{where}: given twice (as {quote(seen[name])} and {quote(key)})")
            continue
        out[name] = value
        seen[name] = key
    return out, errors
