"""Property tests of the kernel-argument policy: generated arguments (every dash and
underscore spelling, changed case, `=`-less forms) against the issue's list and the
kernel's rules, through the planner on random machines, and the keeper's check of a
plan file agreeing with the planner."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from installer_ext.config.model import Choices
from installer_ext.errors import BadInput
from installer_ext.kernel_cmdline import refusal, split
from installer_ext.plan.kernel_args import PLANNER_ARGS, plan_refusals
from installer_ext.plan.reasons import REFUSE_KERNEL_ARG
from installer_ext.plan.planner import make_plan
from tests.kernel_args_gen import defeats, kernel_args, other_spelling
from tests.test_planner_properties import install_of, machines, requests


@settings(max_examples=3000, deadline=None)
@given(token=kernel_args())
def test_the_verdict_follows_the_kernels_reading(token):
    why = refusal(token)
    if defeats(token):
        assert why is not None, token
    # parameq(): dashes and underscores are one character; the verdict cannot differ.
    assert (why is None) == (refusal(other_spelling(token)) is None)
    # parameq() is case-sensitive: a name in other case is another, unknown parameter.
    if any(c.isupper() for c in split(token)[0]):
        assert why is None, token


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_planner_on_random_machines(data):
    facts = data.draw(machines())
    choices = data.draw(requests(facts))
    extra = tuple(dict.fromkeys(data.draw(st.lists(kernel_args(), max_size=4))))
    choices = Choices(**{**choices.__dict__, "extra_kernel_args": extra, "allow_unsafe_interrupts": data.draw(st.booleans())})
    try:
        plan = make_plan(facts, choices, install_of(facts))
    except BadInput:
        return
    refused = [t for t in extra if refusal(t) is not None]
    codes = [r for r in plan.fatal_refusals if r.code == REFUSE_KERNEL_ARG]
    assert len(codes) == len(refused) and all(r.address is None for r in codes)
    assert not any(defeats(t) for t in plan.kernel_args if t not in PLANNER_ARGS)
    if refused:
        assert plan.passthrough == [] and plan.groups == []
    # What the planner writes, the keeper accepts: one policy.
    assert plan_refusals(plan.kernel_args) == []
    assert set(plan.harvester_kernel_args) <= set(plan.kernel_args)
    assert plan.added_kernel_args == [a for a in plan.kernel_args if a not in plan.harvester_kernel_args]


@settings(max_examples=1000, deadline=None)
@given(tokens=st.lists(st.one_of(kernel_args(), st.sampled_from(sorted(PLANNER_ARGS))), max_size=5))
def test_the_keeper_refuses_a_plan_file_as_the_planner_would(tokens):
    refused = plan_refusals(tokens)
    expected = [t for t in tokens if t not in PLANNER_ARGS and refusal(t) is not None]
    assert [r.split('"')[1] for r in refused] == expected
    assert all(not defeats(t) or t in PLANNER_ARGS for t in tokens if t not in expected)
