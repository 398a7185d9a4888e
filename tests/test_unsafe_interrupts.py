"""allowUnsafeInterrupts has one rule (plan/kernel_args.unsafe_interrupts_needed): the
planner refuses devices without the switch exactly where the rule says so, and the
screen offers the switch (tui/form.py) by the same rule."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from installer_ext.host.facts import gather
from installer_ext.host.model import IommuFacts
from installer_ext.plan.kernel_args import unsafe_interrupts_needed
from installer_ext.plan.reasons import REFUSE_NO_INTERRUPT_REMAPPING
from tests.planning import WORKSTATION_INSTALL, plan_for

NIC = "0000:03:00.0"


@pytest.mark.parametrize("state, remapping", list(itertools.product(("enabled", "available", "absent"), (True, False, None))))
def test_the_planner_refuses_without_the_switch_exactly_where_it_is_needed(machine_root, state, remapping):
    facts = gather(machine_root("intel-workstation"))
    facts = dataclasses.replace(facts, iommu=dataclasses.replace(facts.iommu, state=state, interrupt_remapping=remapping))
    section = {"enabled": True, "devices": [{"address": NIC}]}
    plan = plan_for("", section, WORKSTATION_INSTALL, facts=facts)
    refused_for_remapping = any(r.code == REFUSE_NO_INTERRUPT_REMAPPING for r in plan.refused)
    assert refused_for_remapping == unsafe_interrupts_needed(facts.iommu)
    allowed = plan_for("", {**section, "allowUnsafeInterrupts": True}, WORKSTATION_INSTALL, facts=facts)
    assert not any(r.code == REFUSE_NO_INTERRUPT_REMAPPING for r in allowed.refused)


def test_needed_only_with_the_iommu_on_and_remapping_off():
    assert unsafe_interrupts_needed(IommuFacts("enabled", False))
    for state, remapping in itertools.product(("enabled", "available", "absent"), (True, False, None)):
        if (state, remapping) != ("enabled", False):
            assert not unsafe_interrupts_needed(IommuFacts(state, remapping)), (state, remapping)
