"""The plan file contract: one JSON Schema (installer_ext/plan/plan.schema.json) that every
reader of plan.json goes through, bounded parsing, and one line with exit 2 for anything
else (issue #14 item 7, issue #12 item 8)."""

from __future__ import annotations

import copy
import json
import os
import re

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from installer_ext.errors import BadInput
from installer_ext.host import address as addr_re
from installer_ext.plan import planfile
from installer_ext.plan.model import GroupPlan, Passthrough, Plan, Refusal, SriovPlan
from installer_ext.plan.planfile import MAX_DEPTH, load_plan, load_schema, read_plan_file
from tests.cli import run
from tests.fakesys.builder import build
from tests.fakesys.machines import ALL, intel_workstation
from tests.planedits import edit
from tests.planning import EPYC_INSTALL, WORKSTATION_INSTALL, plan_for

GPU = "0000:01:00.0"

# A config per fake machine that gives a plan with passthrough, groups, refusals and
# (on the EPYC) SR-IOV: every part of the plan's JSON is exercised.
CONFIGS = {
    "intel-workstation": ({"enabled": True, "gpuDrivers": True, "devices": [{"kind": "gpu"}, {"address": "0000:03:00.0"}],
                           "extraKernelArgs": ["quiet"]}, WORKSTATION_INSTALL),
    "intel-workstation-iommu-off": ({"enabled": True, "devices": [{"address": "0000:03:00.0"}]}, WORKSTATION_INSTALL),
    "intel-dual-gpu": ({"enabled": True, "gpuDrivers": True, "devices": [{"address": "0000:01:00.0"}]}, WORKSTATION_INSTALL),
    "amd-epyc-server": ({"enabled": True, "gpuDrivers": True, "devices": [{"id": "1002:7310"}],
                         "sriov": [{"address": "0000:02:00.1", "numVfs": 4, "vfsToVfio": True}]}, EPYC_INSTALL),
    "no-iommu-desktop": ({"enabled": True, "devices": [{"kind": "gpu"}]}, None),
    "sriov-host": ({"enabled": True, "sriov": [{"address": "0000:10:00.0", "numVfs": 8, "vfsToVfio": True}]}, None),
}


@pytest.fixture(scope="module")
def plans(tmp_path_factory) -> dict[str, dict]:
    out = {}
    for name, (section, install) in CONFIGS.items():
        machine = ALL[name]() if name != "sriov-host" else ALL[name](nics=2, vfs=4)
        root = build(machine, str(tmp_path_factory.mktemp(name)))
        out[name] = plan_for(root, section, install).to_json()
    return out


def write(tmp_path, data) -> str:
    path = str(tmp_path / "plan.json")
    if not isinstance(data, (str, bytes)):
        data = json.dumps(data)
    with open(path, "w" if isinstance(data, str) else "wb") as f:
        f.write(data)
    return path


def one_line(tmp_path, data) -> str:
    path = write(tmp_path, data)
    with pytest.raises(BadInput) as e:
        load_plan(path)
    assert e.value.exit_code == 2 and len(e.value.lines) == 1 and "\n" not in e.value.lines[0]
    line = e.value.lines[0]
    assert line.startswith(f"{path}: ")
    return line[len(path) + 2:]


# --- the schema is the plan's one description ----------------------------------------------

def test_the_schema_is_a_valid_2020_12_schema():
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_every_plan_the_planner_writes_is_valid_and_reads_back(plans, tmp_path):
    parts = set()
    for name, data in plans.items():
        path = write(tmp_path, data)
        assert load_plan(path).to_json() == data, name
        parts |= {k for k, v in data.items() if v}
    # The configs above exercise every list of the plan, so a field the schema does not
    # know cannot hide in an empty list.
    assert {"passthrough", "sriov", "refused", "groups", "host_gpus", "vfio_ids", "modules", "kernel_args",
            "warnings", "settings", "addons", "device_plugins"} <= parts


def test_the_schema_names_exactly_the_keys_the_plan_writes():
    """A key added to Plan.to_json (or one of its parts) must be added to the schema: the
    node refuses a plan with a key it does not know."""
    schema = load_schema()
    plan = Plan(True, True, "intel", "enabled", False, refused=[Refusal(None, "x")])
    written, props, required = set(plan.to_json()), set(schema["properties"]), set(schema["required"])
    assert written <= props  # the node takes every key the program writes
    assert required <= written
    # The kernel-args change (merged on main after this branch began) writes these two;
    # the schema knows them, optional, so that the plan loads with and without it.
    assert props - required == {"harvester_kernel_args", "added_kernel_args"}
    assert set(plan.to_json()["host"]) == set(schema["properties"]["host"]["properties"])
    defs = schema["$defs"]
    for part, name in (
        (Passthrough("0000:01:00.0", "10de", "2206", 1, "selected", "address"), "passthrough"),
        (SriovPlan("0000:02:00.0", 2, True), "sriov"),
        (GroupPlan(1, False, (), (), ()), "group"),
    ):
        assert set(part.to_json()) == set(defs[name]["properties"]) == set(defs[name]["required"]), name
    refusal = set(Refusal("0000:01:00.0", "x").to_json())
    assert refusal <= set(defs["refusal"]["properties"])
    assert set(defs["refusal"]["required"]) == {"address", "reason", "code", "fatal"}
    # The structured fields of a refusal are accepted.
    assert {"code", "fatal", "by", "subject", "tentative"} <= set(defs["refusal"]["properties"])


def _schema_patterns(node, out):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "pattern":
                out.append(v)
            else:
                _schema_patterns(v, out)
    elif isinstance(node, list):
        for v in node:
            _schema_patterns(v, out)
    return out


def _as_schema(rx: re.Pattern) -> str:
    return "^" + rx.pattern.removeprefix(r"\A").removesuffix(r"\Z") + "$"


def test_the_schema_patterns_are_the_programs_patterns():
    """The strict patterns have one home (host/address.py); the schema repeats them and
    this keeps the two equal."""
    schema = load_schema()
    defs = schema["$defs"]
    assert defs["address"]["pattern"] == _as_schema(addr_re.PCI_ADDRESS_RE)
    assert defs["pciId"]["pattern"] == _as_schema(addr_re.PCI_ID_RE)
    assert defs["vendorDevice"]["pattern"] == _as_schema(addr_re.VENDOR_DEVICE_RE)
    assert defs["driverName"]["pattern"] == _as_schema(addr_re.DRIVER_NAME_RE)
    assert defs["kernelArg"]["pattern"] == _as_schema(addr_re.KERNEL_ARG_RE)
    names = {schema["properties"][k]["propertyNames"]["pattern"] for k in ("settings", "addons")}
    assert len(names) == 1  # RFC 1123 subdomain, as Kubernetes names objects
    name_re = re.compile(names.pop())
    for ok in ("pci-pt-enable", "pcidevices-controller", "a.b-c", "x" * 253):
        assert name_re.fullmatch(ok), ok
    for no in ("Bad", "a_b", "-a", "a-", "a..b", "x" * 254, ""):
        assert not name_re.fullmatch(no), no
    for pattern in _schema_patterns(schema, []):
        assert pattern.startswith("^") and pattern.endswith("$"), pattern


def test_schema_plan_command_prints_it():
    r = run("schema", "--plan")
    assert r.rc == 0 and r.err == ""
    assert json.loads(r.out) == load_schema()
    r = run("schema")
    assert r.rc == 0 and json.loads(r.out)["title"] != load_schema()["title"]


def test_the_schema_ships_with_the_package():
    import importlib.resources

    assert importlib.resources.files("installer_ext.plan").joinpath("plan.schema.json").is_file()
    with open(os.path.join(os.path.dirname(__file__), "..", "pyproject.toml")) as f:
        assert '"installer_ext.plan" = ["plan.schema.json"]' in f.read()


# --- one line, the key path, exit 2 ------------------------------------------------------------

def test_key_paths_and_words(plans, tmp_path):
    good = plans["intel-workstation"]

    def edited(path_value):
        data = json.loads(json.dumps(good))
        path_value(data)
        return one_line(tmp_path, data)

    assert edited(lambda d: d.update(passthru=[])) == 'passthru: unknown key (did you mean "passthrough"?)'
    assert edited(lambda d: d["passthrough"][0].update(adress="x")) == (
        'passthrough[0].adress: unknown key (did you mean "address"?)'
    )
    assert edited(lambda d: d.pop("enabled")) == 'enabled: missing key "enabled"'.replace("enabled: ", "(top level): ")
    assert edited(lambda d: d.update(enabled="yes")) == 'enabled: "yes" is a string, expected a boolean: PCI passthrough on'
    assert edited(lambda d: d["passthrough"][0].update(iommu_group=-1)) == (
        "passthrough[0].iommu_group: -1 is not an integer from 0 to 2147483648, or null"
    )
    assert edited(lambda d: d["groups"][0]["left"].append("0000:01:00.0\n")) .startswith(
        'groups[0].left[1]: "0000:01:00.0\\n" is not a PCI address (like 0000:65:00.0)'
    )
    # A hostile key stays on one line, quoted.
    assert edited(lambda d: d["settings"].update({"a\nb": "1"})) == 'settings: "a\\nb" is not a Setting name'
    assert edited(lambda d: d.update({"x\ny": 1})) == '"x\\ny": unknown key'
    assert edited(lambda d: d["passthrough"].append(dict(d["passthrough"][0]))).startswith(
        f'passthrough[{len(good["passthrough"])}].address: "{good["passthrough"][0]["address"]}" is listed twice'
    )
    # Several problems: the first in key order, and how many more.
    line = edited(lambda d: d.update(enabled=1, claims=2))
    assert line == "claims: 2 is a number, expected a boolean: first boot creates PCIDeviceClaims (and 1 more problem)"


# --- bounded parsing (#12 item 8) -------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[" * 100000, f"nested more than {MAX_DEPTH} levels deep, not a plan"),
        ("[" * 500 + "]" * 500, f"(top level): nested more than {MAX_DEPTH} levels deep, not a plan"),
        ('{"version": 1' + "0" * 5000 + "}", "a number of 5001 digits, longer than any plan value (24)"),
        ('{"version": 1e999}', "1e999 is not a whole number (every number of a plan is)"),
        ('{"version": 1.0}', "1.0 is not a whole number (every number of a plan is)"),
        ('{"version": NaN}', "NaN is not a JSON value"),
        ('{"version": -Infinity}', "-Infinity is not a JSON value"),
        ('{"version": 1, "version": 1}', 'key "version" given twice in one object'),
        ('{"version": 1.' + "5" * 100 + "}", "1." + "5" * 22 + "... is not a whole number (every number of a plan is)"),
    ],
    ids=["100000-brackets", "depth-500", "5000-digits", "1e999", "1.0", "NaN", "-Infinity", "duplicate-key", "long-float"],
)
def test_hostile_json_is_one_line(tmp_path, text, words):
    assert one_line(tmp_path, text) == words


@pytest.mark.parametrize("verb", ["bind", "unbind", "kernel-args"])
@pytest.mark.parametrize("text", ["[" * 100000, '{"version": 1' + "0" * 5000 + "}"], ids=["brackets", "digits"])
def test_every_reader_says_one_line_exit_2(tmp_path, verb, text):
    """Before: `internal error: RecursionError` / `ValueError`, exit 1."""
    root = build(intel_workstation(), str(tmp_path / "node"))
    path = write(tmp_path, text)
    args = ["--plan", path] + (["--grubenv", str(tmp_path / "grubenv")] if verb == "kernel-args" else ["--root", root])
    r = run(verb, *args)
    assert r.rc == 2, r.err
    assert r.err.count("\n") == 1 and r.err.startswith(f"installer-ext: {path}: ") and "internal error" not in r.err
    assert "Traceback" not in r.err + r.out


def test_not_utf8_and_too_big(tmp_path):
    assert one_line(tmp_path, b'{"version": "caf\xe9"}') == "not UTF-8 text (bad byte at offset 16)"
    path = str(tmp_path / "big.json")
    with open(path, "wb") as f:
        f.truncate(planfile.MAX_PLAN_BYTES + 1)
    with pytest.raises(BadInput) as e:
        load_plan(path)
    assert e.value.lines == [f"{path}: larger than {planfile.MAX_PLAN_BYTES // 1024} KiB, not a plan file"]


def test_digest_is_of_the_bytes(plans, tmp_path):
    import hashlib

    path = write(tmp_path, plans["intel-workstation"])
    with open(path, "rb") as f:
        assert read_plan_file(path).digest == hashlib.sha256(f.read()).hexdigest()


# --- the fast check and jsonschema are one schema ---------------------------------------------

def test_the_fast_check_compiles_the_shipped_schema_and_refuses_unknown_keywords():
    from installer_ext.plan.schemacheck import compile_schema

    check = compile_schema(load_schema())
    assert check({"version": 2}) is False
    for unknown in ({"minItems": 1}, {"oneOf": []}, {"$ref": "http://x"}, {"format": "ipv4"}, {"type": "weird"}):
        with pytest.raises(NotImplementedError):
            compile_schema(unknown)


def _jsonschema_valid(doc) -> bool:
    return not list(planfile._validator().iter_errors(doc))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_fast_check_agrees_with_jsonschema(plans, data):
    """A valid plan is recognised without jsonschema (planfile.validate): the two must
    give the same answer for every document, hand-edited or not."""
    from installer_ext.plan.schemacheck import compile_schema

    check = compile_schema(load_schema())
    doc = copy.deepcopy(plans[data.draw(st.sampled_from(sorted(plans)))])
    for _ in range(data.draw(st.integers(0, 3))):
        if isinstance(doc, dict):
            edit(data, doc, NEEDED_SAMPLE)
    assert check(doc) == _jsonschema_valid(doc), json.dumps(doc)[:2000]


NEEDED_SAMPLE = {"0000:00:17.0": ("8086:a352", "ahci"), "0000:00:1f.6": ("8086:15bc", "e1000e")}


@pytest.mark.parametrize("value", [True, False, 0, 1, -1, 2**31, 2**31 + 1, None, "", "1", [], {}])
@pytest.mark.parametrize("key", ["version", "enabled", "claims"])
def test_scalars_at_the_edges_agree(plans, key, value):
    from installer_ext.plan.schemacheck import compile_schema

    doc = {**plans["intel-workstation"], key: value}
    assert compile_schema(load_schema())(doc) == _jsonschema_valid(doc)
    doc = copy.deepcopy(plans["amd-epyc-server"])
    doc["passthrough"][0]["iommu_group"] = value
    doc["sriov"][0]["num_vfs"] = value
    assert compile_schema(load_schema())(doc) == _jsonschema_valid(doc)


def test_the_schema_is_read_from_inside_an_archive(tmp_path):
    """The node runs installer-ext.pyz: the schema is read through zipimport too."""
    import subprocess
    import sys
    import zipfile

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    archive = str(tmp_path / "app.zip")
    with zipfile.ZipFile(archive, "w") as z:
        for d, _, files in os.walk(os.path.join(repo, "installer_ext")):
            for f in files:
                if f.endswith((".py", ".json")):
                    z.write(os.path.join(d, f), os.path.relpath(os.path.join(d, f), repo))
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import installer_ext.plan.planfile as pf; "
            "assert pf.__file__.startswith(sys.argv[1]); print(pf.load_schema()['title'])")
    r = subprocess.run([sys.executable, "-c", code, archive], capture_output=True, text=True, cwd=str(tmp_path))
    assert r.returncode == 0 and r.stdout == "installer-ext plan.json\n", r.stderr


def test_a_plan_path_that_cannot_be_opened_is_one_line_naming_why(tmp_path):
    """fsutil.read_input, the one bounded reader of configs, plans and the grubenv."""
    (tmp_path / "file").write_text("x")
    for path, why in (
        (tmp_path / "missing.json", "no such file"),
        (tmp_path, "is a directory, not a plan file"),
        (tmp_path / "file" / "plan.json", "a part of the path is not a directory"),
    ):
        with pytest.raises(BadInput) as e:
            load_plan(str(path))
        assert e.value.lines == [f"{path}: {why}"] and e.value.exit_code == 2


# --- each decision of the reader, in process -------------------------------------------------

def _edited(good: dict, change) -> dict:
    data = copy.deepcopy(good)
    change(data)
    return data


PCI = "a PCI address (like 0000:65:00.0)"


@pytest.mark.parametrize(
    ("change", "line"),
    [
        # null is named as JSON names it, not as the config's YAML does ("empty").
        (lambda d: d.update(enabled=None), "enabled: null is null, expected a boolean: PCI passthrough on"),
        # An item whose schema is only a reference: what is expected is the definition's.
        (lambda d: d.update(host_gpus=[1]), f"host_gpus[0]: 1 is a number, expected {PCI}"),
        (lambda d: d["passthrough"][0].update(vendor_id=10), "passthrough[0].vendor_id: 10 is a number, expected 4 lowercase hex digits"),
        # A description next to the reference is the closer word and wins.
        (lambda d: d["passthrough"][0].update(driver=5), "passthrough[0].driver: 5 is a number, expected a driver name, or null"),
        (lambda d: d.update(device_plugins=["nvidia", "amd", "nvidia"]), "device_plugins: more than 2 entries"),
        (lambda d: d.update(settings={f"s{i}": "1" for i in range(65)}), "settings: more than 64 entries"),
        # A value is shown as JSON shows it: escapes visible, ASCII only.
        (lambda d: d["passthrough"][0].update(kind="gp\u00fc"),
         'passthrough[0].kind: "gp\\u00fc" is not a device kind (gpu, nic, storage, usb, audio, bridge, other)'),
        # The hint ignores case, as config errors' hints do (config/messages.py did_you_mean).
        (lambda d: d.update(PASSTHRU=[]), 'PASSTHRU: unknown key (did you mean "passthrough"?)'),
        (lambda d: d.update(enabled=1, claims=2, gpu_drivers=3),
         "claims: 2 is a number, expected a boolean: first boot creates PCIDeviceClaims (and 2 more problems)"),
    ],
    ids=["null", "ref-item", "ref-property", "description-beside-ref", "max-items", "max-properties", "non-ascii",
         "hint-any-case", "three-problems"],
)
def test_each_bad_value_is_named_with_what_was_expected(plans, tmp_path, change, line):
    assert one_line(tmp_path, _edited(plans["intel-workstation"], change)) == line


def test_a_long_value_is_cut_so_the_line_stays_readable(plans, tmp_path):
    line = one_line(tmp_path, _edited(plans["intel-workstation"], lambda d: d.update(warnings=["x" * 5000])))
    assert re.fullmatch(r'warnings\[0\]: "x+\.\.\. is not a warning sentence \(at most 4096 characters\)', line), line
    assert len(line) < 150


def test_an_address_listed_twice_in_one_list_names_both_entries(plans, tmp_path):
    """docs/node.md: what a schema cannot say, an address listed twice in `passthrough`
    or `sriov`; the line names the second entry and the first."""
    pt = plans["intel-workstation"]["passthrough"]
    twice = _edited(plans["intel-workstation"], lambda d: d["passthrough"].append(dict(d["passthrough"][1])))
    assert one_line(tmp_path, twice) == (
        f'passthrough[{len(pt)}].address: "{pt[1]["address"]}" is listed twice (also passthrough[1])'
    )
    sriov = plans["amd-epyc-server"]["sriov"]
    twice = _edited(plans["amd-epyc-server"], lambda d: d["sriov"].append(dict(d["sriov"][0])))
    assert one_line(tmp_path, twice) == (
        f'sriov[{len(sriov)}].address: "{sriov[0]["address"]}" is listed twice (also sriov[0])'
    )
    # Once per list: the same address in both lists is the schema's business, not this check's.
    both = _edited(plans["amd-epyc-server"], lambda d: d["sriov"][0].update(address=d["passthrough"][0]["address"]))
    planfile.validate(both)


def test_a_plan_the_two_checks_disagree_on_is_refused(plans, monkeypatch, tmp_path):
    """The fast check refuses and jsonschema finds nothing: refuse, never guess."""
    monkeypatch.setattr(planfile, "_fast_check", lambda: (lambda data: False))
    assert one_line(tmp_path, plans["intel-workstation"]) == "(top level): does not pass the plan schema's check"


def test_what_the_model_cannot_take_is_one_line(plans, monkeypatch, tmp_path):
    class Refusing:
        @staticmethod
        def from_json(data):
            raise TypeError("unexpected keyword argument 'x'")

    monkeypatch.setattr(planfile, "Plan", Refusing)
    assert one_line(tmp_path, plans["intel-workstation"]) == "invalid plan: TypeError: unexpected keyword argument 'x'"


def test_the_plan_file_keeps_its_path_and_plan(plans, tmp_path):
    path = write(tmp_path, plans["amd-epyc-server"])
    got = read_plan_file(path)
    assert got.path == path and got.plan.to_json() == plans["amd-epyc-server"]


def test_numbers_up_to_24_characters_are_read_and_longer_ones_refused():
    assert planfile.parse(b'{"version": ' + b"9" * 24 + b"}", "p.json") == {"version": int("9" * 24)}
    assert planfile.parse(b'{"version": -' + b"9" * 23 + b"}", "p.json") == {"version": -int("9" * 23)}
    with pytest.raises(BadInput) as e:
        planfile.parse(b'{"version": ' + b"9" * 25 + b"}", "p.json")
    assert e.value.lines == ["p.json: a number of 25 digits, longer than any plan value (24)"]


@pytest.mark.parametrize(
    ("number", "shown"),
    [("1." + "5" * 22, "1." + "5" * 22), ("1." + "5" * 23, "1." + "5" * 22 + "...")],
    ids=["24-shown-whole", "25-cut"],
)
def test_a_fraction_is_shown_up_to_24_characters(number, shown):
    with pytest.raises(BadInput) as e:
        planfile.parse(f'{{"version": {number}}}'.encode(), "p.json")
    assert e.value.lines == [f"p.json: {shown} is not a whole number (every number of a plan is)"]


def test_nesting_of_16_levels_is_read_and_17_refused():
    assert planfile.parse(b"[" * MAX_DEPTH + b"1" + b"]" * MAX_DEPTH, "p.json") == json.loads("[" * MAX_DEPTH + "1" + "]" * MAX_DEPTH)
    with pytest.raises(BadInput) as e:
        planfile.parse(b"[" * (MAX_DEPTH + 1) + b"1" + b"]" * (MAX_DEPTH + 1), "p.json")
    assert e.value.lines == [f"p.json: (top level): nested more than {MAX_DEPTH} levels deep, not a plan"]


def test_values_are_counted_across_every_level_up_to_the_limit():
    n = planfile.MAX_VALUES
    planfile._check_shape([0] * (n - 1))  # the list and its n - 1 items: n values
    for data in ([0] * n, [[0] * (n // 2), [0] * (n // 2)]):
        with pytest.raises(planfile._Bad) as e:
            planfile._check_shape(data)
        assert str(e.value) == f"(top level): more than {n} values, not a plan"


def test_json_that_does_not_parse_names_where():
    with pytest.raises(BadInput) as e:
        planfile.parse(b'{\n  "version": 1,\n}', "p.json")
    assert e.value.lines == ["p.json: not valid JSON: Expecting property name enclosed in double quotes (line 3, column 1)"]
    assert e.value.exit_code == 2


def test_what_a_schema_fragment_expects():
    """The words of an error come from the failing schema's description, else from the
    definition it refers to, else a plain "valid here"."""
    assert planfile._expected({"type": "string", "description": "a name"}) == "a name"
    assert planfile._expected({"$ref": "#/$defs/pciId"}) == "4 lowercase hex digits"
    assert planfile._expected({"$ref": "#/$defs/pciId", "description": "an id"}) == "an id"
    assert planfile._expected({"type": "string"}) == "valid here"
    from installer_ext import jsonschema_util

    # An object that takes no key at all: every key is unknown, no hint.
    err = next(jsonschema_util.validator({"type": "object", "additionalProperties": False}).iter_errors({"x": 1}))
    assert planfile._message(err) == ("x", "unknown key")


def test_problems_at_one_key_are_ordered_by_keyword_not_by_discovery():
    """The first problem shown does not depend on the order jsonschema finds them in."""
    late = jsonschema.ValidationError("m", validator="pattern", path=["a"])
    early = jsonschema.ValidationError("m", validator="maxLength", path=["a"])
    before = jsonschema.ValidationError("m", validator="type", path=[])
    assert sorted([late, early, before], key=planfile._sort_key) == [before, early, late]


def test_problems_in_a_list_are_ordered_by_entry():
    """passthrough[2] is shown before passthrough[10], as in config errors."""
    tenth = jsonschema.ValidationError("m", validator="type", path=["passthrough", 10, "address"])
    second = jsonschema.ValidationError("m", validator="type", path=["passthrough", 2, "address"])
    assert sorted([tenth, second], key=planfile._sort_key) == [second, tenth]
    # Keys by name, whatever the order they are found in.
    warnings = jsonschema.ValidationError("m", validator="type", path=["warnings"])
    enabled = jsonschema.ValidationError("m", validator="type", path=["enabled"])
    assert sorted([warnings, enabled], key=planfile._sort_key) == [enabled, warnings]
