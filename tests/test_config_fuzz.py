"""Fuzzing the loader and planner with thousands of generated and mutated configs:
the only outcomes are a plan, a plan with refusals, or BadInput lines (exit 0/3/2);
never another exception, never a traceback."""

from __future__ import annotations

import os
import tempfile

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from installer_ext.config.load import parse_config, read_yaml
from installer_ext.errors import BadInput
from installer_ext.host.facts import gather
from installer_ext.plan.planner import make_plan
from tests.kernel_args_gen import defeats, kernel_args
from tests.planning import WORKSTATION_INSTALL

KEYS = [
    "enabled", "gpuDrivers", "gpu_drivers", "devices", "hostGpus", "sriov", "allowUnsafeInterrupts",
    "extraKernelArgs", "harvester", "devicePlugin", "address", "id", "kind", "numVfs", "vfsToVfio",
    "settings", "addon", "claims", "devcies", "", "0", "pciPassthrough",
]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5000), st.floats(allow_nan=True),
    st.sampled_from([
        "0000:01:00.0", "01:00.0", "0000:03:00.0", "0000:02:00.0", "0000:zz:00.0", "../../x",
        "0000:01:00.0\n", "10de:2206", "8086:1533", "gpu", "nic", "bridge", "auto", "nvidia",
        "intel_iommu=on", "a b", "pcie_acs_override=downstream", "", "\0", "é",
    ]),
    st.text(max_size=12),
    kernel_args(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)),
    max_leaves=25,
)


@pytest.fixture(scope="module")
def ws_facts(machine_root):
    return gather(machine_root("intel-workstation"))


def outcome(doc, facts) -> str:
    try:
        config = parse_config(doc)
    except BadInput as exc:
        assert exc.lines and all(isinstance(l, str) and "\n" not in l.strip("\n") for l in exc.lines)
        return "2"
    try:
        plan = make_plan(facts, config.choices, config.install)
    except BadInput as exc:
        assert exc.lines
        return "2"
    return "3" if plan.fatal_refusals else "0"


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(section=VALUES)
def test_generated_sections(ws_facts, section):
    assert outcome({"install": WORKSTATION_INSTALL, "pciPassthrough": section}, ws_facts) in "023"


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(tokens=st.lists(kernel_args(), max_size=5), enabled=st.booleans())
def test_generated_kernel_arguments(ws_facts, tokens, enabled):
    """Any spelling of an argument that defeats the plan is refused by the planner
    (exit 3), never by the config's shape check (exit 2), never let through (exit 0)."""
    doc = {"install": WORKSTATION_INSTALL, "pciPassthrough": {"enabled": enabled, "extraKernelArgs": tokens}}
    assert outcome(doc, ws_facts) == ("3" if any(defeats(t) for t in tokens) else "0")


VALID = """\
install:
  device: /dev/sda
  managementInterface:
    interfaces:
      - name: eno1
pciPassthrough:
  enabled: true
  gpuDrivers: true
  devices:
    - address: "0000:01:00.0"
    - id: "8086:1533"
  sriov: []
  extraKernelArgs: ["video=efifb:off"]
  harvester: {settings: true, addon: true, claims: true}
  devicePlugin: auto
"""


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(VALID) - 1), st.sampled_from(["flip", "drop", "insert", "dup"]), st.binary(min_size=1, max_size=3)),
        min_size=1,
        max_size=6,
    )
)
def test_mutated_files(ws_facts, edits):
    data = bytearray(VALID.encode())
    for pos, op, blob in edits:
        pos = min(pos, len(data) - 1) if data else 0
        if op == "flip" and data:
            data[pos] ^= blob[0] or 1
        elif op == "drop" and data:
            del data[pos : pos + len(blob)]
        elif op == "insert":
            data[pos:pos] = blob
        elif op == "dup" and data:
            data[pos:pos] = data[pos : pos + 8]
    fd, path = tempfile.mkstemp(suffix=".yaml")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(bytes(data))
        try:
            doc = read_yaml(path)
        except BadInput as exc:
            assert len(exc.lines) == 1 and path in exc.lines[0]
            return
        assert outcome(doc, ws_facts) in "023"
    finally:
        os.unlink(path)


def test_the_unmutated_file_plans(ws_facts, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(VALID)
    doc = read_yaml(str(path))
    assert doc == yaml.safe_load(VALID)
    assert outcome(doc, ws_facts) == "0"
