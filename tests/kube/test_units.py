"""The first-boot unit and the reconcile service and timer, rendered with the values
render/artifacts.py gives every unit, checked by `systemd-analyze verify`: no unit of
ours restarts for ever, and the markers the units test are the files the program
writes."""

from __future__ import annotations

import os
import subprocess

from installer_ext import paths
from installer_ext.firstboot.state import DONE_MARKER, GAVE_UP_MARKER
from installer_ext.render.artifacts import PROGRAM, _common
from installer_ext.templating import render_template
from tests.conftest import require_tool

UNITS = {
    "installer-ext-firstboot.service": "node/installer-ext-firstboot.service.j2",
    "installer-ext-reconcile.service": "node/installer-ext-reconcile.service.j2",
    "installer-ext-reconcile.timer": "node/installer-ext-reconcile.timer.j2",
}


def rendered() -> dict[str, str]:
    return {name: render_template(t, **_common()) for name, t in UNITS.items()}


def lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}


def test_firstboot_unit_ends_instead_of_restarting_for_ever() -> None:
    unit = lines(rendered()["installer-ext-firstboot.service"])
    state = "/" + paths.FIRSTBOOT_STATE_DIR
    assert f"ConditionPathExists=!{state}/{DONE_MARKER}" in unit
    assert f"ConditionPathExists=!{state}/{GAVE_UP_MARKER}" in unit  # the program writes it after its last attempt
    assert {"Restart=on-failure", "RestartSec=2min", "RestartPreventExitStatus=2"} <= unit
    assert "ConditionKernelCommandLine=!installer_ext.skip=1" in unit
    exec_start = next(line for line in unit if line.startswith("ExecStart="))
    assert exec_start == ("ExecStart=/usr/local/lib/installer-ext/bin/installer-ext firstboot --plan "
                          "/oem/installer-ext/plan.json --kubeconfig /etc/rancher/rke2/rke2.yaml")


def test_reconcile_runs_only_where_the_admin_kubeconfig_is() -> None:
    units = rendered()
    service, timer = lines(units["installer-ext-reconcile.service"]), lines(units["installer-ext-reconcile.timer"])
    assert f"ConditionPathExists={paths.DEFAULT_KUBECONFIG}" in service
    assert "Type=oneshot" in service and not any(line.startswith("Restart=") for line in service)
    assert ("ExecStart=/usr/local/lib/installer-ext/bin/installer-ext firstboot --reconcile --kubeconfig "
            "/etc/rancher/rke2/rke2.yaml") in service
    assert {"OnBootSec=3min", "OnUnitInactiveSec=3min", "WantedBy=timers.target"} <= timer


def test_units_pass_systemd_analyze_verify(tmp_path) -> None:
    analyze = require_tool("systemd-analyze")
    names = []
    # systemd-analyze checks that ExecStart's program is executable: a stand-in for the
    # launcher render lays down (tests/test_render.py verifies it as laid down).
    launcher = tmp_path / "installer-ext"
    launcher.write_text("#!/bin/sh\n")
    launcher.chmod(0o755)
    for name, text in rendered().items():
        (tmp_path / name).write_text(text.replace(PROGRAM, str(launcher)))
        names.append(str(tmp_path / name))
    p = subprocess.run([analyze, "verify", *names], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "ignoring" not in p.stdout + p.stderr and "Unknown" not in p.stdout + p.stderr, p.stdout + p.stderr
    # the check can fail: systemd says so for a value it cannot use
    broken = (tmp_path / "installer-ext-reconcile.timer").read_text().replace("OnBootSec=3min", "OnBootSec=soon")
    (tmp_path / "broken.timer").write_text(broken)
    p = subprocess.run([analyze, "verify", str(tmp_path / "broken.timer")], capture_output=True, text=True, timeout=60)
    assert "Failed to parse timer value, ignoring: soon" in p.stdout + p.stderr
    assert os.path.basename(names[0]) == "installer-ext-firstboot.service"
