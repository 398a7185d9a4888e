"""Automatic installs: check the `pciPassthrough` section before the installer starts.

An automatic install (`harvester.install.automatic=true`) shows no screen and its hook's
failure is ignored by elemental, so a bad section would give a normal-looking install
without passthrough. The ISO step (installer-step.sh, run by start-installer.sh before
`harvester-installer`, so before any disk is touched) runs this check: it fetches the
original config from `harvester.install.config_url` the way the installer will (30 tries
10 s apart, pkg/console/util.go retryRemoteConfig), validates the section and plans it
against this machine with the config's own `install` keys. An invalid or refused section
stops the install there, unless the kernel line has CONTINUE_ARG.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from installer_ext.config.load import parse_config
from installer_ext.errors import Refused
from installer_ext.install import original

AUTOMATIC_ARG = "harvester.install.automatic=true"
# The user's explicit choice to install without passthrough when the check fails.
CONTINUE_ARG = "installer_ext.continue_without_passthrough=1"
PRECHECK_FETCH = original.Fetch(timeout=15.0, tries=30, pause=10.0)


@dataclass(frozen=True)
class Precheck:
    checked: bool
    message: str
    warnings: tuple[str, ...] = ()


def _cmdline(root: str) -> list[str]:
    try:
        with open(os.path.join(root, "proc", "cmdline"), encoding="utf-8", errors="replace") as f:
            return f.read().split()
    except OSError:
        return []


def run_precheck(root: str, how: original.Fetch = PRECHECK_FETCH) -> Precheck:
    """Raises BadInput / ExtError / Refused with the reason when the section cannot be
    used; returns what was checked otherwise."""
    from installer_ext.host.facts import gather
    from installer_ext.plan.planner import make_plan

    if AUTOMATIC_ARG not in _cmdline(root):
        return Precheck(False, "not an automatic install: the screen asks")
    url = original.cmdline_url(root)
    if url is None:
        return Precheck(False, "automatic install without harvester.install.config_url: nothing to check")
    doc = original.fetch(url, how)
    if original.section_of(doc) is None:
        return Precheck(False, "the install config has no pciPassthrough section")
    cfg = parse_config(doc, url)
    plan = make_plan(gather(root), cfg.choices, cfg.install)
    if plan.fatal_refusals:
        raise Refused(*[f"refused: {r.address or 'host'}: {r.reason}" for r in plan.fatal_refusals])
    n = len(plan.passthrough)
    return Precheck(True, f"the pciPassthrough section is valid: {n} function{'s' if n != 1 else ''} to VMs", tuple(plan.warnings))
