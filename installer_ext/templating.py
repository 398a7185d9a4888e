"""The jinja2 environment over `templates/` (StrictUndefined: a missing value is an
error, never an empty string in a unit file)."""

from __future__ import annotations

import os
from functools import lru_cache

_PKG = os.path.dirname(os.path.abspath(__file__))


def templates_dir() -> str:
    """`templates/` inside the installed package, or at the top of a source checkout."""
    for candidate in (os.path.join(_PKG, "templates"), os.path.join(os.path.dirname(_PKG), "templates")):
        if os.path.isdir(candidate):
            return candidate
    raise FileNotFoundError("installer-ext templates/ directory not found next to the package")


@lru_cache(maxsize=1)
def environment():
    import jinja2  # imported here: only render and firstboot need it

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render_template(name: str, **values) -> str:
    return environment().get_template(name).render(**values)
