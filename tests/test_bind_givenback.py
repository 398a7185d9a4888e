"""`installer-ext unbind` gives the devices back for good: the next boots leave them with
the host until `installer-ext bind --again` (issue #12 item 10). Tested across reboots:
each boot is a fresh tree of the same node (drivers as the kernel probes them) with what
persists carried over (/oem and /usr/local; /run and /etc are rebuilt), and the yip
stage's `if:` as docs/node.md asks the install step to write it."""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil

import pytest

from installer_ext import paths
from installer_ext.boot import givenback
from installer_ext.commands.bind import add_bind_arguments, add_unbind_arguments, run_bind, run_unbind
from installer_ext.boot.options import Options
from installer_ext.errors import BadInput
from installer_ext.firstboot.inputs import bound_devices
from installer_ext.plan.planfile import load_plan
from tests.fakekernel import FakeKernel, grp, plan_json, pt, write_plan
from tests.fakesys.builder import build, with_changes
from tests.fakesys.machines import workstation_node

GPU, AUDIO, PORT, IGB = "0000:01:00.0", "0000:01:00.1", "0000:00:01.0", "0000:03:00.0"
NATIVE = {GPU: "nvidia", AUDIO: "snd_hda_intel", IGB: "igb"}
PERSISTENT = ("oem", "usr/local")  # the OEM partition and COS_PERSISTENT


def the_plan() -> dict:
    return plan_json(
        passthrough=[pt(GPU, "10de:2206", 1, driver="nvidia"), pt(AUDIO, "10de:1aef", 1, driver="snd_hda_intel"),
                     pt(IGB, "8086:1533", 11, bind="ids", driver="igb")],
        groups=[grp([PORT, GPU, AUDIO], [GPU, AUDIO], [PORT], 1), grp([IGB], [IGB], gid=11)],
    ) | {"vfio_ids": ["8086:1533"]}


def yip_initramfs(k: FakeKernel) -> bool:
    """The yip step that writes the modprobe.d options and the udev rule, as it must be:
    `if: [ -f /oem/installer-ext/plan.json ] && [ ! -e /oem/installer-ext/given-back.json ]
    && ! grep -qw installer_ext.skip=1 /proc/cmdline`. When it runs, `options vfio-pci
    ids=` has vfio-pci claim the ids devices as the module loads, and the rule's
    driver_override keeps the native driver off the address devices until the binder.
    Returns whether it ran."""
    plan_path = os.path.join(k.root, paths.PLAN_FILE)
    with open(os.path.join(k.root, "proc", "cmdline")) as f:
        rescue = paths.SKIP_ARG in f.read().split()
    if not os.path.isfile(plan_path) or os.path.exists(givenback.path_under(k.root)) or rescue:
        return False
    plan = load_plan(plan_path)
    for p in plan.passthrough:
        k.detach(p.address)
        if p.bind_at_boot == "ids":
            k.attach(p.address, "vfio-pci")
        else:
            with open(os.path.join(k.devdir(p.address), "driver_override"), "w") as f:
                f.write("vfio-pci\n")
    return True


class Node:
    """One node across boots."""

    def __init__(self, tmp_path, machine=None) -> None:
        self.tmp = tmp_path
        self.machine = machine or workstation_node()
        self.boots = 0
        self.k: FakeKernel | None = None
        self.yip_ran = False

    def boot(self, plan: dict | None = None, machine=None) -> FakeKernel:
        self.boots += 1
        root = build(machine or self.machine, str(self.tmp / f"boot{self.boots}"))
        if self.k is not None:
            for rel in PERSISTENT:
                src = os.path.join(self.k.root, rel)
                if os.path.isdir(src):
                    shutil.copytree(src, os.path.join(root, rel), dirs_exist_ok=True, symlinks=True)
        if plan is not None:
            write_plan(root, plan)
        self.k = FakeKernel(root)
        self.yip_ran = yip_initramfs(self.k)
        return self.k

    def run(self, verb: str, *argv: str) -> tuple[int, str]:
        p = argparse.ArgumentParser()
        (add_bind_arguments if verb == "bind" else add_unbind_arguments)(p)
        out = io.StringIO()
        k = self.k
        rc = (run_bind if verb == "bind" else run_unbind)(
            p.parse_args(["--root", k.root, "--timeout", "2", *argv]), Options(io=k.io, clock=k.clock, out=out)
        )
        return rc, out.getvalue()

    def drivers(self) -> dict[str, str | None]:
        return {a: self.k.driver_of(a) for a in (GPU, AUDIO, IGB)}

    def status(self) -> dict:
        with open(os.path.join(self.k.root, paths.BIND_STATUS_FILE)) as f:
            return json.load(f)


ALL_VFIO = {GPU: "vfio-pci", AUDIO: "vfio-pci", IGB: "vfio-pci"}


def test_given_back_stays_given_back_across_reboots_until_asked_again(tmp_path):
    n = Node(tmp_path)
    n.boot(the_plan())
    assert n.yip_ran
    assert n.run("bind")[0] == 0 and n.drivers() == ALL_VFIO

    rc, out = n.run("unbind")
    mark = givenback.path_under(n.k.root)
    assert rc == 0 and n.drivers() == NATIVE
    assert out.rstrip().splitlines()[-1] == (
        f"unbind: 3 given back, 0 already off vfio-pci, 0 skipped, 0 failed; 12 sysfs writes; for good: the host "
        f"keeps them at every boot ({mark}); `installer-ext bind --again` takes them back"
    )
    with open(mark) as f:
        data = json.load(f)
    with open(os.path.join(n.k.root, paths.PLAN_FILE), "rb") as f:
        import hashlib

        assert data["plan_sha256"] == hashlib.sha256(f.read()).hexdigest()

    for _ in range(2):  # two reboots: nothing binds them again
        n.boot()
        assert not n.yip_ran  # the udev rule and the modprobe.d ids are left out
        assert n.drivers() == NATIVE
        rc, out = n.run("bind")
        assert rc == 0 and n.k.io.writes == [] and n.drivers() == NATIVE
        at = data["at"]
        assert out.splitlines() == [
            f"{GPU} [10de:2206]: given back, on nvidia",
            f"{AUDIO} [10de:1aef]: given back, on snd_hda_intel",
            f"{IGB} [8086:1533]: given back, on igb",
            f"bind: given back by `installer-ext unbind` on {at}; nothing touched (`installer-ext bind --again` takes them back)",
        ]
        st = n.status()
        assert st["given_back"] == {"at": at, "file": givenback.path_under(n.k.root)}
        assert {d["status"] for d in st["devices"]} == {"given-back"}
        # First boot claims none of them.
        assert bound_devices(n.k.root, load_plan(os.path.join(n.k.root, paths.PLAN_FILE))).devices == []

    rc, out = n.run("bind", "--again")
    assert rc == 0 and n.drivers() == ALL_VFIO
    assert out.splitlines()[0] == (
        f"bind --again: {givenback.path_under(n.k.root)} removed; the plan's devices are bound, and at every boot again"
    )
    assert not os.path.exists(givenback.path_under(n.k.root)) and n.status()["given_back"] is None

    n.boot()
    assert n.yip_ran and n.k.driver_of(IGB) == "vfio-pci"  # claimed by id at boot again
    rc, out = n.run("bind")
    assert rc == 0 and n.drivers() == ALL_VFIO


def test_unbind_of_one_address_lasts_until_the_next_boot_and_says_so(tmp_path):
    n = Node(tmp_path)
    n.boot(the_plan())
    n.run("bind")
    rc, out = n.run("unbind", "--address", IGB)
    assert rc == 0 and n.k.driver_of(IGB) == "igb" and n.k.driver_of(GPU) == "vfio-pci"
    assert out.rstrip().endswith(
        "until the next boot (`installer-ext unbind` without --address gives the plan back for good)"
    )
    assert not os.path.exists(givenback.path_under(n.k.root))
    n.boot()
    assert n.yip_ran and n.run("bind")[0] == 0 and n.drivers() == ALL_VFIO


def test_a_new_plan_is_a_new_request(tmp_path):
    n = Node(tmp_path)
    n.boot(the_plan())
    n.run("bind")
    n.run("unbind")
    changed = the_plan()
    changed["passthrough"] = changed["passthrough"][:2]  # rendered again without the I210
    changed["vfio_ids"] = []
    n.boot(changed)
    assert not n.yip_ran  # the mark is still there at this boot's yip stage
    rc, out = n.run("bind")
    mark = givenback.path_under(n.k.root)
    assert rc == 0 and n.k.driver_of(GPU) == "vfio-pci" and n.k.driver_of(IGB) == "igb"
    assert out.splitlines()[0].startswith(f"bind: {mark} gave back an earlier plan (on ")
    assert out.splitlines()[0].endswith(") and plan.json changed since: removed")
    assert not os.path.exists(mark)
    n.boot()
    assert n.yip_ran


def test_a_mark_that_cannot_be_read_is_honoured(tmp_path):
    n = Node(tmp_path)
    k = n.boot(the_plan())
    mark = givenback.path_under(k.root)
    with open(mark, "w") as f:
        f.write("{garbage")
    rc, out = n.run("bind")
    assert rc == 0 and k.io.writes == []
    assert out.rstrip().splitlines()[-1] == (
        f"bind: given back {mark} is not a given-back mark this program wrote; nothing touched "
        "(`installer-ext bind --again` takes them back)"
    )
    assert n.run("bind", "--again")[0] == 0 and not os.path.exists(mark)


def test_unbind_that_cannot_write_the_mark_says_until_the_next_boot_and_fails(tmp_path):
    n = Node(tmp_path)
    k = n.boot(the_plan())
    n.run("bind")
    os.makedirs(givenback.path_under(k.root))  # a directory where the mark goes
    rc, out = n.run("unbind")
    assert rc == 1 and n.drivers() == NATIVE  # given back now all the same
    assert "until the next boot only: the given-back mark could not be written (" in out.splitlines()[-1]


def test_a_rescue_boot_with_again_removes_the_mark_and_touches_nothing(tmp_path):
    n = Node(tmp_path)
    n.boot(the_plan())
    n.run("bind")
    n.run("unbind")
    rescue = with_changes(n.machine, "rescue", cmdline=n.machine.cmdline + " installer_ext.skip=1")
    k = n.boot(machine=rescue)
    rc, out = n.run("bind", "--again")
    assert rc == 0 and k.io.writes == [] and n.drivers() == NATIVE
    assert out.splitlines()[0] == (
        f"bind --again: {givenback.path_under(k.root)} removed; the devices are bound from the next boot"
    )
    n.boot()
    assert n.yip_ran and n.run("bind")[0] == 0 and n.drivers() == ALL_VFIO


def test_again_does_not_go_with_one_address(tmp_path):
    n = Node(tmp_path)
    n.boot(the_plan())
    with pytest.raises(BadInput) as e:
        n.run("bind", "--again", "--address", GPU)
    assert e.value.lines == ["--again takes every device of the plan back; it does not go with --address"]
    assert n.k.io.writes == []


def test_again_when_nothing_was_given_back(tmp_path):
    n = Node(tmp_path)
    n.boot(the_plan())
    rc, out = n.run("bind", "--again")
    assert rc == 0 and out.splitlines()[0] == "bind --again: nothing was given back" and n.drivers() == ALL_VFIO


def test_the_udev_rules_run_for_one_address_honours_the_mark(tmp_path):
    n = Node(tmp_path)
    n.boot(the_plan())
    n.run("bind")
    n.run("unbind")
    n.boot()
    assert n.run("bind")[0] == 0
    rc, out = n.run("bind", "--address", GPU)
    assert rc == 0 and n.k.io.writes == [] and n.drivers() == NATIVE
    assert out.splitlines()[0] == f"{GPU} [10de:2206]: given back, on nvidia" and len(out.splitlines()) == 2
    st = n.status()
    assert st["given_back"] is not None and [d["status"] for d in st["devices"]] == ["given-back"] * 3
