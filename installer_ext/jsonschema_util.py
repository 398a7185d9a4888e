"""JSON Schema as the project's schemas mean it (the config's schema.json and
install.schema.json, plan.schema.json): Draft 2020-12, with `pattern` matching the
whole string.

JSON Schema's `pattern` is an ECMA-262 regular expression searched in the string. Our
patterns are anchored with `^...$`, and ECMA-262's `$` matches only at the very end. In
Python `$` also matches before a final newline, so `0000:01:00.0\\n` would pass a plain
`re.search`: a string passes only when the match found spans all of it. The one home
of that rule, for the jsonschema validators (config/schemas.py, plan/planfile.py) and
the compiled fast check of plans (plan/schemacheck.py).
"""

from __future__ import annotations

import json
import re
from typing import Any


def whole_match(pattern: str | re.Pattern[str], text: str) -> bool:
    """Whether the match of `pattern` found in `text` is all of `text`."""
    m = re.search(pattern, text)
    return m is not None and m.start() == 0 and m.end() == len(text)


def validator(schema: dict[str, Any]):
    """A Draft 2020-12 validator of `schema` whose `pattern` is `whole_match`."""
    import jsonschema  # imported here: `detect` and a valid plan never pay for it

    def whole_pattern(validator, pattern, instance, schema):
        if validator.is_type(instance, "string") and not whole_match(pattern, instance):
            yield jsonschema.ValidationError(f"{json.dumps(instance)} does not match {json.dumps(pattern)}")

    cls = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": whole_pattern})
    return cls(schema)
