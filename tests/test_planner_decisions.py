"""The planner's decisions as its contract states them (docs/planner.md: the policy,
the codes table, the warnings list; plan/kernel_args.py: the arguments per vendor):
refusal and blocker codes, fatal flags, host-wide refusals, one warning per condition,
SR-IOV boundaries, host GPUs by address, id and kind, the unknown CPU vendor.

The hosts here are built by keyword, so each test names exactly the facts it turns on;
the expectations come from the policy text, not from the planner's code.
"""

from __future__ import annotations

import dataclasses

import pytest

from installer_ext.config.model import Choices, HarvesterChoice, InstallInfo, ManagementInterface, Selector, SriovChoice
from installer_ext.errors import BadInput
from installer_ext.host.model import CpuFacts, HostFacts, IommuFacts, NetInterface, PciFunction, Sriov
from installer_ext.kernel_cmdline import UNSAFE_INTERRUPTS_ARG, refusal
from installer_ext.plan import reasons as rs
from installer_ext.plan.kernel_args import kernel_args
from installer_ext.plan.planner import blockers, make_plan
from installer_ext.plan.quirks import AMD_RESET_BUG, reset_warnings
from installer_ext.plan.reasons import Blocker

NIC = dict(vendor_id="8086", device_id="1533", class_id="020000", kind="nic", driver="igb")
GPU = dict(vendor_id="10de", device_id="2206", class_id="030000", kind="gpu", driver="nvidia")
AUDIO = dict(vendor_id="10de", device_id="1aef", class_id="040300", kind="audio", driver="snd_hda_intel")
USB = dict(vendor_id="8086", device_id="a36d", class_id="0c0330", kind="usb", driver="xhci_hcd")

# The PF of the SR-IOV tests: bus 5, so its routing id is 0x500 and VF n sits at
# 0x500 + offset + n * stride (PCIe SR-IOV 3.3.9, 3.3.10).
PF = "0000:05:00.0"
PF_IDS = dict(vendor_id="8086", device_id="1572", class_id="020000", kind="nic", driver="i40e")


def fn(address: str, group: int | None, base: dict, **kw) -> PciFunction:
    return PciFunction(address=address, iommu_group=group, **{**base, **kw})


def host(devices, *, vendor="intel", state="enabled", remapping=True, virt=True, net=(), driver_modules=None) -> HostFacts:
    if state == "absent":  # no IOMMU: the kernel gives no groups
        devices = [dataclasses.replace(d, iommu_group=None) for d in devices]
    return HostFacts(
        "/fake",
        CpuFacts(vendor, None, None, virt),
        IommuFacts(state, remapping),
        tuple(sorted(devices, key=lambda d: d.address)),
        (),
        False,
        tuple(net),
        (),
        driver_modules=driver_modules or {},
    )


def plain(**kw) -> HostFacts:
    """Two NICs, a GPU with its audio function (one group), each NIC alone."""
    return host(
        [
            fn("0000:01:00.0", 1, GPU),
            fn("0000:01:00.1", 1, AUDIO),
            fn("0000:02:00.0", 2, NIC),
            fn("0000:03:00.0", 3, NIC),
        ],
        **kw,
    )


def by_address(*addresses: str) -> tuple[Selector, ...]:
    return tuple(Selector(address=a, path=f"pciPassthrough.devices[{i}].address") for i, a in enumerate(addresses))


def plan(facts: HostFacts, install: InstallInfo | None = None, **choices):
    return make_plan(facts, Choices(**choices), install or InstallInfo())


def vf(n: int, offset: int = 16, stride: int = 1) -> str:
    """VF n of PF, from the routing id (the spec's formula, not the planner's)."""
    rid = 0x500 + offset + n * stride
    return f"0000:{rid >> 8:02x}:{(rid >> 3) & 0x1F:02x}.{rid & 7}"


def sriov_host(*, total=4, now=0, offset=16, stride=1, vf_device_id="154c", state="enabled", remapping=True,
               vf_net=(), extra=()) -> HostFacts:
    """One PF with `total` VFs possible and `now` enabled (each VF in its own group);
    `vf_net` names the interfaces of the VFs that exist (index -> name, link up)."""
    vfs = [vf(n, offset if offset is not None else 16, stride if stride is not None else 1) for n in range(now)]
    names = dict(vf_net)
    devs = [
        fn(PF, 5, PF_IDS, sriov=Sriov(total, now, offset, stride, vf_device_id), virtfns=tuple(vfs)),
        *[
            fn(a, 100 + n, {**PF_IDS, "device_id": vf_device_id or "1572", "driver": "iavf"}, physfn=PF,
               net_interfaces=(names[n],) if n in names else ())
            for n, a in enumerate(vfs)
        ],
        *extra,
    ]
    net = [NetInterface(name, vfs[n], None, "up") for n, name in names.items()]
    return host(devs, state=state, remapping=remapping, net=net)


def refusals(p) -> list[tuple]:
    return [(r.address, r.code, r.fatal) for r in p.refused]


def new_warnings(p, baseline) -> list[str]:
    return [w for w in p.warnings if w not in baseline.warnings]


# --- host-wide refusals -----------------------------------------------------------------


def test_no_iommu_refuses_the_request_as_a_whole_with_its_code():
    facts = plain(state="absent", remapping=None)
    nothing = plan(facts, enabled=True)
    assert refusals(nothing) == [(None, rs.BLOCK_NO_IOMMU, True)]
    assert "IOMMU" in nothing.refused[0].reason
    assert nothing.to_json()["refused"][0]["code"] == "no-iommu"
    # A named function is refused for it (its own blocker), and the request too; the
    # host-wide refusal (address null) comes last.
    named = plan(facts, enabled=True, devices=by_address("0000:02:00.0"))
    assert refusals(named) == [("0000:02:00.0", "no-iommu", True), (None, "no-iommu", True)]
    assert named.passthrough == [] and named.groups == [] and named.modules == []
    # An id or kind selector skips every function (not fatal), the request is refused.
    kinds = plan(facts, enabled=True, devices=(Selector(kind="nic", path="devices[0].kind"),))
    assert refusals(kinds) == [
        ("0000:02:00.0", "no-iommu", False), ("0000:03:00.0", "no-iommu", False), (None, "no-iommu", True),
    ]
    # Passthrough off: no IOMMU needed, nothing refused.
    assert plan(facts, gpu_drivers=True).refused == []


def test_no_iommu_refuses_sriov_vfs_and_drops_the_sriov_plan():
    facts = sriov_host(now=2, state="absent", remapping=None)
    p = plan(facts, enabled=True, sriov=(SriovChoice(PF, 2, True, "sriov[0]"),))
    # The VFs are not refused one by one for what every function has: the request is.
    assert refusals(p) == [(None, "no-iommu", True)]
    assert p.passthrough == [] and p.sriov == [] and p.vfio_ids == []


def test_no_interrupt_remapping_refuses_every_passed_function_and_vf():
    facts = sriov_host(now=0, remapping=False, extra=[fn("0000:02:00.0", 2, NIC)])
    choices = dict(enabled=True, devices=by_address("0000:02:00.0"), sriov=(SriovChoice(PF, 2, True, "sriov[0]"),))
    p = plan(facts, **choices)
    code = rs.REFUSE_NO_INTERRUPT_REMAPPING
    assert refusals(p) == [("0000:02:00.0", code, True), (vf(0), code, True), (vf(1), code, True)]
    # The sentence names the cause and the key that accepts the risk.
    assert all("interrupt remapping" in r.reason and "allowUnsafeInterrupts" in r.reason for r in p.refused)
    assert p.to_json()["refused"][0]["code"] == "no-interrupt-remapping"
    assert p.passthrough == [] and p.sriov == [] and p.groups == []
    # VFs alone are a request too.
    only_vfs = plan(facts, enabled=True, sriov=(SriovChoice(PF, 1, True, "sriov[0]"),))
    assert refusals(only_vfs) == [(vf(0), code, True)]
    # Nothing asked: nothing to refuse.
    assert plan(facts, enabled=True).refused == []
    # With the switch: everything goes, with one warning about the risk.
    allowed = plan(facts, allow_unsafe_interrupts=True, **choices)
    assert allowed.refused == []
    assert [p.address for p in allowed.passthrough] == ["0000:02:00.0", vf(0), vf(1)]
    [w] = new_warnings(allowed, p)
    assert "interrupt remapping" in w and "allowUnsafeInterrupts" in w
    assert UNSAFE_INTERRUPTS_ARG in allowed.kernel_args


def test_unreadable_interrupt_remapping_is_warned_only_when_something_is_asked():
    on = plan(plain(), enabled=True, devices=by_address("0000:02:00.0"))
    unknown = plan(plain(remapping=None), enabled=True, devices=by_address("0000:02:00.0"))
    [extra] = new_warnings(unknown, on)
    assert "interrupt remapping" in extra
    assert unknown.refused == [] and [p.address for p in unknown.passthrough] == ["0000:02:00.0"]
    assert new_warnings(plan(plain(remapping=None), enabled=True), plan(plain(), enabled=True)) == []


def test_a_refused_extra_kernel_argument_is_a_host_wide_refusal_naming_the_token():
    token = "iommu=off"
    p = plan(plain(), enabled=True, devices=by_address("0000:02:00.0"), extra_kernel_args=("video=efifb:off", token))
    [r] = p.refused
    assert (r.address, r.code, r.fatal, r.subject) == (None, rs.REFUSE_KERNEL_ARG, True, token)
    assert token in r.reason and "extraKernelArgs" in r.reason and refusal(token) in r.reason
    assert p.to_json()["refused"][0]["subject"] == token
    assert p.passthrough == [] and p.vfio_ids == [] and p.groups == []
    assert token not in p.kernel_args and "video=efifb:off" in p.kernel_args


def test_refusals_are_sorted_by_address_with_the_host_wide_ones_last():
    facts = host([fn("0000:0a:00.0", 10, GPU, boot_vga=True), fn("0000:02:00.0", 2, GPU, boot_vga=True)])
    p = plan(facts, enabled=True, devices=by_address("0000:0a:00.0", "0000:02:00.0"), extra_kernel_args=("iommu=off",))
    # 0000:02 before 0000:0a (bus numbers, not text), null last.
    assert [r.address for r in p.refused] == ["0000:02:00.0", "0000:0a:00.0", None]


# --- selections ---------------------------------------------------------------------------


@pytest.mark.parametrize("explicit_first", [True, False])
def test_an_explicit_address_stays_fatal_whatever_else_skips_the_device(explicit_first):
    """An explicit address on a blocked device refuses the plan; a kind selector that
    meets the same device only skips it. Both at once: still refused."""
    facts = host([fn("0000:00:02.0", 2, GPU, boot_vga=True), fn("0000:01:00.0", 1, GPU)])
    sels = [Selector(address="0000:00:02.0", path="devices[0].address"), Selector(kind="gpu", path="devices[1].kind")]
    if not explicit_first:
        sels.reverse()
    p = plan(facts, enabled=True, devices=tuple(sels))
    assert refusals(p) == [("0000:00:02.0", rs.BLOCK_BOOT_VGA, True)]
    assert p.passthrough == []


def test_selectors_that_match_nothing_are_warned_with_their_key_and_value():
    facts = plain()
    p = plan(facts, enabled=True, devices=(
        Selector(id="dead:beef", path="pciPassthrough.devices[0].id"),
        Selector(kind="storage", path="pciPassthrough.devices[1].kind"),
        Selector(kind="nic", path="pciPassthrough.devices[2].kind"),
    ))
    about = [w for w in p.warnings if w.startswith("pciPassthrough.devices[")]
    assert len(about) == 2
    assert about[0].startswith("pciPassthrough.devices[0].id") and "dead:beef" in about[0]
    assert about[1].startswith("pciPassthrough.devices[1].kind") and "storage" in about[1]
    assert [x.address for x in p.passthrough] == ["0000:02:00.0", "0000:03:00.0"]


def test_passthrough_entries_carry_the_functions_facts():
    facts = host(
        [fn("0000:02:00.0", 2, NIC), fn("0000:04:00.0", None, USB, predicted_group=7),
         fn("0000:06:00.0", 6, {**NIC, "driver": None}), fn("0000:07:00.0", 7, {**NIC, "driver": "e1000e"})],
        driver_modules={"xhci_hcd": "xhci_pci", "igb": "igb"},
    )
    p = plan(facts, enabled=True, devices=by_address("0000:02:00.0", "0000:04:00.0", "0000:06:00.0", "0000:07:00.0"))
    got = {x.address: x for x in p.passthrough}
    for addr, x in got.items():
        d = facts.device(addr)
        assert (x.vendor_id, x.device_id, x.kind, x.class_id, x.driver, x.why) == (
            d.vendor_id, d.device_id, d.kind, d.class_id, d.driver, "selected")
    assert (got["0000:04:00.0"].iommu_group, got["0000:04:00.0"].group_predicted) == (7, True)
    assert (got["0000:02:00.0"].iommu_group, got["0000:02:00.0"].group_predicted) == (2, False)
    # The module named for the modprobe softdep is the driver's module.
    assert got["0000:04:00.0"].module == "xhci_pci"
    assert got["0000:02:00.0"].module == "igb"
    assert got["0000:06:00.0"].module is None
    assert got["0000:07:00.0"].module == "e1000e"  # no module known: the driver's name


# --- warnings: one line each, only where the condition holds ------------------------------


@pytest.mark.parametrize(
    "change, word",
    [
        (dict(state="available"), "IOMMU"),
        (dict(state="available"), "predicted"),
        (dict(virt=False), "CPU virtualization"),
        (dict(vendor="other"), "CPU vendor"),
    ],
)
def test_host_warnings_one_each_and_only_with_passthrough_on(change, word):
    base = plain()
    odd = plain(**change)
    on = new_warnings(plan(odd, enabled=True), plan(base, enabled=True))
    assert len(on) == 1 and word in on[0]
    assert all(isinstance(w, str) and w for w in plan(odd, enabled=True).warnings)
    assert new_warnings(plan(odd, gpu_drivers=True), plan(base, gpu_drivers=True)) == []


def test_allow_unsafe_interrupts_not_needed_is_warned_only_with_passthrough_on():
    facts = plain()
    on = new_warnings(plan(facts, enabled=True, allow_unsafe_interrupts=True), plan(facts, enabled=True))
    assert len(on) == 1 and "allowUnsafeInterrupts" in on[0]
    assert new_warnings(plan(facts, allow_unsafe_interrupts=True), plan(facts)) == []


def test_no_host_gpus_warning_without_host_gpus():
    p = plan(plain(), enabled=True)
    assert not [w for w in p.warnings if "hostGpus" in w]


def test_disabled_passthrough_ignores_devices_and_sriov_each_with_the_warning():
    facts = sriov_host(extra=[fn("0000:02:00.0", 2, NIC)])
    quiet = plan(facts)
    for choices in (dict(devices=by_address("0000:02:00.0")), dict(sriov=(SriovChoice(PF, 2, True, "sriov[0]"),))):
        off = plan(facts, **choices)
        [w] = new_warnings(off, quiet)
        assert "pciPassthrough.enabled is false" in w
        assert off.passthrough == [] and off.sriov == [] and off.refused == [] and off.modules == []
        assert not [w for w in plan(facts, enabled=True, **choices).warnings if "enabled is false" in w]


def test_reset_warnings_add_to_the_others():
    facts = host([fn("0000:02:00.0", 2, NIC, resettable=False)], vendor="other")
    p = plan(facts, enabled=True, devices=by_address("0000:02:00.0"))
    assert any("CPU vendor" in w for w in p.warnings)
    assert any(w.startswith("0000:02:00.0") and "reset" in w for w in p.warnings)


# --- the unknown CPU vendor and the kernel arguments -----------------------------------------

IOMMU_ARGS = {"intel": ["intel_iommu=on", "iommu=pt"], "amd": ["iommu=pt"], "other": []}


@pytest.mark.parametrize("vendor", sorted(IOMMU_ARGS))
@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize("allow", [True, False])
@pytest.mark.parametrize("remapping", [True, False, None])
def test_kernel_arguments_per_vendor_and_switch(vendor, enabled, allow, remapping):
    """Intel: intel_iommu=on iommu=pt; AMD: iommu=pt; an unknown vendor: none. The
    unsafe-interrupts argument with the switch, unless the host is known to remap."""
    ka = kernel_args(vendor, enabled, allow, (), remapping)
    expected = IOMMU_ARGS[vendor] if enabled else []
    if enabled and allow and remapping is not True:
        expected = expected + [UNSAFE_INTERRUPTS_ARG]
    assert ka.args == expected and ka.refused == []
    # Harvester's own line has intel_iommu=on amd_iommu=on iommu=pt, never the switch.
    assert ka.harvester == [a for a in expected if a != UNSAFE_INTERRUPTS_ARG]


def test_the_unknown_vendor_plans_without_iommu_arguments():
    p = plan(plain(vendor="other"), enabled=True, devices=by_address("0000:02:00.0"), extra_kernel_args=("quiet",))
    assert p.kernel_args == ["quiet"] and p.cpu_vendor == "other"
    assert [x.address for x in p.passthrough] == ["0000:02:00.0"] and p.refused == []
    assert plan(plain(vendor="other", state="absent"), enabled=True).kernel_args == []
    assert plan(plain(state="absent"), enabled=True).kernel_args == []


def test_extra_arguments_keep_their_order_after_the_planners():
    ka = kernel_args("amd", True, False, ("b=1", "a=2", "iommu=pt", "b=1"))
    assert ka.args == ["iommu=pt", "b=1", "a=2"]
    refused = kernel_args("amd", True, False, ("b=1", "iommu=off"))
    assert refused.args == ["iommu=pt", "b=1"] and [t for t, _ in refused.refused] == ["iommu=off"]


# --- SR-IOV ------------------------------------------------------------------------------


@pytest.mark.parametrize("num", [0, 1, 3, 4])
def test_sriov_counts_up_to_the_maximum(num):
    p = plan(sriov_host(total=4), enabled=True, sriov=(SriovChoice(PF, num, True, "sriov[0]"),))
    [s] = p.sriov
    assert (s.address, s.num_vfs, s.total_vfs, s.vf_device_id) == (PF, num, 4, "154c")
    assert (s.vendor_id, s.device_id, s.vfs_to_vfio) == ("8086", "1572", True)
    assert s.vfs == tuple(vf(n) for n in range(num))
    assert [(x.address, x.why, x.vf_of) for x in p.passthrough] == [(vf(n), "sriov-vf", PF) for n in range(num)]
    assert p.refused == []


def test_sriov_one_more_than_the_maximum_is_bad_input():
    with pytest.raises(BadInput) as exc:
        plan(sriov_host(total=4), enabled=True, sriov=(SriovChoice(PF, 5, True, "pciPassthrough.sriov[0]"),))
    [line] = exc.value.lines
    assert line.startswith("pciPassthrough.sriov[0].numVfs:") and " 5 " in line and PF in line and "4" in line


def test_sriov_on_a_pf_of_one_vf():
    p = plan(sriov_host(total=1), enabled=True, sriov=(SriovChoice(PF, 1, True, "sriov[0]"),))
    assert [x.address for x in p.passthrough] == [vf(0)]


@pytest.mark.parametrize("facts, words", [
    (sriov_host(total=0), "not an SR-IOV physical function"),
    (host([fn(PF, 5, PF_IDS)]), "not an SR-IOV physical function"),
    (host([fn("0000:06:00.0", 6, NIC)]), "no PCI function"),
])
def test_sriov_on_what_is_not_a_pf_is_bad_input(facts, words):
    with pytest.raises(BadInput) as exc:
        plan(facts, enabled=True, sriov=(SriovChoice(PF, 1, True, "pciPassthrough.sriov[0]"),))
    [line] = exc.value.lines
    assert line.startswith("pciPassthrough.sriov[0].address:") and PF in line and words in line


def test_a_pf_with_zero_vfs_asked_is_not_blocked():
    """`numVfs: 0` asks for no VFs: the PF (no VFs now) may still go to a VM."""
    facts = sriov_host(now=0)
    choices = Choices(enabled=True, sriov=(SriovChoice(PF, 0, True, "sriov[0]"),))
    assert PF not in blockers(facts, choices, InstallInfo())
    p = plan(facts, enabled=True, devices=by_address(PF), sriov=choices.sriov)
    assert [x.address for x in p.passthrough] == [PF] and p.refused == []
    asked = Choices(enabled=True, sriov=(SriovChoice(PF, 1, True, "sriov[0]"),))
    [b] = blockers(facts, asked, InstallInfo())[PF]
    assert (b.code, b.subject) == (rs.BLOCK_SRIOV_PF, "1")


def test_a_pf_with_vfs_now_is_blocked_and_counts_them():
    facts = sriov_host(now=2)
    [b] = blockers(facts, Choices(enabled=True), InstallInfo())[PF]
    assert (b.code, b.subject) == (rs.BLOCK_SRIOV_PF, "2")


@pytest.mark.parametrize("asked", [1, 2, 3])
def test_vfs_already_there_with_another_count(asked):
    """The VFs of a count the PF has now are the ones there; another count gives the
    addresses from offset and stride."""
    facts = sriov_host(total=4, now=2)
    p = plan(facts, enabled=True, sriov=(SriovChoice(PF, asked, True, "sriov[0]"),))
    [s] = p.sriov
    assert s.vfs == tuple(vf(n) for n in range(asked))
    assert [x.address for x in p.passthrough] == list(s.vfs) and p.refused == []
    for x in p.passthrough:
        there = facts.device(x.address)
        assert x.iommu_group == (there.iommu_group if there else None)
        assert x.group_predicted == (there is None)
        assert x.driver == (there.driver if there else None)
        assert (x.kind, x.class_id, x.vendor_id, x.device_id, x.bind_at_boot) == ("nic", "020000", "8086", "154c", "address")


def test_vf_addresses_without_offset_and_stride():
    """Unknown offset/stride: the VFs there now serve for the same count; for another
    count the PF is refused (code sriov-vf-addresses), unless its VFs stay on the host."""
    facts = sriov_host(total=4, now=2, offset=None, stride=None)
    same = plan(facts, enabled=True, sriov=(SriovChoice(PF, 2, True, "sriov[0]"),))
    assert [x.address for x in same.passthrough] == [vf(0), vf(1)] and same.refused == []
    other = plan(facts, enabled=True, sriov=(SriovChoice(PF, 3, True, "sriov[0]"),))
    assert refusals(other) == [(PF, rs.REFUSE_VF_ADDRESSES, True)]
    assert "VF addresses" in other.refused[0].reason
    assert other.passthrough == [] and other.sriov == []
    kept = plan(facts, enabled=True, sriov=(SriovChoice(PF, 3, False, "sriov[0]"),))
    [s] = kept.sriov
    assert (s.num_vfs, s.vfs_to_vfio) == (3, False) and kept.passthrough == [] and kept.refused == []


def test_vfs_that_stay_on_the_host_are_planned_but_not_passed():
    p = plan(sriov_host(total=4), enabled=True, sriov=(SriovChoice(PF, 2, False, "sriov[0]"),))
    [s] = p.sriov
    assert s.vfs == (vf(0), vf(1)) and s.vfs_to_vfio is False
    assert p.passthrough == [] and p.refused == []


def test_vfs_behind_a_port_without_acs_refuse_the_pf_with_its_code():
    port = fn("0000:00:1c.0", 5, dict(vendor_id="8086", device_id="a338", class_id="060400", kind="bridge",
                                      driver="pcieport"), is_bridge=True, pci_bridge=True, pcie_type=4, acs=False)
    pf = fn(PF, 5, PF_IDS, sriov=Sriov(4, 0, 16, 1, "154c"), parent="0000:00:1c.0", pcie_type=0)
    p = plan(host([port, pf]), enabled=True, sriov=(SriovChoice(PF, 2, True, "sriov[0]"),))
    assert refusals(p) == [(PF, rs.REFUSE_VF_GROUP, True)]
    assert "IOMMU group" in p.refused[0].reason
    assert p.passthrough == [] and p.sriov == []


def test_a_vf_of_the_management_bond_is_refused_by_its_blocker():
    """VFs that exist and are blocked (here: both carry the management network) are
    refused one by one with their own code; the others go."""
    facts = sriov_host(total=4, now=3, vf_net={0: "mgmt0", 1: "mgmt1"})
    install = InstallInfo(known=True, management=(
        ManagementInterface("mgmt0", None, "install.managementInterface.interfaces[0]"),
        ManagementInterface("mgmt1", None, "install.managementInterface.interfaces[1]"),
    ))
    p = plan(facts, install, enabled=True, sriov=(SriovChoice(PF, 3, True, "sriov[0]"),))
    assert refusals(p) == [(vf(0), rs.BLOCK_MGMT_NIC, True), (vf(1), rs.BLOCK_MGMT_NIC, True)]
    assert [r.subject for r in p.refused] == ["mgmt0", "mgmt1"]
    assert p.passthrough == [] and p.sriov == []


def test_two_pfs_give_both_their_vfs():
    second = "0000:06:00.0"
    facts = host([
        fn(PF, 5, PF_IDS, sriov=Sriov(4, 0, 16, 1, "154c")),
        fn(second, 6, PF_IDS, sriov=Sriov(4, 0, 16, 1, "154c")),
    ])
    p = plan(facts, enabled=True, sriov=(SriovChoice(PF, 1, True, "sriov[0]"), SriovChoice(second, 2, True, "sriov[1]")))
    assert [s.address for s in p.sriov] == [PF, second]
    assert [(x.address, x.vf_of) for x in p.passthrough] == [
        (vf(0), PF), ("0000:06:02.0", second), ("0000:06:02.1", second),
    ]


def test_a_fatal_refusal_drops_the_sriov_plan_too():
    facts = sriov_host(total=4, extra=[fn("0000:00:02.0", 2, GPU, boot_vga=True), fn("0000:02:00.0", 3, NIC)])
    sriov = (SriovChoice(PF, 2, True, "sriov[0]"),)
    fine = plan(facts, enabled=True, devices=by_address("0000:02:00.0"), sriov=sriov)
    assert fine.vfio_ids == ["8086:1533"] and fine.sriov and fine.groups  # what a refusal takes away
    p = plan(facts, enabled=True, devices=by_address("0000:00:02.0", "0000:02:00.0"), sriov=sriov)
    assert refusals(p) == [("0000:00:02.0", rs.BLOCK_BOOT_VGA, True)]
    assert p.sriov == [] and p.passthrough == [] and p.vfio_ids == [] and p.groups == []


def test_sriov_asked_while_passthrough_is_off_blocks_nothing():
    facts = sriov_host(now=0)
    off = Choices(enabled=False, sriov=(SriovChoice(PF, 2, True, "sriov[0]"),))
    assert PF not in blockers(facts, off, InstallInfo())


# --- host GPUs ------------------------------------------------------------------------------


def two_gpus(**kw) -> HostFacts:
    return host([
        fn("0000:01:00.0", 1, GPU), fn("0000:01:00.1", 1, AUDIO),
        fn("0000:02:00.0", 2, GPU), fn("0000:02:00.1", 2, AUDIO),
        fn("0000:03:00.0", 3, {**GPU, "vendor_id": "8086", "device_id": "56a0", "driver": "i915"}),
        fn("0000:04:00.0", 4, {**GPU, "vendor_id": "1002", "device_id": "7310", "driver": "amdgpu"}),
        fn("0000:04:00.4", 5, {**GPU, "device_id": "2237"}, physfn="0000:04:00.0"),
    ], **kw)


@pytest.mark.parametrize("sel, kept", [
    (Selector(address="0000:02:00.0", path="hostGpus[0].address"), ["0000:02:00.0"]),
    (Selector(id="10de:2206", path="hostGpus[0].id"), ["0000:01:00.0", "0000:02:00.0"]),
    # An id of a function that is not a GPU names no GPU: nothing kept, no error.
    (Selector(id="10de:1aef", path="hostGpus[0].id"), []),
    (Selector(kind="gpu", path="hostGpus[0].kind"), ["0000:01:00.0", "0000:02:00.0", "0000:03:00.0", "0000:04:00.0"]),
])
def test_host_gpus_by_address_id_and_kind(sel, kept):
    facts = two_gpus()
    p = plan(facts, enabled=True, gpu_drivers=True, host_gpus=(sel,))
    assert p.host_gpus == kept
    found = blockers(facts, Choices(enabled=True, host_gpus=(sel,)), InstallInfo())
    for a in kept:
        assert [b.code for b in found[a]] == [rs.BLOCK_HOST_GPU]
    # Kept on the host: a kind selector for VMs skips them.
    vms = plan(facts, enabled=True, host_gpus=(sel,), devices=(Selector(kind="gpu", path="devices[0].kind"),))
    assert not set(kept) & {x.address for x in vms.passthrough}
    assert {r.address for r in vms.refused if r.code == rs.BLOCK_HOST_GPU} == set(kept)


def test_without_a_list_the_host_keeps_its_nvidia_and_amd_gpus_not_passed():
    facts = two_gpus()
    p = plan(facts, enabled=True, gpu_drivers=True, devices=by_address("0000:01:00.0"))
    # Intel's GPU has no plugin here; the VF is not a GPU of its own; 01:00.0 goes to VMs.
    assert p.host_gpus == ["0000:02:00.0", "0000:04:00.0"]
    assert p.device_plugins == ["amd", "nvidia"]
    empty = plan(facts, enabled=True, gpu_drivers=True, host_gpus=())
    assert empty.host_gpus == [] and empty.device_plugins == []
    assert any("no NVIDIA or AMD GPU" in w for w in empty.warnings)


def test_host_gpus_while_passthrough_is_off_block_nothing():
    facts = two_gpus()
    sel = (Selector(address="0000:02:00.0", path="hostGpus[0].address"),)
    assert "0000:02:00.0" not in blockers(facts, Choices(enabled=False, gpu_drivers=True, host_gpus=sel), InstallInfo())
    assert plan(facts, gpu_drivers=True, host_gpus=sel).host_gpus == ["0000:02:00.0"]


@pytest.mark.parametrize("wanted, gpus, plugins, warned", [
    ("nvidia", ["0000:01:00.0"], ["nvidia"], False),
    ("nvidia", ["0000:04:00.0"], ["nvidia"], True),
    ("amd", ["0000:01:00.0"], ["amd"], True),
    ("none", ["0000:01:00.0"], [], False),
    ("auto", ["0000:03:00.0"], [], True),
])
def test_device_plugin_choices(wanted, gpus, plugins, warned):
    facts = two_gpus()
    sels = tuple(Selector(address=a, path=f"hostGpus[{i}].address") for i, a in enumerate(gpus))
    p = plan(facts, gpu_drivers=True, host_gpus=sels, device_plugin=wanted)
    assert p.device_plugins == plugins
    about = [w for w in p.warnings if "plugin" in w.lower()]
    assert bool(about) == warned
    if warned and wanted != "auto":
        assert wanted in about[0] and wanted.upper() in about[0]


# --- the rest of the plan --------------------------------------------------------------------


def test_modules_claims_settings_follow_what_is_passed():
    facts = plain()
    nothing = plan(facts, enabled=True)
    assert nothing.modules == [] and nothing.claims is False
    assert nothing.settings == {"pci-pt-enable": "true", "gpu-enable": "false"}
    assert nothing.addons == {"pcidevices-controller": True}
    some = plan(facts, enabled=True, devices=by_address("0000:02:00.0"))
    assert some.modules == ["vfio-pci", "vfio_iommu_type1"] and some.claims is True
    assert (some.enabled, some.gpu_drivers, some.cpu_vendor, some.iommu_state) == (True, False, "intel", "enabled")
    # Harvester's own line sets both IOMMU arguments already: installer-ext adds none.
    assert some.harvester_kernel_args == ["intel_iommu=on", "iommu=pt"] and some.added_kernel_args == []
    off = plan(facts, gpu_drivers=True)
    assert not [w for w in plan(facts).warnings if "plugin" in w.lower()]
    assert off.settings == {"pci-pt-enable": "false", "gpu-enable": "true"}
    assert off.addons == {"pcidevices-controller": False} and off.claims is False
    no_claims = plan(facts, enabled=True, devices=by_address("0000:02:00.0"), harvester=HarvesterChoice(claims=False))
    assert no_claims.claims is False and no_claims.modules == ["vfio-pci", "vfio_iommu_type1"]


# --- codes and quirks -------------------------------------------------------------------------


def test_a_blocker_in_json_has_the_documented_keys():
    b = Blocker(rs.BLOCK_SAME_GROUP, "words", subject=rs.BLOCK_MGMT_NIC, tentative=True, by="0000:00:1f.6")
    assert b.to_json() == {"code": "same-group", "reason": "words", "subject": "management-nic", "tentative": True,
                           "by": "0000:00:1f.6"}


def test_the_codes_are_the_documented_strings():
    assert (rs.BLOCK_NO_IOMMU, rs.BLOCK_UNKNOWN, rs.BLOCK_BOOT_VGA, rs.BLOCK_BRIDGE, rs.BLOCK_SRIOV_PF) == (
        "no-iommu", "unknown", "boot-vga", "bridge", "sriov-pf")
    assert (rs.BLOCK_MGMT_NIC, rs.BLOCK_INSTALL_DISK, rs.BLOCK_DATA_DISK, rs.BLOCK_HOST_GPU, rs.BLOCK_SAME_GROUP) == (
        "management-nic", "install-disk", "data-disk", "host-gpu", "same-group")
    assert (rs.REFUSE_NO_INTERRUPT_REMAPPING, rs.REFUSE_VF_ADDRESSES, rs.REFUSE_VF_GROUP, rs.REFUSE_KERNEL_ARG) == (
        "no-interrupt-remapping", "sriov-vf-addresses", "sriov-vf-group", "kernel-arg")


@pytest.mark.parametrize("family", sorted(AMD_RESET_BUG))
def test_amd_reset_bug_families_are_warned_by_amd_ids_only(family):
    for device in AMD_RESET_BUG[family]:
        [w] = reset_warnings("0000:03:00.0", "1002", device, True)
        assert w.startswith("0000:03:00.0") and family in w
        # What to do about it is the point of the warning.
        assert w.endswith("until the host reboots (the vendor-reset module helps)")
        # The same device id from another vendor is another device.
        assert reset_warnings("0000:03:00.0", "10de", device, True) == []
    assert reset_warnings("0000:03:00.0", "1002", None, True) == []
    assert reset_warnings("0000:03:00.0", "1002", "ffff", True) == []


def test_a_function_without_a_reset_method_is_warned_only_when_known():
    [w] = reset_warnings("0000:02:00.0", "8086", "1533", False)
    assert w.startswith("0000:02:00.0") and "reset" in w
    assert reset_warnings("0000:02:00.0", "8086", "1533", True) == []
    assert reset_warnings("0000:02:00.0", "8086", "1533", None) == []


def test_sriov_on_a_pf_that_could_not_be_read_is_bad_input():
    """An unreadable function cannot be checked (`unknown`): an sriov entry on it is
    refused as input, naming its key and the address."""
    facts = host([fn(PF, 5, PF_IDS, class_id=None, unknown=("class",), sriov=Sriov(4, 0, 16, 1, "154c"))])
    with pytest.raises(BadInput) as exc:
        plan(facts, enabled=True, sriov=(SriovChoice(PF, 1, True, "pciPassthrough.sriov[0]"),))
    [line] = exc.value.lines
    assert line.startswith("pciPassthrough.sriov[0].address:") and PF in line and "read" in line


@pytest.mark.parametrize("offset, stride", [(None, 1), (16, None)])
def test_vf_addresses_need_both_offset_and_stride(offset, stride):
    facts = host([fn(PF, 5, PF_IDS, sriov=Sriov(4, 0, offset, stride, "154c"))])
    p = plan(facts, enabled=True, sriov=(SriovChoice(PF, 2, True, "sriov[0]"),))
    assert refusals(p) == [(PF, rs.REFUSE_VF_ADDRESSES, True)]


def test_vfs_without_their_own_device_id_take_the_pfs():
    p = plan(sriov_host(vf_device_id=None), enabled=True, sriov=(SriovChoice(PF, 1, True, "sriov[0]"),))
    assert p.sriov[0].vf_device_id == "1572" and p.passthrough[0].device_id == "1572"


def numeric(address: str) -> tuple[int, ...]:
    """An address as numbers: domain, bus, device, function."""
    dom, bus, rest = address.split(":")
    dev, func = rest.split(".")
    return int(dom, 16), int(bus, 16), int(dev, 16), int(func, 16)


def test_everything_is_sorted_by_address_as_numbers():
    """Domains of different widths (a VMD domain 10000 next to a Hyper-V-like 4f0b):
    every list of the plan follows the numbers, not the text (groups go by their id)."""
    vmd, hv, std = "10000:01:00.0", "4f0b:00:02.0", "0000:03:00.0"
    gpus = ["10000:02:00.0", "4f0b:00:03.0", "0000:04:00.0"]
    pfs = ["10000:05:00.0", "4f0b:00:04.0", "0000:05:00.0"]
    blocked = ["10000:06:00.0", "4f0b:00:05.0", "0000:06:00.0"]
    devs = [fn(a, 10 + i, NIC) for i, a in enumerate((vmd, hv, std))]
    devs += [fn(a, 20 + i, GPU) for i, a in enumerate(gpus)]
    devs += [fn(a, 30 + i, PF_IDS, sriov=Sriov(4, 0, 64, 1, "154c")) for i, a in enumerate(pfs)]
    devs += [fn(a, 40 + i, GPU, boot_vga=True) for i, a in enumerate(blocked)]
    facts = host(devs)
    choices = dict(
        enabled=True, gpu_drivers=True,
        devices=by_address(vmd, hv, std) + (Selector(kind="gpu", path="devices[3].kind"),),
        host_gpus=tuple(Selector(address=a, path="hostGpus[x].address") for a in gpus),
        sriov=tuple(SriovChoice(a, 1, True, "sriov[x]") for a in pfs),
    )
    p = plan(facts, **choices)
    for addresses in (
        [x.address for x in p.passthrough], p.host_gpus, [s.address for s in p.sriov],
        [r.address for r in p.refused],
    ):
        assert addresses == sorted(addresses, key=numeric) and len(addresses) >= 3, addresses
    # Without a hostGpus list: every NVIDIA or AMD GPU not passed, in the same order.
    auto = plan(facts, enabled=True, gpu_drivers=True).host_gpus
    assert auto == sorted(auto, key=numeric) and set(gpus) <= set(auto)


def test_groups_are_listed_by_id_with_what_the_binder_meets():
    port = fn("0000:00:1c.0", 3, dict(vendor_id="8086", device_id="a338", class_id="060400", kind="bridge",
                                      driver="pcieport"), is_bridge=True, pci_bridge=True, pcie_type=4)
    facts = host([
        port, fn("0000:08:00.0", 3, NIC), fn("0000:08:00.1", 3, NIC, device_id="1534"),
        fn("0000:02:00.0", 9, NIC, device_id="1535"),
    ])
    p = plan(facts, enabled=True, devices=by_address("0000:02:00.0", "0000:08:00.1"))
    assert [(g.id, g.predicted, g.devices, g.passthrough, g.left) for g in p.groups] == [
        (3, False, ("0000:00:1c.0", "0000:08:00.0", "0000:08:00.1"), ("0000:08:00.0", "0000:08:00.1"), ("0000:00:1c.0",)),
        (9, False, ("0000:02:00.0",), ("0000:02:00.0",), ()),
    ]


def test_group_zero_is_listed_first_whatever_its_address():
    """The kernel numbers groups from 0 in the order it adds devices, which need not be
    address order: group 0 at a higher address than group 1 still comes first."""
    facts = host([fn("0000:02:00.0", 1, NIC), fn("0000:07:00.0", 0, NIC, device_id="1534")])
    p = plan(facts, enabled=True, devices=by_address("0000:02:00.0", "0000:07:00.0"))
    assert [(g.id, g.passthrough) for g in p.groups] == [(0, ("0000:07:00.0",)), (1, ("0000:02:00.0",))]
