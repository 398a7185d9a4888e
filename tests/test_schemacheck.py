"""The fast plan check (plan/schemacheck.py) against jsonschema, keyword by keyword.

test_planfile.py compares the two on plans; here each keyword the fast check implements
is compared on small schemas at its edges (a length, a bound, a count equal to the
limit and one past it; every JSON type; additionalProperties true, false and a schema;
$ref), with jsonschema's Draft 2020-12 validator as the oracle."""

from __future__ import annotations

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from installer_ext.plan.schemacheck import compile_schema

# No whole floats: JSON Schema counts 2.0 as an integer, the fast check does not, and
# the plan loader never lets a float through (schemacheck.py, _TYPES).
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.5, 1.5, -2.5]),
    st.text(alphabet="ab", max_size=4),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from("abcd"), inner, max_size=4)),
    max_leaves=8,
)
TYPES = ["object", "array", "string", "boolean", "null", "integer", "number"]
N = st.integers(0, 3)


def leaf_schemas() -> st.SearchStrategy[dict]:
    return st.one_of(
        st.builds(lambda t: {"type": t}, st.sampled_from(TYPES)),
        st.builds(lambda ts: {"type": ts}, st.lists(st.sampled_from(TYPES), min_size=1, max_size=3, unique=True)),
        st.builds(lambda n: {"maxLength": n}, N),
        st.builds(lambda n: {"minimum": n}, st.integers(-2, 2)),
        st.builds(lambda n: {"maximum": n}, st.integers(-2, 2)),
        st.builds(lambda n: {"maxItems": n}, N),
        st.builds(lambda n: {"maxProperties": n}, N),
        st.builds(lambda ks: {"required": ks}, st.lists(st.sampled_from("abcd"), max_size=2, unique=True)),
        st.builds(lambda vs: {"enum": vs}, st.lists(SCALARS, min_size=1, max_size=3)),
        st.builds(lambda v: {"const": v}, SCALARS),
    )


SCHEMAS = st.recursive(
    leaf_schemas(),
    lambda inner: st.one_of(
        st.builds(lambda s: {"items": s}, inner),
        st.builds(lambda s: {"propertyNames": s}, inner),
        st.builds(lambda ps, extra: {"properties": ps, **({} if extra is None else {"additionalProperties": extra})},
                  st.dictionaries(st.sampled_from("abcd"), inner, max_size=2),
                  st.one_of(st.none(), st.booleans(), inner)),
        st.builds(lambda s: {"additionalProperties": s}, st.one_of(st.booleans(), inner)),
        st.builds(lambda a, b: {**a, **b}, inner, inner),
    ),
    max_leaves=4,
)


@settings(max_examples=600, deadline=None)
@given(schema=SCHEMAS, value=VALUES, through_ref=st.booleans())
def test_every_keyword_agrees_with_jsonschema(schema, value, through_ref):
    if through_ref:
        schema = {"$defs": {"it": schema}, "$ref": "#/$defs/it"}
    want = jsonschema.Draft202012Validator(schema).is_valid(value)
    assert compile_schema(schema)(value) is want, (schema, value)


def grid_values() -> list:
    out: list = [None, True, False, 0.5, -1.5, "x", {"a": "x"}, {"a": "x", "b": 0}, {"b": "x"}]
    for n in range(0, 5):
        out += [n, -n, "a" * n, [0] * n, {k: 0 for k in "abcd"[:n]}]
    return out


GRID_SCHEMAS = (
    [{k: n} for k in ("maxLength", "maxItems", "maxProperties") for n in range(4)]
    + [{k: n} for k in ("minimum", "maximum") for n in range(-2, 3)]
    + [{"type": t} for t in TYPES] + [{"type": ["integer", "string"]}, {"type": ["number", "null"]}]
    + [{"properties": {"a": {"type": "integer"}}}, {"properties": {"a": {"type": "integer"}}, "additionalProperties": False},
       {"additionalProperties": {"type": "integer"}}, {"additionalProperties": False}, {"additionalProperties": True},
       {"required": ["a", "b"]}, {"items": {"maxLength": 1}}, {"propertyNames": {"maxLength": 0}}]
)


@pytest.mark.parametrize("schema", GRID_SCHEMAS, ids=str)
def test_each_keyword_at_its_edges_agrees_with_jsonschema(schema):
    """Every bound with values at it, one below and one past it, and every JSON type."""
    v = jsonschema.Draft202012Validator(schema)
    check = compile_schema(schema)
    for value in grid_values():
        assert check(value) is v.is_valid(value), (schema, value)


@pytest.mark.parametrize(
    "schema, words",
    [
        ({"minItems": 1}, "keyword 'minItems' is not checked here"),
        ({"type": "weird"}, "type ['weird']"),
        ({"$ref": "http://x"}, "$ref 'http://x': only #/$defs/NAME"),
        ({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}, "$ref '#/$defs/a' refers to itself"),
    ],
)
def test_what_the_fast_check_cannot_do_is_refused_by_name(schema, words):
    with pytest.raises(NotImplementedError) as exc:
        compile_schema(schema)
    assert str(exc.value) == words
