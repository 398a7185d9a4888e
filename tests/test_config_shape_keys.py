"""The loader's guards and key rules at their edges, in-process (the mutation runs see
only in-process tests): the shape guard's exact limits (config/shape.py MAX_DEPTH,
MAX_NODES, a structure that contains itself), the camelCase -> snake_case rule of
rancher/norman `convert.ToYAMLKey` that the Harvester installer's FuzzyNames mapper
applies (config/keys.py), and a section that is not a mapping."""

from __future__ import annotations

import pytest

from installer_ext.config.keys import canonicalize, is_spelling, yaml_key
from installer_ext.config.load import parse_config
from installer_ext.config.schemas import load_schema
from installer_ext.config.shape import MAX_DEPTH, MAX_NODES, check_shape
from installer_ext.errors import BadInput


def nested(depth: int, leaf_in_dict: bool) -> object:
    """A value whose deepest node sits `depth` levels below the top (the top is 0)."""
    node: object = 1
    for i in range(depth):
        node = {"k": node} if (leaf_in_dict or i % 2) else [node]
    return node


def refused(doc: object) -> str:
    with pytest.raises(BadInput) as exc:
        check_shape(doc, "c.yaml")
    assert len(exc.value.lines) == 1
    return exc.value.lines[0]


@pytest.mark.parametrize("in_dict", [True, False])
def test_nesting_is_allowed_to_max_depth_and_refused_one_below(in_dict):
    check_shape(nested(MAX_DEPTH, in_dict), "c.yaml")
    assert refused(nested(MAX_DEPTH + 1, in_dict)) == f"c.yaml: nested more than {MAX_DEPTH} levels deep"


def test_values_are_counted_with_their_containers_up_to_max_nodes():
    check_shape([0] * (MAX_NODES - 1), "c.yaml")  # the list and its items: MAX_NODES
    assert refused([0] * MAX_NODES) == f"c.yaml: more than {MAX_NODES} values, not an install config"
    check_shape({"a": [0] * (MAX_NODES - 3), "b": 1}, "c.yaml")  # the mapping's values are counted, not its keys
    refused({"a": [0] * (MAX_NODES - 2), "b": 1})


def test_a_structure_that_contains_itself_is_refused_and_a_shared_one_is_not():
    loop: list = [1]
    loop.append({"again": loop})
    assert refused({"top": loop}) == "c.yaml: a YAML alias refers to itself (recursive structure)"
    shared = {"x": [1, 2]}
    check_shape({"a": shared, "b": shared, "c": [shared, shared]}, "c.yaml")  # an alias used twice


@pytest.mark.parametrize(
    "name, key",
    [
        ("dataDisk", "data_disk"), ("configUrl", "config_url"), ("HwAddr", "hw_addr"),
        ("ISOURL", "isourl"), ("ABc", "abc"), ("aBC", "a_b_c"), ("configURL", "config_u_r_l"),
        ("IPv4Addr", "ipv4_addr"), ("numVfs", "num_vfs"), ("a", "a"), ("A", "a"), ("", ""),
    ],
)
def test_yaml_key_follows_to_yaml_key(name, key):
    """The table is ToYAMLKey's rule applied by hand: lower-case everything, an "_"
    before an upper-case letter unless the letter before it was upper-case too (a
    leading capital counts)."""
    assert yaml_key(name) == key


def test_only_strings_are_spellings_of_a_key():
    assert is_spelling("data_disk", "dataDisk") and is_spelling("DATADISK", "dataDisk")
    assert not is_spelling(1, "dataDisk") and not is_spelling(None, "dataDisk") and not is_spelling(True, "enabled")


def test_canonicalize_keeps_unknown_keys_and_every_key_after_a_duplicate():
    out, errors = canonicalize({"data_disk": "a", "other": 5, "dataDisk": "b", "device": "d"}, ["dataDisk", "device"], "")
    assert out == {"dataDisk": "a", "other": 5, "device": "d"}
    assert errors == ['dataDisk: given twice (as "data_disk" and "dataDisk")']
    _, errors = canonicalize({"data_disk": "a", "DataDisk": "b"}, ["dataDisk"], "install")
    assert errors == ['install.dataDisk: given twice (as "data_disk" and "DataDisk")']


@pytest.mark.parametrize("value, words", [([1], "[1] is a list"), ("yes", '"yes" is a string'), (3, "3 is a number")])
def test_a_section_that_is_not_a_mapping_is_one_line(value, words):
    with pytest.raises(BadInput) as exc:
        parse_config({"pciPassthrough": value})
    assert exc.value.lines == [f"pciPassthrough: {words}, expected a mapping"]


def test_a_loaded_schema_is_the_callers_to_change():
    """The schemas are parsed once (cached); each caller gets its own deep copy."""
    mine = load_schema()
    mine["properties"]["enabled"]["x-mine"] = 1
    assert "x-mine" not in load_schema()["properties"]["enabled"]


def test_install_spellings_given_twice_and_a_bad_value_are_both_reported():
    with pytest.raises(BadInput) as exc:
        parse_config({"install": {"dataDisk": "/dev/sda", "data_disk": "/dev/sdb", "device": 5}})
    assert exc.value.lines == [
        'install.dataDisk: given twice (as "dataDisk" and "data_disk")',
        "install.device: 5 is a number, expected a string on one line",
    ]
