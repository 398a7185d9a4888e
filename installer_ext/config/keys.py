"""Key spellings: camelCase is canonical; snake_case and lowercase are accepted.

The Harvester installer (pkg/config/rename.go) loads `configUrl`, `config_url` and
`configurl` alike. We do the same: a key is matched to a canonical one when both agree
after dropping underscores and case.
"""

from __future__ import annotations

from typing import Any


def fold(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


def canonicalize(mapping: dict[Any, Any], canonical: list[str], path: str) -> tuple[dict[str, Any], list[str]]:
    """Rename the keys of `mapping` to their canonical spelling.

    Returns the new mapping and one error line per key given twice under different
    spellings. Unknown keys are kept as they are (the schema reports them with a hint).
    """
    table = {fold(c): c for c in canonical}
    out: dict[str, Any] = {}
    seen: dict[str, str] = {}
    errors: list[str] = []
    for key, value in mapping.items():
        skey = str(key)
        name = table.get(fold(skey), skey)
        if name in out:
            errors.append(f"{path}.{name}: given twice (as {seen[name]!r} and {skey!r})")
            continue
        out[name] = value
        seen[name] = skey
    return out, errors
