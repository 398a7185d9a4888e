"""The node boot's stand-ins and helpers, without QEMU: the yip stand-in (tests/e2e/yip.py),
what node.py derives from a rendered target, and node_probe.py's reading of systemd's
time spans and restart policy. These run everywhere (`E2E = False`)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from installer_ext import paths
from tests.conftest import require_tool

from . import node, node_probe, yip

E2E = False

CONFIG = """\
install:
  device: /dev/sda
  managementInterface:
    interfaces: [{name: eth0}]
pciPassthrough:
  enabled: true
  gpuDrivers: false
  devices:
    - address: "0000:00:04.0"
    - address: "0000:02:01.0"
  sriov:
    - address: "0000:01:00.0"
      numVfs: 2
      vfsToVfio: true
"""


@pytest.fixture(scope="module")
def target(real_kernel, tmp_path_factory) -> Path:
    """What `render --target` writes for the node config on the recorded q35 machine."""
    tmp = tmp_path_factory.mktemp("render")
    (tmp / "config.yaml").write_text(CONFIG)
    out = tmp / "target"
    out.mkdir()
    p = subprocess.run([sys.executable, "-m", "installer_ext", "render", "--config", str(tmp / "config.yaml"),
                        "--root", real_kernel("off"), "--target", str(out)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return out


def rendered_yip(target: Path) -> dict:
    return yip.load((target / paths.YIP_FILE).read_text())


# -- yip ---------------------------------------------------------------------------------


def test_the_rendered_yip_file_uses_only_what_the_standin_implements(target):
    doc = rendered_yip(target)
    steps = yip.steps_of(doc, "initramfs")
    assert steps and all(set(s) <= yip.IMPLEMENTED for s in steps)
    assert any((s.get("systemctl") or {}).get("enable") for s in steps)
    # what it leaves out runs after systemd is up on a node
    assert yip.left_out(doc, "initramfs") and all(x.startswith("boot/") for x in yip.left_out(doc, "initramfs"))


def test_octal_permissions_read_as_yip_reads_them():
    doc = yip.load("stages:\n  initramfs:\n    - files:\n        - path: /x\n          permissions: 0644\n")
    assert doc["stages"]["initramfs"][0]["files"][0]["permissions"] == 0o644


@pytest.mark.parametrize("step, message", [
    ({"name": "s", "commands": ["true"]}, "uses commands"),
    ({"name": "s", "directories": [{"path": "/d"}]}, "uses directories"),
])
def test_a_key_the_standin_does_not_implement_is_refused(step, message):
    with pytest.raises(yip.YipError, match=message):
        yip.steps_of({"stages": {"initramfs": [step]}}, "initramfs")


def test_files_in_a_stage_it_does_not_run_are_refused():
    doc = {"stages": {"initramfs": [], "boot": [{"name": "late", "files": [{"path": "/x", "content": ""}]}]}}
    with pytest.raises(yip.YipError, match="runs only the initramfs stage"):
        yip.steps_of(doc, "initramfs")


def test_a_step_runs_only_when_its_if_exits_zero(tmp_path):
    files = [{"path": "/etc/a.conf", "permissions": 0o644, "owner": 0, "group": 0, "content": "x\n"}]
    skipped = yip.run_step(str(tmp_path), "initramfs", {"name": "n", "if": "false", "files": files}, 1)
    assert (skipped.applied, skipped.condition_rc, skipped.files) == (False, 1, [])
    assert not (tmp_path / "etc/a.conf").exists()
    done = yip.run_step(str(tmp_path), "initramfs", {"name": "n", "if": "[ 1 = 1 ]", "files": files}, 1)
    assert (done.applied, done.files) == (True, ["/etc/a.conf"])
    assert (tmp_path / "etc/a.conf").read_text() == "x\n"


def test_files_get_their_mode_and_owner_and_a_parent_with_the_execute_bit(tmp_path):
    entry = {"path": "/new/dir/f", "permissions": 0o640, "owner": 0, "group": 0, "content": "c"}
    yip.write_file(str(tmp_path), entry, "t")
    f = tmp_path / "new/dir/f"
    assert stat.S_IMODE(f.stat().st_mode) == 0o640
    # pkg/plugins/files.go: permissions below 0700 get the owner's execute bit for the parent
    assert stat.S_IMODE((tmp_path / "new/dir").stat().st_mode) == 0o740


@pytest.mark.parametrize("entry, message", [
    ({"path": "/f", "permissions": "0644"}, "permissions '0644' is not a number"),
    ({"path": "/f", "content": "{{ .Values.x }}"}, "Go template"),
    ({"path": "/f", "encoding": "base64", "content": "eA=="}, "encoding 'base64'"),
    ({"path": "relative"}, "not an absolute path"),
    ({"path": "/a/../b"}, "not an absolute path"),
    ({"path": "/f", "ownerstring": "root"}, "ownerstring"),
])
def test_file_entries_it_cannot_write_faithfully_are_refused(tmp_path, entry, message):
    with pytest.raises(yip.YipError, match=message):
        yip.write_file(str(tmp_path), entry, "t")


def test_systemctl_enable_makes_the_install_links(tmp_path):
    require_tool("systemctl")
    units = tmp_path / "etc/systemd/system"
    units.mkdir(parents=True)
    (units / "x.service").write_text("[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n")
    rep = yip.run_step(str(tmp_path), "initramfs", {"name": "n", "systemctl": {"enable": ["x.service"]}}, 1)
    assert rep.enabled == ["x.service"]
    link = units / "multi-user.target.wants/x.service"
    assert link.is_symlink() and os.readlink(link) == "/etc/systemd/system/x.service"
    with pytest.raises(yip.YipError, match="systemctl start is not implemented"):
        yip.run_step(str(tmp_path), "initramfs", {"name": "n", "systemctl": {"start": ["x.service"]}}, 1)


# -- node.py -----------------------------------------------------------------------------


def test_unit_commands_come_from_the_rendered_units(target):
    cmds = node.unit_commands(rendered_yip(target))
    names = {os.path.basename(p) for p in cmds}
    assert {paths.BIND_UNIT, "installer-ext-bind@.service", paths.FIRSTBOOT_UNIT} <= names
    for path, argvs in cmds.items():
        if path.endswith(".timer"):
            assert argvs == []  # a timer starts its service; it runs nothing itself
        else:
            assert len(argvs) == 1 and argvs[0][0].startswith("/"), path
    bind = next(v for p, v in cmds.items() if p.endswith("/" + paths.BIND_UNIT))[0]
    assert "bind" in bind and "--plan" in bind


def test_exec_argv_drops_systemd_prefixes_and_joins_continuations():
    assert node.exec_argv("-/usr/bin/x --a 'b c'") == ["/usr/bin/x", "--a", "b c"]
    assert node.unit_settings("[Service]\nExecStart=/bin/a \\\n  --b\n# ExecStart=/no\n") == [("ExecStart", "/bin/a --b")]


def test_what_the_units_run_is_provided_when_render_did_not_write_it(target, tmp_path):
    cmds = node.unit_commands(rendered_yip(target))
    extra = node.program_files(cmds, target)
    for path in extra:
        assert not (target / path.lstrip("/")).exists()
    for argvs in cmds.values():
        for argv in argvs:
            if len(argv) > 1 and argv[1].startswith("/") and node._PYTHON.fullmatch(os.path.basename(argv[0])):
                assert (target / argv[1].lstrip("/")).exists() or argv[1] in extra
    missing = {"/x.service": [["/nonexistent/prog", "run"]]}
    with pytest.raises(node.NodeSetupError, match="render did not write"):
        node.program_files(missing, target)


def test_the_standin_app_runs_this_checkout_with_a_plain_interpreter(tmp_path):
    """With this interpreter and, where there is one, the system's /usr/bin/python3 (what
    today's units run in the guest, whose root is this machine's)."""
    app = tmp_path / "app.pyz"
    app.write_bytes(node.standin_app())
    for python in {sys.executable, *(p for p in ("/usr/bin/python3",) if os.path.exists(p))}:
        p = subprocess.run([python, "-I", str(app), "schema"], capture_output=True, text=True, cwd=tmp_path)
        assert p.returncode == 0, f"{python}: {p.stderr}"
        assert "pciPassthrough" in p.stdout


def test_tree_files_keeps_symlinks(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a/f").write_bytes(b"x")
    (tmp_path / "a/l").symlink_to("f")
    (tmp_path / "a/x").write_bytes(b"#!/bin/sh\n")
    (tmp_path / "a/x").chmod(0o755)
    got = node.tree_files(tmp_path)
    assert got["/a/f"] == b"x" and got["/a/l"] == node.qemu.Link("f")
    assert got["/a/x"] == node.qemu.Executable(b"#!/bin/sh\n")


# -- node_probe.py ---------------------------------------------------------------------


@pytest.mark.parametrize("text, us", [
    ("90", 90_000_000), ("1min 30s", 90_000_000), ("533.333ms", 533_333), ("30min", 1_800_000_000),
    ("1h 2min", 3_720_000_000), ("250us", 250), ("infinity", None), ("0", 0),
])
def test_systemd_time_spans(text, us):
    assert node_probe.span_us(text) == us


def test_a_bad_time_span_is_refused():
    with pytest.raises(ValueError):
        node_probe.span_us("5 parsecs")


def test_the_timescale_dropin_divides_every_time_by_one_factor():
    props = {"StartLimitIntervalUSec": "10s", "RestartUSec": "1min", "TimeoutStartUSec": "30min"}
    argv = ["/usr/bin/python3", "/app", "firstboot", "--plan", "/p"]
    text, factor = node_probe.timescale_dropin(argv, 900.0, 3.0, props, start_slack=20.0)
    assert factor == 300.0
    lines = text.splitlines()
    assert "ExecStart=" in lines and "ExecStart=/usr/bin/python3 /app firstboot --plan /p --deadline 3" in lines
    assert "RestartSec=200000us" in lines and "StartLimitIntervalSec=33333us" in lines
    assert "TimeoutStartSec=26000000us" in lines  # 30 min / 300 + 20 s
    # a --deadline in the unit is the one scaled, and no limit stays no limit
    text, factor = node_probe.timescale_dropin([*argv, "--deadline", "60"], 900.0, 3.0,
                                               {**props, "StartLimitIntervalUSec": "0"})
    assert factor == 20.0 and "StartLimitIntervalSec=0" in text.splitlines()
    assert "--deadline 60" not in text and text.count("--deadline") == 1


@pytest.mark.parametrize("real, bounded", [
    # today's unit: 5 starts within 10 s never happen when each run takes 15 minutes
    ({"Restart": "on-failure", "RestartUSec": "1min", "StartLimitIntervalUSec": "10s", "StartLimitBurst": "5"}, False),
    ({"Restart": "no", "RestartUSec": "100ms", "StartLimitIntervalUSec": "10s", "StartLimitBurst": "5"}, True),
    ({"Restart": "on-failure", "RestartUSec": "1min", "StartLimitIntervalUSec": "infinity", "StartLimitBurst": "3"}, True),
    ({"Restart": "on-failure", "RestartUSec": "1min", "StartLimitIntervalUSec": "2h", "StartLimitBurst": "3"}, True),
    ({"Restart": "on-failure", "RestartUSec": "1min", "StartLimitIntervalUSec": "0", "StartLimitBurst": "3"}, False),
    ({"Restart": "always", "RestartUSec": "1min", "StartLimitIntervalUSec": "40min", "StartLimitBurst": "3"}, False),
])
def test_restart_loop_bound(real, bounded):
    assert (node_probe.restart_loop_bound(real, 900.0) is None) == bounded


def test_ordered_after_follows_after_chains(monkeypatch):
    graph = {
        "rke2-server.service": "network-online.target installer-ext-bind.service basic.target",
        "network-online.target": "network.target",
        "network.target": "network-pre.target",
        "network-pre.target": "",
        "installer-ext-bind.service": "basic.target",
        "basic.target": "sysinit.target",
        "sysinit.target": "",
    }
    calls = []

    def show_many(units, props):
        calls.append(list(units))
        return {u: {"After": graph.get(u, "")} for u in units}

    monkeypatch.setattr(node_probe, "show_many", show_many)
    assert node_probe.ordered_after("rke2-server.service", "installer-ext-bind.service") == [
        "rke2-server.service", "installer-ext-bind.service"]
    assert node_probe.ordered_after("network-online.target", "installer-ext-bind.service") is None
    graph["network-pre.target"] = "installer-ext-bind.service"  # Before=network-pre.target, seen from there
    assert node_probe.ordered_after("network-online.target", "installer-ext-bind.service") == [
        "network-online.target", "network.target", "network-pre.target", "installer-ext-bind.service"]
    assert all(len(set(c)) == len(c) for c in calls)  # one query per unit and level
