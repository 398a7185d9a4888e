"""The one rule for a schema's `pattern` (installer_ext/jsonschema_util.py): the match
found must be the whole string. The config's validators, the plan's and the plan's fast
check all use it."""

from __future__ import annotations

import jsonschema

from installer_ext import jsonschema_util
from installer_ext.config import schemas
from installer_ext.jsonschema_util import whole_match
from installer_ext.plan import planfile
from installer_ext.plan.schemacheck import compile_schema

ADDRESS = r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$"


def test_a_match_must_be_the_whole_string():
    assert whole_match(ADDRESS, "0000:01:00.0")
    assert not whole_match(ADDRESS, "0000:01:00.0\n")  # Python's `$` matches before it; ECMA-262's does not
    assert not whole_match("b", "abc")  # a pattern is not searched for inside the string


def test_the_plain_validator_lets_a_trailing_newline_through_ours_does_not():
    schema = {"type": "string", "pattern": ADDRESS}
    assert jsonschema.Draft202012Validator(schema).is_valid("0000:01:00.0\n")
    assert not jsonschema_util.validator(schema).is_valid("0000:01:00.0\n")
    assert jsonschema_util.validator(schema).is_valid("0000:01:00.0")
    assert compile_schema(schema)("0000:01:00.0\n") is False


def test_the_config_and_the_plan_refuse_a_trailing_newline():
    section = {"enabled": True, "devices": [{"address": "0000:01:00.0\n"}]}
    errors = list(schemas.validator(schemas.SECTION_SCHEMA).iter_errors(section))
    assert [(list(e.absolute_path), e.validator) for e in errors] == [(["devices", 0, "address"], "pattern")]
    plan = planfile.load_schema()
    address = {"$defs": plan["$defs"], **plan["$defs"]["address"]}
    assert not planfile._validator().evolve(schema=address).is_valid("0000:01:00.0\n")
    assert planfile._validator().evolve(schema=address).is_valid("0000:01:00.0")
