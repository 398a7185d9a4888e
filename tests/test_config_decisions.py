"""The decisions of the config loader, with their oracles taken from the schema's text
(schema.json: its keys, defaults and descriptions) and from the rules the Harvester
installer follows (keys.py's docstring: FuzzyNames and encoding/json), not from the
code: which value each key gives, what a key left out means, which spellings are the
same key, what each refused value's line says (key path, value, kind, expectation),
and that reading a config leaves the caller's document alone."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from installer_ext.config.load import load_schema, parse_config
from installer_ext.config.model import Choices, HarvesterChoice, Selector
from installer_ext.errors import EXIT_BAD_INPUT, BadInput

SCHEMA = load_schema()
PROPS = SCHEMA["properties"]
HARVESTER = PROPS["harvester"]["properties"]
SRIOV = SCHEMA["$defs"]["sriov"]["properties"]


def errors_of(doc) -> list[str]:
    with pytest.raises(BadInput) as exc:
        parse_config(doc)
    assert exc.value.exit_code == EXIT_BAD_INPUT
    return exc.value.lines


def section(doc: dict) -> Choices:
    return parse_config({"pciPassthrough": doc}).choices


def schema_defaults() -> dict:
    """The section the schema describes when every key is left out: each key's
    `default`, the harvester mapping's defaults; hostGpus has none (not written)."""
    out = {name: copy.deepcopy(p["default"]) for name, p in PROPS.items() if "default" in p}
    out["harvester"] = {name: p["default"] for name, p in HARVESTER.items()}
    return {name: out[name] for name in PROPS if name in out}  # the schema's order


# -- what a key left out means: the schema's defaults ---------------------------------------


@pytest.mark.parametrize("empty", [{}, None])
def test_an_empty_section_means_the_schemas_defaults(empty):
    c = section(empty)
    assert c.to_section() == schema_defaults()
    assert list(c.to_section()) == list(schema_defaults())
    assert c.host_gpus is None  # no hostGpus key: GPUs are not passed through
    assert parse_config({}).choices.to_section() == schema_defaults()


def test_every_key_given_its_other_value_is_taken():
    doc = {
        "enabled": not PROPS["enabled"]["default"],
        "gpuDrivers": not PROPS["gpuDrivers"]["default"],
        "devices": [{"address": "0000:01:00.0"}, {"id": "10de:2206"}, {"kind": "nic"}],
        "hostGpus": [{"kind": "gpu"}, {"address": "0000:03:00.0"}],
        "sriov": [{"address": "0000:02:00.0", "numVfs": 4, "vfsToVfio": not SRIOV["vfsToVfio"]["default"]}],
        "allowUnsafeInterrupts": not PROPS["allowUnsafeInterrupts"]["default"],
        "extraKernelArgs": ["quiet", "video=efifb:off"],
        "harvester": {name: not p["default"] for name, p in HARVESTER.items()},
        "devicePlugin": "amd",
    }
    c = section(doc)
    assert c.to_section() == doc
    assert list(c.to_section()) == list(PROPS)  # canonical keys, the schema's order
    assert c.enabled is doc["enabled"] and c.gpu_drivers is doc["gpuDrivers"]
    assert c.allow_unsafe_interrupts is doc["allowUnsafeInterrupts"]
    assert c.harvester == HarvesterChoice(**doc["harvester"])
    assert c.device_plugin == "amd"
    assert section(c.to_section()) == c  # written back, it reads the same


@pytest.mark.parametrize("name", list(HARVESTER))
def test_each_harvester_key_alone(name):
    given_value = not HARVESTER[name]["default"]
    c = section({"harvester": {name: given_value}})
    expected = {n: (given_value if n == name else p["default"]) for n, p in HARVESTER.items()}
    assert c.to_section()["harvester"] == expected


def test_an_sriov_entry_without_vfs_to_vfio_takes_the_default():
    c = section({"sriov": [{"address": "02:00.0", "numVfs": 0}, {"address": "0000:03:00.1", "numVfs": 4096}]})
    assert [(s.address, s.num_vfs, s.vfs_to_vfio) for s in c.sriov] == [
        ("0000:02:00.0", 0, SRIOV["vfsToVfio"]["default"]),
        ("0000:03:00.1", 4096, SRIOV["vfsToVfio"]["default"]),
    ]
    assert [s.path for s in c.sriov] == ["pciPassthrough.sriov[0]", "pciPassthrough.sriov[1]"]


def test_an_empty_host_gpus_list_is_not_a_missing_one():
    # hostGpus: [] keeps no GPU on the host; no hostGpus at all means GPUs are not passed through.
    assert section({"hostGpus": []}).host_gpus == ()
    assert section({"hostGpus": []}).to_section()["hostGpus"] == []
    assert "hostGpus" not in section({}).to_section()


def test_selectors_keep_what_they_name_and_where():
    c = section({
        "devices": [{"address": "5E:00.1"}, {"id": "10DE:2206"}, {"kind": "usb"}],
        "host_gpus": [{"kind": "gpu"}, {"id": "1002:744C"}, {"address": "0000:c1:00.0"}],
    })
    assert [(s.address, s.id, s.kind) for s in c.devices] == [
        ("0000:5e:00.1", None, None), (None, "10de:2206", None), (None, None, "usb"),
    ]
    assert [s.path for s in c.devices] == [
        "pciPassthrough.devices[0].address", "pciPassthrough.devices[1].id", "pciPassthrough.devices[2].kind",
    ]
    assert [s.path for s in c.host_gpus] == [
        "pciPassthrough.hostGpus[0].kind", "pciPassthrough.hostGpus[1].id", "pciPassthrough.hostGpus[2].address",
    ]
    # What a selector names, in the planner's words and in the written config.
    assert [s.describe() for s in c.devices] == ["address 0000:5e:00.1", "id 10de:2206", "kind usb"]
    assert [s.to_json() for s in c.host_gpus] == [{"kind": "gpu"}, {"id": "1002:744c"}, {"address": "0000:c1:00.0"}]


def test_a_kernel_argument_given_twice_is_written_once_in_its_first_place():
    c = section({"extraKernelArgs": ["b", "a", "b", "c", "a"]})
    assert c.extra_kernel_args == ("b", "a", "c")


# -- a section built at random: read, written back, read again ---------------------------------

ADDRESS = st.builds("{:04x}:{:02x}:{:02x}.{}".format, st.integers(0, 0xFFFF), st.integers(0, 255),
                    st.integers(0, 31), st.integers(0, 7))
SELECTOR = st.one_of(
    st.builds(lambda a: {"address": a}, ADDRESS),
    st.builds(lambda v, d: {"id": f"{v:04x}:{d:04x}"}, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF)),
    st.builds(lambda k: {"kind": k}, st.sampled_from(SCHEMA["$defs"]["selector"]["properties"]["kind"]["enum"])),
)
SRIOV_ENTRY = st.fixed_dictionaries(
    {"address": ADDRESS, "numVfs": st.integers(0, 4096)}, optional={"vfsToVfio": st.booleans()}
)
SECTIONS = st.fixed_dictionaries({}, optional={
    "enabled": st.booleans(),
    "gpuDrivers": st.booleans(),
    "devices": st.lists(SELECTOR, max_size=3),
    "hostGpus": st.lists(SELECTOR, max_size=3),
    "sriov": st.lists(SRIOV_ENTRY, max_size=3),
    "allowUnsafeInterrupts": st.booleans(),
    "extraKernelArgs": st.lists(st.sampled_from(["quiet", "video=efifb:off", "nomodeset", "iommu=pt"]), max_size=4),
    "harvester": st.fixed_dictionaries({}, optional={name: st.booleans() for name in HARVESTER}),
    "devicePlugin": st.sampled_from(PROPS["devicePlugin"]["enum"]),
})


def expected_section(doc: dict) -> dict:
    """What the schema says `doc` means: every key, its value or its default."""
    out = schema_defaults()
    for name, value in doc.items():
        out[name] = copy.deepcopy(value)
    out["harvester"] = {**schema_defaults()["harvester"], **doc.get("harvester", {})}
    for s in out["sriov"]:
        s.setdefault("vfsToVfio", SRIOV["vfsToVfio"]["default"])
    out["extraKernelArgs"] = list(dict.fromkeys(out["extraKernelArgs"]))
    return {name: out[name] for name in PROPS if name in out}


@settings(max_examples=60, deadline=None)
@given(doc=SECTIONS, spelling=st.sampled_from(["camel", "lower", "snake", "upper"]))
def test_any_section_in_any_spelling_reads_as_the_schema_says(doc, spelling):
    from installer_ext.config.keys import yaml_key

    spell = {"camel": str, "lower": str.lower, "snake": yaml_key, "upper": str.upper}[spelling]

    def respell(value):
        if isinstance(value, dict):
            return {spell(k): respell(v) for k, v in value.items()}
        if isinstance(value, list):
            return [respell(v) for v in value]
        return value

    choices = parse_config({spell("pciPassthrough"): respell(doc)}).choices
    written = choices.to_section()
    assert written == expected_section(doc)
    assert list(written) == list(expected_section(doc))
    assert section(written) == choices


# -- what each refused value's line says (messages.py) -----------------------------------------
# One line per mistake: the key path, the value as `quote` shows it, its kind, and what the
# schema's description asks for (the words before ": ").


@pytest.mark.parametrize("doc, lines", [
    ({"enabled": {}, "gpuDrivers": "yes", "devicePlugin": True}, [
        "pciPassthrough.devicePlugin: true is a boolean, expected one of auto, nvidia, amd, none",
        "pciPassthrough.enabled: {} is a mapping, expected a boolean",
        'pciPassthrough.gpuDrivers: "yes" is a string, expected a boolean',
    ]),
    ({"devicePlugin": None, "hostGpus": [None, {"kind": None}]}, [
        "pciPassthrough.devicePlugin: empty, expected one of auto, nvidia, amd, none",
        "pciPassthrough.hostGpus[0]: empty, expected a selector",
        "pciPassthrough.hostGpus[1].kind: empty, expected one of gpu, nic, storage, usb, audio, other",
    ]),
    ({"sriov": [{"address": "0000:01:00.0", "numVfs": -1}, {"address": "0000:01:00.1", "numVfs": 4097},
                {"numVfs": 1}, {}]}, [
        "pciPassthrough.sriov[0].numVfs: -1 is not a whole number of VFs from 0 to 4096",
        "pciPassthrough.sriov[1].numVfs: 4097 is not a whole number of VFs from 0 to 4096",
        'pciPassthrough.sriov[2]: missing key "address"',
        'pciPassthrough.sriov[3]: missing key "address"',
        'pciPassthrough.sriov[3]: missing key "numVfs"',
    ]),
    ({"extraKernelArgs": ["a b", "x" * 257]}, [
        'pciPassthrough.extraKernelArgs[0]: "a b" is not a kernel argument token',
        'pciPassthrough.extraKernelArgs[1]: "' + "x" * 56 + '... is not a kernel argument token',
    ]),
    ({"devices": [{}, {"address": "0000:01:00.0", "id": "10de:2206"}]}, [
        "pciPassthrough.devices[0]: a selector needs exactly one of address, id, kind (found: nothing)",
        "pciPassthrough.devices[1]: a selector needs exactly one of address, id, kind (found: address, id)",
    ]),
    # an unknown key is a mistake of the mapping that holds it: the section's comes first
    ({"zzz": 1, "sriov": [{"address": "0000:01:00.0", "numVfs": 1, "my_own_key": 1}]}, [
        "pciPassthrough.zzz: unknown key; expected one of " + ", ".join(PROPS),
        "pciPassthrough.sriov[0].my_own_key: unknown key; expected one of address, numVfs, vfsToVfio",
    ]),
])
def test_each_refused_value_is_one_line_naming_its_key_path(doc, lines):
    assert errors_of({"pciPassthrough": doc}) == lines


def test_lines_of_a_list_come_in_the_order_of_its_entries():
    """sriov[2] before sriov[10]: the entries' order, not the text's."""
    entries = [{"address": f"0000:{i + 1:02x}:00.0", "numVfs": 1} for i in range(11)]
    entries[2]["numVfs"] = entries[10]["numVfs"] = -1
    assert errors_of({"pciPassthrough": {"sriov": entries}}) == [
        f"pciPassthrough.sriov[{i}].numVfs: -1 is not a whole number of VFs from 0 to 4096" for i in (2, 10)
    ]


def test_too_many_kernel_arguments_is_a_line_on_the_list():
    limit = PROPS["extraKernelArgs"]["maxItems"]
    (line,) = errors_of({"pciPassthrough": {"extraKernelArgs": ["quiet"] * (limit + 1)}})
    assert line.startswith('pciPassthrough.extraKernelArgs: ["quiet", "quiet", ')
    assert line.endswith("... is not a list of kernel argument tokens")


def test_one_mistake_is_one_line_the_precedence_picks():
    """A misspelled required key breaks both `additionalProperties` and `required` at
    the same path: the missing key is the line (_PRECEDENCE: required first)."""
    assert errors_of({"pciPassthrough": {"sriov": [{"adress": "0000:01:00.0", "numVfs": 1}]}}) == [
        'pciPassthrough.sriov[0]: missing key "address"',
    ]


def test_install_section_lines_name_the_install_key_path():
    doc = {"install": {"mode": "a\nb", "device": 5, "dataDisk": "d" * 4097,
                       "managementInterface": {"interfaces": [5, {"name": []}]}}}
    assert errors_of(doc) == [
        'install.dataDisk: "' + "d" * 56 + '... is not a string on one line',
        "install.device: 5 is a number, expected a string on one line",
        "install.managementInterface.interfaces[0]: 5 is a number, expected a mapping with name and hwAddr",
        "install.managementInterface.interfaces[1].name: [] is a list, expected a string on one line",
        'install.mode: "a\\nb" is not a string on one line',
    ]


@pytest.mark.parametrize("typo", ["vsToVfo", "vs_to_vfo", "vstovfo", "VSTOVFO"])
def test_a_misspelled_key_gets_the_same_hint_in_any_spelling(typo):
    """The hint compares keys as the installer's FuzzyNames does: case and snake_case
    underscores aside (keys.py), so each spelling of one typo points at one key."""
    assert errors_of({"pciPassthrough": {"sriov": [{"address": "0000:01:00.0", "numVfs": 1, typo: True}]}}) == [
        f'pciPassthrough.sriov[0].{typo}: unknown key (did you mean "vfsToVfio"?); '
        "expected one of address, numVfs, vfsToVfio",
    ]


# -- messages.py directly: quote, type_name, key_path, expected ---------------------------------


class _NotJson:
    def __str__(self):
        return "odd\u200bvalue\n"


@pytest.mark.parametrize("value, shown", [
    ("yes\u200b", '"yes\\u200b"'),       # an invisible character shows as its escape
    ("a\nb", '"a\\nb"'),
    ({"k\u00e9": None}, '{"k\\u00e9": null}'),
    (_NotJson(), '"odd\\u200bvalue\\n"'),  # not JSON: its text, quoted the same way
    (b"x", '"b\'x\'"'),
])
def test_quote_is_json_with_every_escape_visible(value, shown):
    from installer_ext.config.messages import quote

    assert quote(value) == shown
    assert quote(value).isascii() and "\n" not in quote(value)


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(st.text(), st.lists(st.integers()), st.integers()))
def test_quote_shows_at_most_max_shown_characters(value):
    from installer_ext.config.messages import MAX_SHOWN, quote

    full = json.dumps(value)  # ensure_ascii: json's default, escapes visible
    shown = quote(value)
    if len(full) <= MAX_SHOWN:
        assert shown == full
    else:  # as much as fits, then "..."
        assert len(shown) == MAX_SHOWN and shown.endswith("...") and full.startswith(shown[:-3])


@pytest.mark.parametrize("length", [59, 60, 61, 62])
def test_quote_cuts_only_past_max_shown(length):
    from installer_ext.config.messages import MAX_SHOWN, quote

    text = "x" * (length - 2)  # quoted: `length` characters
    expected_shown = f'"{text}"' if length <= MAX_SHOWN else f'"{text}'[: MAX_SHOWN - 3] + "..."
    assert quote(text) == expected_shown and len(quote(text)) == min(length, MAX_SHOWN)


def test_type_name_says_the_kind_with_its_article():
    from installer_ext.config.messages import type_name

    assert [type_name(v) for v in (True, {}, [], 1, 1.5, "1")] == [
        "a boolean", "a mapping", "a list", "a number", "a number", "a string",
    ]
    assert type_name(None) == "empty"  # a YAML key with nothing after it
    assert type_name(None, null="null") == "null"  # the plan file's JSON


def test_key_path_without_a_base_starts_at_the_first_key():
    from installer_ext.config.messages import key_path

    assert key_path("", ["passthrough", 0, "address"]) == "passthrough[0].address"
    assert key_path("", [0, "id"]) == "[0].id"
    assert key_path("install", ["managementInterface", "interfaces", 1]) == "install.managementInterface.interfaces[1]"
    assert key_path("base", []) == "base"


# -- messages.py with small schemas: validators our schemas do not reach in these shapes -------


def small_schema_lines(schema: dict, instance) -> list[str]:
    from installer_ext.config.messages import schema_errors
    from installer_ext.jsonschema_util import validator

    return schema_errors(validator(schema).iter_errors(instance), "x")


@pytest.mark.parametrize("schema, instance, lines", [
    # only the words before the first ": " of the description
    ({"properties": {"p": {"type": "integer", "description": "a port: 1 to 65535: the TCP port", "minimum": 1}}},
     {"p": 0}, ["x.p: 0 is not a port"]),
    ({"type": "string", "description": "a name", "maxLength": 3}, "abcd", ['x: "abcd" is not a name']),
    ({"type": "array", "description": "a pair", "maxItems": 2}, [1, 2, 3], ["x: [1, 2, 3] is not a pair"]),
    ({"type": "integer", "description": "a count", "maximum": 2}, 3, ["x: 3 is not a count"]),
    ({"type": "object", "description": "a choice: one key", "maxProperties": 1, "properties": {"a": {}, "b": {}}},
     {"a": 1, "b": 2}, ["x: a choice needs exactly one of a, b (found: a, b)"]),
    # no description: the type, or nothing to say but that the value is refused
    ({"type": "integer"}, "5", ['x: "5" is a string, expected of type integer']),
    ({"enum": [1, 2]}, 3, ["x: 3 is not valid here"]),
    ({"enum": [1, 2]}, None, ["x: empty, expected valid here"]),
    # a validator of the precedence list wins over one that is not, whatever the order
    ({"type": "string", "minLength": 5, "pattern": "^[a-z]+$", "description": "a name"}, "AB",
     ['x: "AB" is not a name']),
])
def test_small_schema_lines(schema, instance, lines):
    assert small_schema_lines(schema, instance) == lines


def test_a_mapping_schema_without_properties_still_gives_its_lines():
    (unknown,) = small_schema_lines({"type": "object", "additionalProperties": False}, {"a": 1})
    assert unknown.startswith("x.a: unknown key")
    (count,) = small_schema_lines({"type": "object", "description": "a label set", "minProperties": 1}, {})
    assert count.startswith("x: a label set needs exactly one of") and count.endswith("(found: nothing)")


def test_a_validator_without_its_own_words_keeps_the_key_path():
    (line,) = small_schema_lines({"properties": {"l": {"type": "array", "minItems": 1}}}, {"l": []})
    assert line.startswith("x.l: ") and "\n" not in line


def test_keys_of_mixed_types_are_all_reported():
    """A YAML mapping may hold an int key beside string keys: each bad value is a line."""
    lines = small_schema_lines({"type": "object", "additionalProperties": {"type": "string", "description": "a label"}},
                               {1: 5, "a": 6})
    assert len(lines) == 2 and "x.a: 6 is a number, expected a label" in lines
