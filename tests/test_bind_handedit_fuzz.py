"""Property tests: a plan.json edited by hand, at random, on an installed node (issue #12,
"Done when": generators for hand-edited plans).

Each example starts from a plan the real planner wrote for the workstation (its GPU
group and its spare NIC, groups predicted on the installer ISO) and applies random
edits (tests/planedits.py): wrong types, unknown keys, keys removed, hostile addresses
(`../`, newlines, NUL, short forms), huge and non-finite numbers, deep nesting,
duplicated entries, raw text damage (a 5000-digit number, 100000 brackets, a key given
twice), and the machine's own functions, those the host needs among them, with their
real ids. Half the examples use only the edits that keep the file valid (functions the
host needs written in, groups that lie, entries reordered, dropped or re-flagged), so
that the binder itself, not the schema, meets them.
Then `installer-ext bind` (and `unbind`) runs on the node. Whatever the edit:
- the exit status is 0, 2 or 3 for bind (0, 1 or 2 for unbind: 1 is its "not given
  back"), never an internal error or a traceback;
- exit 2 is one line naming the plan file;
- no function the host needs (root and data disk controllers, the management NIC and its
  IOMMU group, the boot display, bridges) is written to or leaves its driver.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import shutil

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from installer_ext.commands.bind import add_bind_arguments, add_unbind_arguments, run_bind, run_unbind
from installer_ext.boot.options import Options
from installer_ext.errors import ExtError
from tests.fakekernel import FakeKernel
from tests.fakesys.builder import build
from tests.fakesys.machines import intel_workstation, intel_workstation_iommu_off, workstation_node
from tests.planedits import DAMAGES, damaged, edit, text
from tests.planning import WORKSTATION_INSTALL, plan_for

# What the installed workstation's host needs, with the driver it must keep: the AHCI
# controller (/, /oem, /usr/local), the NVMe (the data disk), the management NIC and
# the rest of its IOMMU group, the boot display, and the bridges.
NEEDED = {
    "0000:00:17.0": ("8086:a352", "ahci"), "0000:02:00.0": ("144d:a808", "nvme"),
    "0000:00:1f.6": ("8086:15bc", "e1000e"), "0000:00:1f.3": ("8086:a348", "snd_hda_intel"),
    "0000:00:1f.4": ("8086:a323", "i801_smbus"), "0000:00:1f.5": ("8086:a324", "intel-spi"),
    "0000:00:1f.0": ("8086:a305", None), "0000:00:02.0": ("8086:3e98", "i915"),
    "0000:00:00.0": ("8086:3e30", "skl_uncore"), "0000:00:01.0": ("8086:1901", "pcieport"),
    "0000:00:1b.0": ("8086:a340", "pcieport"), "0000:00:1c.0": ("8086:a338", "pcieport"),
}
DEVICES = {d.address: (d.ids, d.driver) for d in intel_workstation().devices}


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """(a clean installed node's tree, the planner's plan for it)."""
    iso = build(intel_workstation_iommu_off(), str(tmp_path_factory.mktemp("iso") / "t"))
    section = {"enabled": True, "devices": [{"address": "0000:01:00.0"}, {"address": "0000:03:00.0"}]}
    plan = plan_for(iso, section, WORKSTATION_INSTALL).to_json()
    assert not any(r["fatal"] for r in plan["refused"]) and len(plan["passthrough"]) == 3
    template = build(workstation_node(), str(tmp_path_factory.mktemp("node") / "t"))
    return template, plan


class Tree:
    """One working copy of the node, copied again only after a run wrote to sysfs."""

    def __init__(self, template: str, where: str) -> None:
        self.template, self.root, self.dirty = template, where, True

    def fresh(self) -> FakeKernel:
        if self.dirty:
            shutil.rmtree(self.root, ignore_errors=True)
            shutil.copytree(self.template, self.root, symlinks=True)
        for rel in ("run", "usr/local/lib/installer-ext", "oem/installer-ext"):
            shutil.rmtree(os.path.join(self.root, rel), ignore_errors=True)
        self.dirty = False
        return FakeKernel(self.root)


def _run(k: FakeKernel, verb: str, plan_path: str) -> tuple[int, list[str], str]:
    p = argparse.ArgumentParser()
    (add_bind_arguments if verb == "bind" else add_unbind_arguments)(p)
    out = io.StringIO()
    args = p.parse_args(["--root", k.root, "--plan", plan_path, "--timeout", "1"])
    try:
        rc = (run_bind if verb == "bind" else run_unbind)(args, Options(io=k.io, clock=k.clock, out=out))
        return rc, [], out.getvalue()
    except ExtError as exc:  # what cli.main prints: its lines, its exit code
        return exc.exit_code, exc.lines, out.getvalue()


def _check(k: FakeKernel, verb: str, plan_path: str) -> int:
    before = {a: (k.driver_of(a), k.override_of(a)) for a in NEEDED}
    rc, err, out = _run(k, verb, plan_path)
    assert rc in ((0, 2, 3) if verb == "bind" else (0, 1, 2)), (rc, err, out)
    if rc == 2:
        assert len(err) == 1 and "\n" not in err[0] and err[0].startswith(f"{plan_path}: "), err
        assert k.io.writes == []
    else:
        assert err == []
    for a, (driver, override) in before.items():
        assert (k.driver_of(a), k.override_of(a)) == (driver, override), (a, out)
        assert not any(a in path or value == a for path, value in k.io.writes), (a, k.io.writes)
    return rc


SETTINGS = settings(max_examples=120, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


@pytest.mark.slow
@SETTINGS
@given(data=st.data())
def test_bind_on_a_hand_edited_plan(base, tmp_path, data):
    template, plan = base
    tree = _tree(tmp_path, template)
    doc = copy.deepcopy(plan)
    valid = data.draw(st.booleans())  # half the examples stay valid and meet the binder itself
    for _ in range(data.draw(st.integers(1, 4))):
        if isinstance(doc, dict):
            edit(data, doc, NEEDED, DEVICES, valid)
    k = tree.fresh()
    plan_path = os.path.join(str(tmp_path), "plan.json")
    with open(plan_path, "w", encoding="utf-8") as f:
        f.write(text(data, doc, damage=not valid))
    event(f"bind exit {_check(k, 'bind', plan_path)}")  # --hypothesis-show-statistics shows the mix
    tree.dirty = bool(k.io.writes)


@pytest.mark.slow
@SETTINGS
@given(data=st.data())
def test_unbind_after_bind_on_a_hand_edited_plan(base, tmp_path, data):
    """The planner's plan is bound first; then a hand-edited plan is given back."""
    template, plan = base
    tree = _tree(tmp_path, template)
    k = tree.fresh()
    good = os.path.join(str(tmp_path), "good.json")
    with open(good, "w") as f:
        json.dump(plan, f)
    assert _check(k, "bind", good) == 0
    doc = copy.deepcopy(plan)
    valid = data.draw(st.booleans())
    for _ in range(data.draw(st.integers(1, 3))):
        if isinstance(doc, dict):
            edit(data, doc, NEEDED, DEVICES, valid)
    edited = os.path.join(str(tmp_path), "plan.json")
    with open(edited, "w", encoding="utf-8") as f:
        f.write(text(data, doc, damage=not valid))
    k.io.writes.clear()
    event(f"unbind exit {_check(k, 'unbind', edited)}")
    # The next example binds the planner's plan again first: no new copy of the tree
    # unless a run left a device that binding cannot bring back.
    tree.dirty = any(k.driver_of(a) not in ("vfio-pci", d) for a, d in
                     (("0000:01:00.0", "nvidia"), ("0000:01:00.1", "snd_hda_intel"), ("0000:03:00.0", "igb")))


_TREES: dict[str, Tree] = {}


def _tree(tmp_path, template: str) -> Tree:
    # One working copy per test function (hypothesis calls it many times with one tmp_path).
    key = str(tmp_path)
    if key not in _TREES:
        _TREES[key] = Tree(template, os.path.join(key, "node"))
    return _TREES[key]


def test_the_edits_reach_every_outcome(base, tmp_path):
    """The generators are not vacuous: the planner's plan binds (0), a function the host
    needs is refused (3), a damaged file is bad input (2)."""
    template, plan = base
    tree = Tree(template, str(tmp_path / "node"))
    outcomes = set()
    for doc_text in (
        json.dumps(plan),
        json.dumps({**plan, "passthrough": [{**plan["passthrough"][0], "address": "0000:00:17.0", "vendor_id": "8086",
                                              "device_id": "a352"}]}),
        "[" * 100000,
    ):
        tree.dirty = True
        k = tree.fresh()
        path = str(tmp_path / "plan.json")
        with open(path, "w") as f:
            f.write(doc_text)
        outcomes.add(_check(k, "bind", path))
    assert outcomes == {0, 2, 3}


@pytest.mark.parametrize("damage", DAMAGES)
def test_every_text_damage_changes_the_text(base, damage):
    out = json.dumps(base[1])
    assert damaged(out, damage, len(out) // 2) != out
