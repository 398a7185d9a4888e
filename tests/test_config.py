"""The unattended config: spellings, schema, one clear line per problem."""

from __future__ import annotations

import json

import pytest

from installer_ext.config.load import load_config, load_schema, parse_config
from installer_ext.errors import BadInput
from tests.cli import run


def errors_of(doc) -> list[str]:
    with pytest.raises(BadInput) as exc:
        parse_config(doc)
    return exc.value.lines


def write(tmp_path, text: str | bytes, name: str = "config.yaml") -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


def test_camel_snake_and_lowercase_spellings_load_alike():
    camel = parse_config({"pciPassthrough": {"gpuDrivers": True, "allowUnsafeInterrupts": True,
                                             "sriov": [{"address": "0000:02:00.0", "numVfs": 2, "vfsToVfio": False}]}})
    snake = parse_config({"pci_passthrough": {"gpu_drivers": True, "allow_unsafe_interrupts": True,
                                              "sriov": [{"address": "0000:02:00.0", "num_vfs": 2, "vfs_to_vfio": False}]}})
    lower = parse_config({"pcipassthrough": {"gpudrivers": True, "allowunsafeinterrupts": True,
                                             "sriov": [{"address": "0000:02:00.0", "numvfs": 2, "vfstovfio": False}]}})
    assert camel.choices == snake.choices == lower.choices
    assert camel.choices.sriov[0].num_vfs == 2 and camel.choices.sriov[0].vfs_to_vfio is False


def test_install_keys_in_any_spelling():
    c = parse_config({"install": {"data_disk": "/dev/sdb", "device": "/dev/sda",
                                  "management_interface": {"interfaces": [{"name": "eno1", "hw_addr": "AA:BB:CC:DD:EE:FF"}]}}})
    assert (c.install.device, c.install.data_disk) == ("/dev/sda", "/dev/sdb")
    assert c.install.management[0].hw_addr == "aa:bb:cc:dd:ee:ff"
    assert c.has_section is False and c.choices.enabled is False


def test_short_addresses_and_case_are_normalised():
    c = parse_config({"pciPassthrough": {"devices": [{"address": "01:00.0"}, {"address": "0000:5E:00.1"}, {"id": "10DE:2206"}]}})
    assert [s.address for s in c.choices.devices[:2]] == ["0000:01:00.0", "0000:5e:00.1"]
    assert c.choices.devices[2].id == "10de:2206"


def test_key_paths_values_and_expectations():
    lines = errors_of({"pciPassthrough": {
        "devices": [{"address": "0000:00:02.0"}, {"id": "nvidia"}, {"address": "0000:zz:00.0"}],
        "sriov": [{"address": "0000:02:00.0", "numVfs": "8"}],
        "enabled": "yes please",
    }})
    assert 'pciPassthrough.devices[2].address: "0000:zz:00.0" is not a PCI address like 0000:65:00.0' in lines
    assert 'pciPassthrough.devices[1].id: "nvidia" is not a vendor:device id like 10de:2206' in lines
    assert 'pciPassthrough.sriov[0].numVfs: "8" is a string, expected a whole number of VFs from 0 to 4096' in lines
    assert 'pciPassthrough.enabled: "yes please" is a string, expected a boolean' in lines


def test_unknown_keys_get_a_did_you_mean():
    lines = errors_of({"pciPassthrough": {"devcies": [], "gpuDriver": True, "harvester": {"addons": True}}})
    assert any(l.startswith('pciPassthrough.devcies: unknown key (did you mean "devices"?)') for l in lines)
    assert any(l.startswith('pciPassthrough.gpuDriver: unknown key (did you mean "gpuDrivers"?)') for l in lines)
    assert any(l.startswith('pciPassthrough.harvester.addons: unknown key (did you mean "addon"?)') for l in lines)
    lines = errors_of({"pciPassthrough": {"devicePlugin": "nvdia"}})
    assert lines == ['pciPassthrough.devicePlugin: "nvdia" is not one of auto, nvidia, amd, none (did you mean "nvidia"?)']


def test_selectors_need_exactly_one_key():
    lines = errors_of({"pciPassthrough": {"devices": [{}, {"address": "0000:01:00.0", "kind": "gpu"}]}})
    assert "pciPassthrough.devices[0]: a selector needs exactly one of address, id, kind (found: nothing)" in lines
    assert "pciPassthrough.devices[1]: a selector needs exactly one of address, id, kind (found: address, kind)" in lines


@pytest.mark.parametrize("value", ["0000:01:00.0\n", "../../x", "0000:01:00.0/../../../x", " 0000:01:00.0", "0000:01:00.8"])
def test_hostile_addresses_never_pass(value):
    lines = errors_of({"pciPassthrough": {"devices": [{"address": value}]}})
    assert len(lines) == 1 and lines[0].startswith("pciPassthrough.devices[0].address: ")


@pytest.mark.parametrize("arg", ["a b", "x;reboot", "x=$(id)", 'q="1"', "x\n", "`id`", "-x"])
def test_kernel_args_are_plain_tokens(arg):
    lines = errors_of({"pciPassthrough": {"extraKernelArgs": [arg]}})
    assert lines == [f"pciPassthrough.extraKernelArgs[0]: {json.dumps(arg)} is not a kernel argument token"]


def test_acs_override_is_never_written():
    lines = errors_of({"pciPassthrough": {"extraKernelArgs": ["pcie_acs_override=downstream,multifunction"]}})
    assert "fakes IOMMU isolation" in lines[0]


def test_the_same_key_twice_under_two_spellings():
    lines = errors_of({"pciPassthrough": {"gpuDrivers": True, "gpu_drivers": False}})
    assert lines == ["pciPassthrough.gpuDrivers: given twice (as 'gpuDrivers' and 'gpu_drivers')"]


@pytest.mark.parametrize(
    "content, words",
    [
        ("", "empty file"),
        ("   \n# only a comment\n", "empty file"),
        ("- a\n- b\n", "the top level is a list, expected a mapping"),
        ("pciPassthrough: [1, 2]\n", "pciPassthrough: [1, 2] is a list, expected a mapping"),
        ("pciPassthrough: {enabled: true\n", "not valid YAML: line 2 column 1"),
        (b"\x7fELF\x02\x01\x01\0\0\0", "binary data (NUL byte at offset 7)"),
        (b"pciPassthrough:\n  enabled: \xff\xfe\n", "not UTF-8 text (bad byte at offset 27)"),
        ("a: &x [*x]\n", "refers to itself"),
        ("pciPassthrough:\n  enabled: true\n  enabled: false\n", "key 'enabled' given twice"),
        ("install: 3\n", "install: 3 is a number, expected a mapping"),
    ],
)
def test_broken_files_one_line_exit_2(tmp_path, content, words):
    path = write(tmp_path, content)
    r = run("plan", "--config", path, "--root", str(tmp_path))
    assert r.rc == 2, (r.out, r.err)
    assert words in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert "Traceback" not in r.err


def test_missing_and_directory_config(tmp_path):
    r = run("plan", "--config", str(tmp_path / "none.yaml"), "--root", str(tmp_path))
    assert (r.rc, r.err.strip()) == (2, f"installer-ext: {tmp_path / 'none.yaml'}: no such file")
    r = run("plan", "--config", str(tmp_path), "--root", str(tmp_path))
    assert r.rc == 2 and "is a directory" in r.err


def test_unquoted_addresses_stay_strings_as_in_the_go_installer(tmp_path):
    # YAML 1.1 would read 02:00.0 as the base-60 float 120.0; Go's yaml does not.
    path = write(tmp_path, "pciPassthrough:\n  devices:\n    - address: 0000:01:00.0\n    - address: 02:00.0\n")
    c = load_config(path)
    assert [s.address for s in c.choices.devices] == ["0000:01:00.0", "0000:02:00.0"]


def test_schema_command_prints_the_shipped_schema():
    r = run("schema")
    assert r.rc == 0
    schema = json.loads(r.out)
    assert schema == load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(schema)
