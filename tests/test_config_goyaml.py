"""Reading the YAML text in the process (the command-line tests in test_config.py run a
child process, which the mutation run leaves out): what gopkg.in/yaml.v3 refuses is
refused here with one line that names the file, the line and column and what is wrong
(goyaml.py's docstring), and what it reads is read alike; the shape guard's limits."""

from __future__ import annotations

import sys
import traceback

import pytest

from installer_ext.config import shape
from installer_ext.config.goyaml import parse_yaml
from installer_ext.config.load import load_config, read_yaml
from installer_ext.errors import EXIT_BAD_INPUT, BadInput


def refusal(text: str, source: str = "cfg.yaml") -> str:
    """The one line a YAML text is refused with."""
    with pytest.raises(BadInput) as exc:
        parse_yaml(text, source)
    assert exc.value.exit_code == EXIT_BAD_INPUT
    assert len(exc.value.lines) == 1 and "\n" not in exc.value.lines[0]
    line = exc.value.lines[0]
    assert line.startswith(f"{source}: ")
    return line


def file_refusal(tmp_path, data: bytes) -> tuple[str, str]:
    path = tmp_path / "config.yaml"
    path.write_bytes(data)
    with pytest.raises(BadInput) as exc:
        read_yaml(str(path))
    assert exc.value.exit_code == EXIT_BAD_INPUT and len(exc.value.lines) == 1
    return str(path), exc.value.lines[0]


# -- keys given twice (yaml.v3 decode.go: "mapping key ... already defined") -----------------


def test_a_key_given_twice_names_the_key_and_where_the_second_one_is():
    line = refusal("install:\n  device: /dev/sda\npciPassthrough:\n  enabled: true\n  enabled: false\n")
    assert line == 'cfg.yaml: not valid YAML: line 5 column 3: key "enabled" given twice'


def test_a_key_given_twice_is_found_behind_an_alias_used_twice():
    # The mapping that repeats a key comes first; the alias's mapping is seen twice.
    text = "d: {e: 1, e: 2}\na: &x {b: 1}\nc: *x\n"
    assert refusal(text) == 'cfg.yaml: not valid YAML: line 1 column 11: key "e" given twice'


def test_two_merge_keys_in_one_mapping_are_refused_as_the_key_merge():
    line = refusal("a: &a {enabled: true}\npciPassthrough:\n  <<: *a\n  <<: *a\n")
    assert line == 'cfg.yaml: not valid YAML: line 4 column 3: key "<<" given twice'


def test_one_merge_key_and_the_same_key_in_a_merged_mapping_are_no_duplicate():
    doc = parse_yaml("a: &a {enabled: true, gpuDrivers: true}\npciPassthrough:\n  enabled: false\n  <<: *a\n", "c")
    assert doc["pciPassthrough"] == {"enabled": False, "gpuDrivers": True}


def test_a_mapping_or_list_as_a_key_is_refused_with_its_place():
    line = refusal("pciPassthrough:\n  ? [a, b]\n  : 1\n")
    assert line.startswith("cfg.yaml: not valid YAML: line 2 column 5: ")
    assert "mapping key" in line
    line = refusal("x: 1\n{a: 1}: 2\n")
    assert line.startswith("cfg.yaml: not valid YAML: line 2 column 1: ") and "mapping key" in line


def test_a_syntax_error_names_the_place_of_the_problem():
    # The flow mapping opened on line 1 is found unclosed at the start of line 2.
    assert refusal("pciPassthrough: {enabled: true\n").startswith("cfg.yaml: not valid YAML: line 2 column 1: ")


def test_a_control_character_is_refused_in_one_line():
    # Not a marked error: PyYAML's reader refuses the character with a two-line text.
    line = refusal("pciPassthrough:\n  enabled: tr\x07ue\n")
    assert line.startswith("cfg.yaml: not valid YAML: ") and "#x0007" in line


def test_nesting_past_the_parsers_stack_is_one_line():
    # The parser recurses per level: a stack kept short here reaches its end quickly.
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(len(traceback.extract_stack()) + 150)
    try:
        line = refusal("[" * 200 + "]" * 200)
    finally:
        sys.setrecursionlimit(old)
    assert line == "cfg.yaml: nested too deeply"


# -- what yaml.v3 reads: numbers, booleans, strings -----------------------------------------


@pytest.mark.parametrize(
    "scalar, value",
    [
        ("0000:01:00.0", "0000:01:00.0"),  # YAML 1.1 base 60 would make a number of it
        ("02:00.0", "02:00.0"),
        ("1:30", "1:30"),
        ("190:20:30", "190:20:30"),
        ("16", 16),
        ("-3", -3),
        ("0x10", 16),
        ("0b101", 5),
        ("017", 15),
        ("1.5", 1.5),
        ("1.0e+3", 1000.0),
        ("true", True),
        ("false", False),
        ("~", None),
    ],
)
def test_scalars_read_as_the_go_installer_reads_them(scalar, value):
    doc = parse_yaml(f"v: {scalar}\n", "c")
    assert doc["v"] == value and type(doc["v"]) is type(value)


def test_a_section_with_unquoted_addresses_plans_on_them(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("pciPassthrough:\n  sriov:\n    - address: 02:00.0\n      numVfs: 0x4\n")
    c = load_config(str(path))
    assert [(s.address, s.num_vfs) for s in c.choices.sriov] == [("0000:02:00.0", 4)]


# -- aliases that refer to themselves, depth, size (shape.py) --------------------------------


@pytest.mark.parametrize("text", ["a: &x [*x]\n", "a: &x {b: *x}\n", "a: &x {b: [1, {c: *x}]}\n"])
def test_a_structure_that_contains_itself_is_refused(text):
    assert refusal(text) == "cfg.yaml: a YAML alias refers to itself (recursive structure)"


def test_an_alias_used_twice_is_no_recursion():
    doc = parse_yaml("a: &x {b: [1]}\nc: *x\nd: [*x, *x]\n", "c")
    assert doc["c"] is doc["a"] and doc["d"] == [{"b": [1]}, {"b": [1]}]


def nested(depth: int, leaf_in_dicts: bool):
    """A value whose deepest part is `depth` levels below the top."""
    value = 0
    for i in range(depth):
        value = {"k": value} if leaf_in_dicts or i % 2 else [value]
    return value


@pytest.mark.parametrize("in_dicts", [True, False])
def test_nesting_up_to_the_limit_passes_and_one_more_is_refused(in_dicts):
    shape.check_shape(nested(shape.MAX_DEPTH, in_dicts), "c")
    with pytest.raises(BadInput) as exc:
        shape.check_shape(nested(shape.MAX_DEPTH + 1, in_dicts), "c")
    assert exc.value.lines == [f"c: nested more than {shape.MAX_DEPTH} levels deep"]


def test_values_up_to_the_limit_pass_and_one_more_is_refused(monkeypatch):
    monkeypatch.setattr(shape, "MAX_NODES", 6)
    shape.check_shape({"a": [1, 2], "b": {"c": 3}}, "c")  # six values: the mapping, the list, 1, 2, b's mapping, 3
    with pytest.raises(BadInput) as exc:
        shape.check_shape({"a": [1, 2], "b": {"c": 3, "d": 4}}, "c")
    assert exc.value.lines == ["c: more than 6 values, not an install config"]


# -- the bytes of the file -------------------------------------------------------------------


def test_binary_data_names_the_first_nul_byte(tmp_path):
    path, line = file_refusal(tmp_path, b"pci\0Passthrough:\0\n")
    assert line == f"{path}: binary data (NUL byte at offset 3), not YAML"


def test_text_that_is_not_utf8_names_the_bad_byte(tmp_path):
    path, line = file_refusal(tmp_path, b"pciPassthrough:\n  enabled: \xff\n")
    assert line == f"{path}: not UTF-8 text (bad byte at offset 27), not YAML"


def test_a_directory_is_not_an_install_config(tmp_path):
    with pytest.raises(BadInput) as exc:
        read_yaml(str(tmp_path))
    assert exc.value.lines[0].startswith(f"{tmp_path}: ") and exc.value.lines[0].endswith("an install config")


def test_a_byte_order_mark_is_not_part_of_the_first_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes("\ufeffpciPassthrough:\n  enabled: true\n".encode())
    assert load_config(str(path)).choices.enabled is True
