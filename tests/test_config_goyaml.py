"""Reading the YAML text in the process (the command-line tests in test_config.py run a
child process, which the mutation run leaves out): what gopkg.in/yaml.v3 refuses is
refused here with one line that names the file, the line and column and what is wrong
(goyaml.py's docstring), and what it reads is read alike; the shape guard's limits."""

from __future__ import annotations

import logging
import sys
import traceback

import pytest
import yaml

from installer_ext.config import shape
from installer_ext.config.goyaml import MAX_BYTES, compose_yaml, parse_yaml
from installer_ext.config.load import load_config, near_misses, parse_config, read_yaml
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
    assert line == "cfg.yaml: not valid YAML: line 2 column 5: a mapping key must be a plain value"
    line = refusal("x: 1\n{a: 1}: 2\n")
    assert line == "cfg.yaml: not valid YAML: line 2 column 1: a mapping key must be a plain value"


@pytest.mark.parametrize("tag", ["!!map", "!!seq", "!!set"])
def test_a_plain_key_tagged_as_a_collection_is_refused_with_its_place(tag):
    """yaml.v3 cannot decode a scalar as a collection: one line, not a crash on an unhashable key."""
    line = refusal(f"x: 1\n? {tag} a\n: 1\n")
    assert line.startswith("cfg.yaml: not valid YAML: line 2 column 3: ") and "but found scalar" in line


def test_a_syntax_error_names_the_place_of_the_problem():
    # The flow mapping opened on line 1 is found unclosed at the start of line 2.
    assert refusal("pciPassthrough: {enabled: true\n").startswith("cfg.yaml: not valid YAML: line 2 column 1: ")


@pytest.mark.parametrize(
    "text, where, problem",
    [
        ("pciPassthrough:\n  enabled: @x\n", "line 2 column 12", "'@'"),  # no token starts with @
        ("a: 1\n---\nb: 2\n", "line 2 column 1", "another document"),  # the installer reads one document
        ("a: *nowhere\n", "line 1 column 4", "nowhere"),  # an alias with no anchor
    ],
)
def test_a_syntax_error_names_its_line_column_and_problem(text, where, problem):
    head = f"cfg.yaml: not valid YAML: {where}: "
    line = refusal(text)
    assert line.startswith(head) and problem in line.removeprefix(head)


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


def test_the_node_tree_resolves_scalars_as_the_go_installer_does_and_marks_their_place():
    """compose_yaml (the rewriter's view of the text) keeps an unquoted address a string."""
    root = compose_yaml("pciPassthrough:\n  address: 02:00.0\n  numVfs: 4\n")
    section = root.value[0][1]
    (address_key, address), (_, count) = section.value
    assert address.tag == "tag:yaml.org,2002:str" and address.value == "02:00.0"
    assert count.tag == "tag:yaml.org,2002:int"
    assert (address.start_mark.line, address.start_mark.column) == (1, 11)


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


# -- load_config / read_yaml: the lines a user reads about the whole file ----------------------


def write(tmp_path, data: str | bytes) -> str:
    path = tmp_path / "config.yaml"
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(path)


def load_refusal(path: str) -> list[str]:
    with pytest.raises(BadInput) as exc:
        load_config(path)
    assert exc.value.exit_code == EXIT_BAD_INPUT
    return exc.value.lines


@pytest.mark.parametrize("text", ["", "\n", "  \n\t\n"])
def test_an_empty_file_says_it_is_empty(tmp_path, text):
    path = write(tmp_path, text)
    assert load_refusal(path) == [f"{path}: empty file; expected an install config with a pciPassthrough section"]


@pytest.mark.parametrize("text", ["# nothing yet\n", "---\n# pciPassthrough:\n", "~\n"])
def test_a_file_of_only_comments_says_so(tmp_path, text):
    path = write(tmp_path, text)
    expected = [f"{path}: empty file (only comments); expected an install config with a pciPassthrough section"]
    assert load_refusal(path) == expected
    with pytest.raises(BadInput) as exc:
        read_yaml(path)
    assert exc.value.lines == expected


def test_a_file_up_to_the_size_limit_is_read_and_one_byte_more_is_refused(tmp_path):
    body = "pciPassthrough:\n  enabled: true\n"
    path = write(tmp_path, body + "#" * (MAX_BYTES - len(body) - 1) + "\n")
    assert load_config(path).choices.enabled is True
    path = write(tmp_path, body + "#" * (MAX_BYTES - len(body)) + "\n")
    assert load_refusal(path) == [f"{path}: larger than {MAX_BYTES // 1024} KiB, not an install config"]


@pytest.mark.parametrize(
    "text, kind",
    [("- pciPassthrough\n", "a list"), ("pciPassthrough\n", "a string"), ("42\n", "a number"), ("true\n", "a boolean")],
)
def test_a_top_level_that_is_not_a_mapping_names_the_file_and_what_it_is(tmp_path, text, kind):
    path = write(tmp_path, text)
    assert load_refusal(path) == [f"{path}: the top level is {kind}, expected a mapping with a pciPassthrough section"]
    with pytest.raises(BadInput) as exc:
        parse_config(read_yaml(path))
    assert exc.value.lines == [f"<config>: the top level is {kind}, expected a mapping with a pciPassthrough section"]


def test_the_section_under_two_spellings_is_refused_naming_both(tmp_path):
    path = write(tmp_path, "pciPassthrough:\n  enabled: true\npci_passthrough:\n  enabled: false\n")
    assert load_refusal(path) == ['pciPassthrough: given twice (as "pciPassthrough" and "pci_passthrough")']


def test_a_loaded_config_keeps_its_file_text_document_and_warnings(tmp_path):
    text = "install:\n  device: /dev/sda\nos:\n  hostname: h1\npciPasthrough:\n  enabled: true\n"
    path = write(tmp_path, text)
    config = load_config(path)
    assert config.source == path and config.text == text
    assert config.document == {
        "install": {"device": "/dev/sda"}, "os": {"hostname": "h1"}, "pciPasthrough": {"enabled": True}
    }
    assert config.has_section is False and config.choices.enabled is False
    assert config.warnings == (
        '"pciPasthrough": unknown top-level key, ignored as the installer ignores it (did you mean "pciPassthrough"?)',
    )
    assert load_config(write(tmp_path, "pci_passthrough: {}\n")).has_section is True


def test_loading_logs_the_file_and_the_config_read_from_it(tmp_path, caplog):
    path = write(tmp_path, "pciPassthrough:\n  enabled: true\n")
    with caplog.at_level(logging.DEBUG, logger="installer_ext.config.load"):
        config = load_config(path)
    messages = [r.getMessage() for r in caplog.records if r.name == "installer_ext.config.load"]
    assert len(messages) == 1 and messages[0].startswith(f"config {path}: Config(")
    assert f"source={path!r}" in messages[0] and config.source == path


# The fields of harvester-installer's HarvesterConfig (pkg/config/config.go, v1.8), in
# spellings the installer takes for them.
INSTALLER_FIELDS = [
    "schemeVersion", "serverUrl", "token", "sans", "os", "install", "runtimeVersion", "rancherVersion",
    "harvesterChartVersion", "monitoringChartVersion", "systemSettings", "loggingChartVersion",
    "kubeovnChartVersion", "server_url", "Install", "SYSTEMSETTINGS", "san", "system_setting",
]


def test_the_installers_own_top_level_keys_are_never_taken_for_misspellings():
    assert near_misses({key: None for key in INSTALLER_FIELDS}) == []
    assert near_misses({key: None for key in INSTALLER_FIELDS} | {"PCIPASSTHROUGH": {}, "pci_passthrough": {}}) == []


def test_each_misspelled_key_gets_its_own_warning_after_known_ones():
    doc = {"install": {}, "pciPasthrough": {}, "os": {}, "instal": {}, "unrelated": 1}
    assert near_misses(doc) == [
        '"pciPasthrough": unknown top-level key, ignored as the installer ignores it (did you mean "pciPassthrough"?)',
        '"instal": unknown top-level key, ignored as the installer ignores it (did you mean "install"?)',
    ]


@pytest.mark.parametrize("key", ["pcipas", "PciPas", "pci-pas", "pci_pas", "PCI-PAS", "p-c-i-p-a-s", "pci__pas"])
def test_a_near_miss_is_measured_ignoring_case_underscores_and_dashes(key):
    """The stem `pcipas` is close enough to the section's name; so is every spelling of it
    that differs only in case, `_` or `-` (load.py `_folded`)."""
    assert near_misses({key: 1}) == [
        f'"{key}": unknown top-level key, ignored as the installer ignores it (did you mean "pciPassthrough"?)'
    ]


@pytest.mark.parametrize(
    "error, line",
    [
        # PyYAML's own errors carry a problem and its mark; an error that carries only
        # its context (or nothing) must still be one line, not a traceback.
        (dict(context="while parsing a block mapping", context_mark=yaml.Mark("c", 0, 3, 7, None, None)),
         "c.yaml: not valid YAML: line 4 column 8: while parsing a block mapping"),
        (dict(problem="found a tab", problem_mark=yaml.Mark("c", 0, 0, 0, None, None),
              context="in a scalar", context_mark=yaml.Mark("c", 0, 5, 5, None, None)),
         "c.yaml: not valid YAML: line 1 column 1: found a tab"),
        (dict(), "c.yaml: not valid YAML: invalid YAML"),
    ],
)
def test_a_yaml_error_with_only_part_of_its_facts_is_still_one_line(monkeypatch, error, line):
    def broken(*_args, **_kwargs):
        raise yaml.MarkedYAMLError(**error)

    monkeypatch.setattr(yaml, "load", broken)
    with pytest.raises(BadInput) as exc:
        parse_yaml("a: 1\n", "c.yaml")
    assert exc.value.lines == [line]
