"""`installer-ext detect`: the JSON contract, the table, exit codes, start-up cost."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.cli import REPO, run

CONTRACT_DEVICE_KEYS = {
    "address", "vendor_id", "device_id", "class_id", "kind", "vendor_name", "device_name",
    "driver", "iommu_group", "boot_vga", "sriov", "physfn", "blocked",
}


def test_detect_json_contract(machine_root):
    r = run("detect", "--root", machine_root("intel-workstation"), "--json")
    assert r.rc == 0, r.err
    doc = json.loads(r.out)
    assert doc["cpu"]["vendor"] == "intel" and doc["cpu"]["virtualization"] is True
    assert doc["iommu"] == {**doc["iommu"], "state": "enabled", "interrupt_remapping": True}
    for d in doc["devices"]:
        assert CONTRACT_DEVICE_KEYS <= set(d)
        assert d["kind"] in ("gpu", "nic", "storage", "usb", "audio", "bridge", "other")
        assert isinstance(d["blocked"], list)
    gpu = next(d for d in doc["devices"] if d["address"] == "0000:01:00.0")
    assert (gpu["vendor_id"], gpu["device_id"], gpu["class_id"]) == ("10de", "2206", "030000")
    assert gpu["iommu_group"] == 1 and gpu["blocked"] == [] and gpu["sriov"] is None
    igpu = next(d for d in doc["devices"] if d["address"] == "0000:00:02.0")
    assert igpu["boot_vga"] is True and igpu["blocked"]
    group1 = next(g for g in doc["groups"] if g["id"] == 1)
    assert group1["devices"] == ["0000:00:01.0", "0000:01:00.0", "0000:01:00.1"]


def test_detect_asks_the_planner_with_empty_choices(machine_root):
    """`blocked` and `blockers` in detect --json are the planner's: what `plan` refuses
    an explicit address for while nothing is chosen (no install section: the NIC with a
    link may become the management network, and its group-mates go with it)."""
    from installer_ext.config.model import Choices, InstallInfo
    from installer_ext.host.facts import gather
    from installer_ext.plan.planner import blockers

    root = machine_root("intel-workstation")
    r = run("detect", "--root", root, "--json")
    assert r.rc == 0, r.err
    devices = {d["address"]: d for d in json.loads(r.out)["devices"]}
    mgmt = devices["0000:00:1f.6"]
    assert mgmt["blockers"] == [
        {
            "code": "management-nic",
            "reason": "eno1 has a link and may become the management network (not chosen yet)",
            "subject": "eno1",
            "tentative": True,
            "by": None,
        }
    ]
    assert mgmt["blocked"] == [mgmt["blockers"][0]["reason"]]
    assert [(b["code"], b["by"]) for b in devices["0000:00:1f.3"]["blockers"]] == [("same-group", "0000:00:1f.6")]
    planner = blockers(gather(root), Choices(), InstallInfo())
    for addr, d in devices.items():
        assert d["blockers"] == [b.to_json() for b in planner.get(addr, ())]
        assert d["blocked"] == [b.reason for b in planner.get(addr, ())]
    # The table says the same.
    table = run("detect", "--root", root)
    assert "blocked: eno1 has a link and may become the management network" in table.out


def test_detect_table_reads_like_lspci_plus_groups(real_kernel):
    r = run("detect", "--root", real_kernel("off"), env={"INSTALLER_EXT_PCI_IDS": "none"})
    assert r.rc == 0, r.err
    lines = r.out.splitlines()
    assert lines[0].startswith("CPU:") and "IOMMU:  available" in r.out
    row = next(line for line in lines if " 00:03.0 " in line)
    assert row.split()[:5] == ["3*", "00:03.0", "nic", "8086:10d3", "e1000e"]
    assert "net eth0" in row
    assert "predicted group" in lines[-1]
    # No names without a database: the ids stand in.
    assert "8086 10d3" in row


def test_detect_bad_root_is_one_line_exit_2(tmp_path):
    r = run("detect", "--root", str(tmp_path / "nope"))
    assert r.rc == 2
    assert r.err.strip().count("\n") == 0 and "no such directory" in r.err
    assert "Traceback" not in r.err


def test_detect_does_not_import_the_heavy_modules(machine_root):
    code = (
        "import sys, io, contextlib\n"
        "from installer_ext.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    main(['detect', '--root', {machine_root('intel-workstation')!r}, '--json'])\n"
        "heavy = [m for m in ('urwid', 'jinja2', 'jsonschema', 'yaml', 'pyudev') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == ""


def test_python_dash_m_and_help():
    r = run("--help")
    assert r.rc == 0
    for command in ("detect", "plan", "render", "schema"):
        assert command in r.out
