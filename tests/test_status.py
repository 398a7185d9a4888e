"""`installer-ext status`: every source present, absent or broken, in words and JSON."""

from __future__ import annotations

import json
import os

from installer_ext import paths
from tests.cli import run


def write(root, rel: str, doc) -> None:
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(doc if isinstance(doc, str) else json.dumps(doc))


def test_a_node_where_nothing_ran(tmp_path):
    r = run("status", "--root", str(tmp_path))
    assert r.rc == 0, r.err
    assert "install:     no install record" in r.out
    assert "first boot:  not-run: first boot has not run" in r.out
    assert "binder:      not run this boot" in r.out and "kernel line: not checked this boot" in r.out
    j = json.loads(run("status", "--root", str(tmp_path), "--json").out)
    assert j["install"]["record"] is None and j["firstboot"]["state"] == "not-run"
    assert j["bind"] is None and j["kernel_args"] is None and j["reconcile"] is None
    assert "reconciler" not in r.out  # a joined agent never runs it


def test_every_source_shown(tmp_path):
    root = str(tmp_path)
    write(root, paths.INSTALL_STATUS_FILE, {"version": 1, "outcome": "refused", "ok": False, "source": "config",
                                            "config": "http://x/c.yaml", "reason": ["refused: 0000:00:1f.6: management network eno1"],
                                            "warnings": [], "at": "2026-12-01T00:00:00+00:00"})
    write(root, paths.FIRSTBOOT_STATE_DIR + "/status.json", {
        "state": "waiting", "steps": [{"name": "claims", "status": "failed", "reason": "API server not ready", "at": "t"}],
        "message": "waiting for the API server", "updated": "t"})
    write(root, paths.BIND_STATUS_FILE, {"version": 1, "skipped": False, "skip_reason": None, "sriov": [],
                                         "devices": [{"address": "0000:01:00.0", "status": "failed", "reason": "group changed"}]})
    write(root, paths.KERNEL_ARGS_STATUS_FILE, {"wanted": ["intel_iommu=on"], "harvester_sets": [], "ours": [], "on_cmdline": [],
                                                "missing": ["intel_iommu=on"], "state": "reboot-pending", "reason": "restored; reboot"})
    r = run("status", "--root", root)
    assert r.rc == 0, r.err
    assert "install:     refused (choices from the config), 2026-12-01T00:00:00+00:00" in r.out
    assert "management network eno1" in r.out
    assert "first boot:  waiting: waiting for the API server" in r.out and "claims: failed (API server not ready)" in r.out
    assert "binder:      0000:01:00.0: failed (group changed)" in r.out
    assert "kernel line: reboot-pending: restored; reboot" in r.out and "missing: intel_iommu=on" in r.out
    # the install wrote a record but no complete set: said once, with the file
    assert "INCOMPLETE" in r.out and "SHA256SUMS: missing" in r.out


def test_first_boot_from_step_records_and_broken_files(tmp_path):
    root = str(tmp_path)
    write(root, paths.FIRSTBOOT_STATE_DIR + "/steps/settings.json", {"step": "settings", "status": "done", "at": "t1"})
    write(root, paths.FIRSTBOOT_STATE_DIR + "/steps/addon.json", {"step": "addon", "status": "failed", "result": {"reason": "409"}})
    write(root, paths.INSTALL_STATUS_FILE, "{not json")
    write(root, paths.KERNEL_ARGS_STATUS_FILE, "[" * 10)
    j = json.loads(run("status", "--root", root, "--json").out)
    assert j["firstboot"]["state"] == "failed" and {s["name"]: s["status"] for s in j["firstboot"]["steps"]} == {"settings": "done", "addon": "failed"}
    assert j["install"]["note"] == "install record not valid JSON"
    assert j["kernel_args"]["state"] == "unknown"
    write(root, paths.FIRSTBOOT_STATE_DIR + "/done", "{}")
    assert json.loads(run("status", "--root", root, "--json").out)["firstboot"]["state"] == "done"


def test_the_reconcilers_last_pass_on_a_server_node(tmp_path):
    root = str(tmp_path)
    write(root, paths.FIRSTBOOT_STATE_DIR + "/" + paths.RECONCILE_STATUS, {
        "state": "done", "message": "2 pending request(s): harv-1 done, harv-2 failed; 41 API requests",
        "updated": "t", "by": "harv-0",
        "nodes": {"harv-1": {"state": "done", "reason": ""}, "harv-2": {"state": "failed", "reason": "no PCIDevice for 0000:03:00.0"}}})
    r = run("status", "--root", root)
    assert r.rc == 0, r.err
    assert "reconciler:  done: 2 pending request(s): harv-1 done, harv-2 failed; 41 API requests" in r.out
    assert "             harv-1: done\n" in r.out and "harv-2: failed (no PCIDevice for 0000:03:00.0)" in r.out
    assert json.loads(run("status", "--root", root, "--json").out)["reconcile"]["nodes"]["harv-2"]["state"] == "failed"
