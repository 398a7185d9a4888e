"""The bind/unbind command line: options, exit codes, and bad input that must never
reach a sysfs path (exit 2, one line naming the file and the key)."""

from __future__ import annotations

import argparse
import io
import json
import os

import pytest

from installer_ext.commands.bind import add_bind_arguments, add_unbind_arguments, run_bind, run_unbind
from installer_ext.boot.options import Options
from installer_ext.errors import EXIT_BAD_INPUT, BadInput
from tests.fakekernel import FakeKernel, grp, plan_json, pt, sriov_entry, write_plan
from tests.fakesys.builder import build
from tests.fakesys.machines import intel_workstation, node_of

GPU = "0000:01:00.0"


def parser(unbind: bool = False) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="installer-ext bind")
    (add_unbind_arguments if unbind else add_bind_arguments)(p)
    return p


@pytest.fixture
def k(tmp_path) -> FakeKernel:
    root = str(tmp_path / "root")
    build(node_of(intel_workstation()), root)
    return FakeKernel(root)


def call(k: FakeKernel, *argv: str, unbind: bool = False) -> tuple[int, str]:
    args = parser(unbind).parse_args(["--root", k.root, *argv])
    out = io.StringIO()
    base = Options(io=k.io, clock=k.clock, out=out)
    rc = (run_unbind if unbind else run_bind)(args, base)
    return rc, out.getvalue()


def good_plan() -> dict:
    return plan_json(
        passthrough=[pt(GPU, "10de:2206", 1, driver="nvidia"), pt("0000:01:00.1", "10de:1aef", 1)],
        groups=[grp(["0000:00:01.0", GPU, "0000:01:00.1"], [GPU, "0000:01:00.1"], ["0000:00:01.0"], 1)],
    )


def test_defaults_and_exit_codes(k):
    args = parser().parse_args([])
    assert (args.root, args.plan, args.timeout, args.json, args.address) == ("/", None, 10.0, False, None)
    write_plan(k.root, good_plan())
    rc, out = call(k)
    assert rc == 0 and out.rstrip().splitlines()[-1].startswith("bind: 2 bound")
    k.stall.add("0000:03:00.0")
    data = good_plan()
    data["passthrough"].append(pt("0000:03:00.0", "8086:1533", 11))
    write_plan(k.root, data)
    rc, out = call(k, "--timeout", "0.5")
    assert rc == 1 and "failed: vfio-pci did not take it within 0.5s" in out


def test_json_prints_the_status(k, capsys):
    write_plan(k.root, good_plan())
    rc, out = call(k, "--json")
    printed = json.loads(capsys.readouterr().out)
    assert rc == 0 and out == ""
    with open(os.path.join(k.root, "run/installer-ext/bind-status.json")) as f:
        assert printed == json.load(f)


def test_plan_option_points_elsewhere(k, tmp_path):
    path = str(tmp_path / "other.json")
    with open(path, "w") as f:
        json.dump(good_plan(), f)
    rc, _ = call(k, "--plan", path)
    assert rc == 0 and k.driver_of(GPU) == "vfio-pci"


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "abc", "601"])
def test_bad_timeout_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as e:
        parser().parse_args(["--timeout", value])
    assert e.value.code == EXIT_BAD_INPUT


def bad(k: FakeKernel, *argv: str, unbind: bool = False) -> str:
    with pytest.raises(BadInput) as e:
        call(k, *argv, unbind=unbind)
    assert e.value.exit_code == EXIT_BAD_INPUT
    assert len(e.value.lines) == 1 and "\n" not in e.value.lines[0]
    return e.value.lines[0]


def test_missing_plan(k):
    path = os.path.join(k.root, "oem/installer-ext/plan.json")
    assert bad(k) == f"{path}: no such file"
    assert k.io.writes == []


def test_unreadable_and_invalid_plans(k):
    path = write_plan(k.root, "{not json")
    assert bad(k).startswith(f"{path}: not valid JSON: ")
    write_plan(k.root, "[]")
    assert bad(k) == f"{path}: (top level): [] is a list, expected a mapping (a plan as `installer-ext plan --json` prints it)"
    os.chmod(path, 0)
    if os.geteuid() != 0:
        assert "cannot read" in bad(k)
    os.chmod(path, 0o644)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["passthrough"][0].pop("vendor_id"), 'passthrough[0]: missing key "vendor_id"'),
        (lambda d: d["passthrough"][0].update(vendor_id="10DE"), 'passthrough[0].vendor_id: "10DE" is not 4 lowercase hex digits'),
        (lambda d: d["passthrough"][1].update(bind_at_boot="udev"),
         'passthrough[1].bind_at_boot: "udev" is not "ids" or "address"'),
        (lambda d: d["passthrough"][0].update(driver="../../x"), 'passthrough[0].driver: "../../x" is not a driver name'),
        (lambda d: d["passthrough"][1].update(address=GPU), f'passthrough[1].address: "{GPU}" is listed twice (also passthrough[0])'),
        (lambda d: d.update(sriov=[sriov_entry(GPU, True)]), "sriov[0].num_vfs: true is a boolean, expected an integer from 0 to 65535"),
        (lambda d: d.update(sriov=[sriov_entry(GPU, 70000)]), "sriov[0].num_vfs: 70000 is not an integer from 0 to 65535"),
        (lambda d: d.update(version=2), "version: 2 is not a plan version this program reads (1)"),
        (lambda d: d.update(passthrough={}), "passthrough: {} is a mapping, expected a list of the functions given to vfio-pci"),
    ],
)
def test_invalid_plan_names_the_key(k, edit, message):
    data = good_plan()
    edit(data)
    path = write_plan(k.root, data)
    assert bad(k) == f"{path}: {message}"
    assert k.io.writes == []


EVIL = [
    "0000:01:00.0/../../x",
    "0000:01:00.0\n",
    "../../../../etc/passwd",
    "0000:01:00.0 ",
    "01:00.0",
    "0000:01:00.0/driver",
    "0000:01:00.0\x00",
]


def _poison(data: dict, where: str, evil: str) -> None:
    if where == "passthrough":
        data["passthrough"][0]["address"] = evil
    elif where == "vf_of":
        data["passthrough"][0]["vf_of"] = evil
    elif where == "sriov":
        data["sriov"] = [sriov_entry(evil, 2)]
    elif where == "sriov.vfs":
        data["sriov"] = [sriov_entry("0000:03:00.0", 2, vfs=["0000:03:10.0", evil])]
    elif where == "groups.left":
        data["groups"][0]["left"] = [evil]


KEYS = {
    "passthrough": "passthrough[0].address", "vf_of": "passthrough[0].vf_of", "sriov": "sriov[0].address",
    "sriov.vfs": "sriov[0].vfs[1]", "groups.left": "groups[0].left[0]",
}


@pytest.mark.parametrize("evil", EVIL)
@pytest.mark.parametrize("where", sorted(KEYS))
@pytest.mark.parametrize("verb", ["bind", "unbind"])
def test_malicious_addresses_never_reach_a_path(k, evil, where, verb):
    data = good_plan()
    _poison(data, where, evil)
    path = write_plan(k.root, data)
    line = bad(k, unbind=verb == "unbind")
    assert line.startswith(f"{path}: {KEYS[where]}: {json.dumps(evil)} is not a PCI address")
    assert k.io.writes == []
    # Nothing under sys/ was even looked at: the plan failed before any device path.
    assert not any(p.startswith(k.sys) for p in k.io.reads)


@pytest.mark.parametrize("evil", EVIL[:4] + ["0000:01:00.8", "zz:00.0"])
def test_malicious_address_option(k, evil):
    write_plan(k.root, good_plan())
    assert bad(k, "--address", evil).startswith("--address: ")
    assert k.io.writes == [] and k.io.reads == []


def test_short_address_option_is_normalised(k):
    write_plan(k.root, good_plan())
    rc, out = call(k, "--address", "01:00.0")
    assert rc == 0 and k.driver_of(GPU) == "vfio-pci" and k.driver_of("0000:01:00.1") == "snd_hda_intel"


def test_unbind_command(k):
    write_plan(k.root, good_plan())
    call(k)
    rc, out = call(k, unbind=True)
    assert rc == 0 and k.driver_of(GPU) == "nvidia"
    assert out.rstrip().splitlines()[-1].startswith("unbind: 2 given back")
