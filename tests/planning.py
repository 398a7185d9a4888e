"""Helpers for planner tests: facts of a fake machine + a config mapping -> Plan."""

from __future__ import annotations

from installer_ext.config.load import parse_config
from installer_ext.host.facts import gather
from installer_ext.plan.planner import make_plan

WORKSTATION_INSTALL = {
    "mode": "create",
    "device": "/dev/sda",
    "dataDisk": "/dev/nvme0n1",
    "managementInterface": {"interfaces": [{"name": "eno1"}]},
}
EPYC_INSTALL = {
    "mode": "create",
    "device": "/dev/nvme0n1",
    "managementInterface": {"interfaces": [{"name": "enp2s0f0"}]},
}
REAL_INSTALL = {"device": "/dev/sda", "managementInterface": {"interfaces": [{"name": "eth0"}]}}


def plan_for(root: str, section: dict, install: dict | None = None, facts=None):
    doc = {"pciPassthrough": section}
    if install is not None:
        doc["install"] = install
    config = parse_config(doc)
    facts = facts if facts is not None else gather(root)
    return make_plan(facts, config.choices, config.install)


def addresses(plan, why: str | None = None) -> list[str]:
    return [p.address for p in plan.passthrough if why is None or p.why == why]


def fatal(plan) -> dict[str, str]:
    return {r.address: r.reason for r in plan.refused if r.fatal}
