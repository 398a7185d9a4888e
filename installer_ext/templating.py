"""The jinja2 environment over `templates/` (StrictUndefined: a missing value is an
error, never an empty string in a unit file).

Templates are found in a source checkout (top-level templates/), in an installed wheel
(installer_ext/templates/) and inside the node's .pyz archive, where only
importlib.resources can read them.
"""

from __future__ import annotations

import importlib.resources
import os
from functools import lru_cache

_PKG = os.path.dirname(os.path.abspath(__file__))
_CANDIDATES = (os.path.join(_PKG, "templates"), os.path.join(os.path.dirname(_PKG), "templates"))


def template_source(name: str) -> str:
    """Text of templates/NAME (NAME uses '/' separators)."""
    for base in _CANDIDATES:
        path = os.path.join(base, *name.split("/"))
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                return f.read()
    res = importlib.resources.files("installer_ext").joinpath("templates")
    for part in name.split("/"):
        res = res.joinpath(part)
    try:
        return res.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError, OSError):
        raise FileNotFoundError(f"installer-ext template {name} not found") from None


@lru_cache(maxsize=1)
def environment():
    import jinja2  # imported here: only render and firstboot need it

    def load(name: str):
        try:
            return template_source(name), name, lambda: True
        except FileNotFoundError:
            return None

    return jinja2.Environment(
        loader=jinja2.FunctionLoader(load),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render_template(name: str, **values) -> str:
    return environment().get_template(name).render(**values)
