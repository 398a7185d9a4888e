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


def test_the_same_key_twice_under_two_spellings():
    lines = errors_of({"pciPassthrough": {"gpuDrivers": True, "gpu_drivers": False}})
    assert lines == ['pciPassthrough.gpuDrivers: given twice (as "gpuDrivers" and "gpu_drivers")']


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
        ("pciPassthrough:\n  enabled: true\n  enabled: false\n", 'key "enabled" given twice'),
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


# -- spellings: the installer's (pkg/config/rename.go FuzzyNames + encoding/json) -----------


def test_every_key_of_the_schema_loads_in_the_installers_spellings():
    from installer_ext.config.keys import yaml_key

    schema = load_schema()
    for name in schema["properties"]:
        for spelling in (name, name.lower(), name.upper(), yaml_key(name)):
            doc = {"pciPassthrough": {spelling: schema["properties"][name].get("default", [])}}
            if name == "hostGpus":
                doc["pciPassthrough"][spelling] = []
            if name == "harvester":
                doc["pciPassthrough"][spelling] = {}
            parse_config(doc)  # raises BadInput for an unknown key


def test_spellings_the_installer_does_not_take_are_unknown_keys():
    lines = errors_of({"pciPassthrough": {"gpu-drivers": True}})
    assert lines == [
        'pciPassthrough.gpu-drivers: unknown key (did you mean "gpuDrivers"?); expected one of '
        "enabled, gpuDrivers, devices, hostGpus, sriov, allowUnsafeInterrupts, extraKernelArgs, harvester, devicePlugin"
    ]
    # In the installer's own section an unknown spelling is ignored, as the installer does.
    c = parse_config({"install": {"data-disk": "/dev/sdb", "device": "/dev/sda"}})
    assert c.install.data_disk is None and c.install.device == "/dev/sda"


def test_the_installers_singular_spellings_name_the_management_interfaces():
    # FuzzyNames also takes a field name less its final "s": `interface` is `interfaces`.
    c = parse_config({"install": {"managementinterface": {"interface": [{"hwaddr": "AA:BB:CC:DD:EE:01"}]}}})
    assert [(m.name, m.hw_addr) for m in c.install.management] == [(None, "aa:bb:cc:dd:ee:01")]
    assert c.install.management[0].path == "install.managementInterface.interfaces[0]"


def test_the_hooks_config_spelling_from_go_yaml_marshal_loads():
    # $HARVESTER_CONFIG is a yaml.v3 marshal of the Go struct: lowercased field names.
    c = parse_config({"install": {"managementinterface": {"interfaces": [{"name": "eno1", "hwaddr": ""}]},
                                  "datadisk": "", "device": "/dev/nvme0n1"}})
    assert c.install.device == "/dev/nvme0n1" and c.install.data_disk is None
    assert c.install.management[0].name == "eno1"


# -- the install section's schema ----------------------------------------------------------


def test_install_keys_are_checked_with_one_line_each():
    lines = errors_of({"install": {"device": 5, "managementInterface": {"interfaces": [{"name": "eno1\nx"}, "eth0"]}}})
    assert lines == [
        "install.device: 5 is a number, expected a string on one line",
        'install.managementInterface.interfaces[0].name: "eno1\\nx" is not a string on one line',
        'install.managementInterface.interfaces[1]: "eth0" is a string, expected a mapping with name and hwAddr',
    ]


def test_other_install_keys_are_the_installers_business():
    c = parse_config({"install": {"mode": "create", "vip": 5, "webhooks": [{"x": 1}], "device": "/dev/sda"}})
    assert c.install.known and c.install.mode == "create" and c.install.device == "/dev/sda"
    assert parse_config({"install": None}).install.known is False


# -- one line per mistake ----------------------------------------------------------------


def test_an_empty_value_is_one_line_without_a_guess():
    lines = errors_of({"pciPassthrough": {"devicePlugin": None, "enabled": None}})
    assert lines == [
        "pciPassthrough.devicePlugin: empty, expected one of auto, nvidia, amd, none",
        "pciPassthrough.enabled: empty, expected a boolean",
    ]


# -- YAML merge keys, as gopkg.in/yaml.v3 (decode.go `merge`) -----------------------------


def test_merge_keys_are_accepted_and_the_mapping_own_keys_win(tmp_path):
    path = write(tmp_path, """\
defaults: &defaults
  enabled: true
  gpuDrivers: true
  devicePlugin: amd
extra: &extra
  devicePlugin: nvidia
  extraKernelArgs: [quiet]
pciPassthrough:
  devicePlugin: none
  <<: [*defaults, *extra]
install:
  <<: {device: /dev/sda, mode: create}
""")
    c = load_config(path)
    assert c.choices.enabled and c.choices.gpu_drivers
    assert c.choices.device_plugin == "none"  # its own key wins over both merges
    assert c.choices.extra_kernel_args == ("quiet",)  # from the second merged mapping
    assert c.install.device == "/dev/sda"


def test_the_first_merged_mapping_wins_over_the_later_ones(tmp_path):
    path = write(tmp_path, "a: &a {devicePlugin: amd}\nb: &b {devicePlugin: nvidia}\npciPassthrough:\n  <<: [*a, *b]\n")
    assert load_config(path).choices.device_plugin == "amd"


@pytest.mark.parametrize(
    "content, words",
    [
        ("pciPassthrough:\n  <<: 3\n", "expected a mapping or list of mappings for merging"),
        ("a: &a {enabled: true}\npciPassthrough:\n  <<: *a\n  <<: *a\n", 'key "<<" given twice'),
        ("pciPassthrough:\n  <<: {enabled: true, enabled: false}\n", 'key "enabled" given twice'),
    ],
)
def test_bad_merges_are_one_line_exit_2(tmp_path, content, words):
    r = run("plan", "--config", write(tmp_path, content), "--root", str(tmp_path))
    assert r.rc == 2 and words in r.err and len(r.err.strip().splitlines()) == 1, r.err


# -- a misspelled section: a warning (the installer ignores unknown top-level keys) ---------


def test_a_near_miss_of_the_section_is_one_warning_and_exit_0(machine_root, tmp_path):
    path = write(tmp_path, "pciPasthrough:\n  enabled: true\nsans: [a]\nos: {hostname: x}\nmyNotes: hello\n")
    c = load_config(path)
    assert c.warnings == ('"pciPasthrough": unknown top-level key, ignored as the installer ignores it '
                          '(did you mean "pciPassthrough"?)',)
    r = run("plan", "--config", path, "--root", machine_root("intel-workstation"))
    assert r.rc == 0 and "PCI passthrough: off" in r.out
    assert r.err.splitlines() == ["installer-ext: warning: " + c.warnings[0]]


def test_every_spelling_the_installer_takes_folds_like_the_field():
    from installer_ext.config.keys import is_spelling, spellings

    def fold(key: str) -> str:  # case and "_" only: what every accepted spelling differs in
        return key.replace("_", "").lower()

    for name in ("pciPassthrough", "dataDisk", "hwAddr", "managementInterface", "configUrl", "vfsToVfio"):
        assert all(fold(s) in (fold(name), fold(name[:-1]), fold(name[:-2])) for s in spellings(name))
        assert is_spelling(name.upper(), name) and is_spelling(fold(name), name)
    assert fold("data-disk") != fold("dataDisk") and not is_spelling("data-disk", "dataDisk")
    assert not is_spelling("Data_Disk", "dataDisk")  # neither the json name nor rename.go's forms


def test_the_section_is_found_under_the_spellings_the_installer_takes():
    from installer_ext.config.load import section_key

    assert section_key({"os": {}, "pci_passthrough": {}}) == "pci_passthrough"
    assert section_key({"PCIPASSTHROUGH": {}}) == "PCIPASSTHROUGH"
    assert section_key({"pci-passthrough": {}}) is None
