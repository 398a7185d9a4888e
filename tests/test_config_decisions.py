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
