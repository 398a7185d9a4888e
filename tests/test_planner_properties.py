"""Property tests over random topologies: whatever the machine and the request, the plan
never holds a blocked device, a bridge, a PF, or part of a group. The oracle below is
written from the policy text, not from the planner's code."""

from __future__ import annotations

import dataclasses
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from installer_ext.config.model import Choices, InstallInfo, ManagementInterface, Selector, SriovChoice
from installer_ext.errors import BadInput
from installer_ext.host.model import BlockDevice, CpuFacts, HostFacts, IommuFacts, NetInterface, PciFunction, Sriov
from installer_ext.plan.model import Plan
from installer_ext.plan.planner import make_plan

KINDS = {"gpu": "030000", "nic": "020000", "storage": "010802", "usb": "0c0330", "audio": "040300", "other": "ff0000"}
IDS = ["10de:2206", "10de:1aef", "8086:1533", "1002:7310", "144d:a808", "15b3:1017"]


@st.composite
def machines(draw):
    """A HostFacts with random groups of endpoints, bridges in some groups, a boot
    display, a management NIC, an install disk, SR-IOV PFs with and without VFs.
    Facts are frozen: each function is drawn whole, then built once by keyword."""
    specs: list[dict] = []
    n_groups = draw(st.integers(1, 10))
    bus = 1
    for gid in range(n_groups):
        members = draw(st.integers(1, 4))
        if draw(st.booleans()):
            specs.append(dict(address=f"0000:00:{gid + 1:02x}.0", vendor_id="8086", device_id="1901",
                              class_id="060400", kind="bridge", driver="pcieport", iommu_group=gid,
                              is_bridge=True, pci_bridge=True, header_type=1))
        if draw(st.integers(0, 9)) == 0:
            specs.append(dict(address=f"0000:00:{gid + 1:02x}.7", vendor_id="8086", device_id="a305",
                              class_id="060100", kind="bridge", driver=draw(st.sampled_from([None, "lpc_ich"])),
                              iommu_group=gid, is_bridge=True))
        for fn in range(members):
            kind = draw(st.sampled_from(sorted(KINDS)))
            vid, did = draw(st.sampled_from(IDS)).split(":")
            spec = dict(address=f"0000:{bus:02x}:00.{fn}", vendor_id=vid, device_id=did, class_id=KINDS[kind],
                        kind=kind, driver="native", iommu_group=gid, resettable=True)
            if kind == "nic" and draw(st.booleans()):
                spec["sriov"] = Sriov(total_vfs=draw(st.integers(1, 8)), num_vfs=0, offset=128, stride=1, vf_device_id="1889")
            specs.append(spec)
        bus += 1
    endpoints = [sp for sp in specs if not sp.get("is_bridge")]
    gpus = [sp for sp in endpoints if sp["kind"] == "gpu"]
    if gpus and draw(st.booleans()):
        draw(st.sampled_from(gpus))["boot_vga"] = True
    net, block = [], []
    nics = [sp for sp in endpoints if sp["kind"] == "nic"]
    if nics:
        mgmt = draw(st.sampled_from(nics))
        net.append(NetInterface("mgmt0", mgmt["address"], None, "up"))
        mgmt["net_interfaces"] = ("mgmt0",)
    disks = [sp for sp in endpoints if sp["kind"] == "storage"]
    if disks:
        ctrl = draw(st.sampled_from(disks))
        block.append(BlockDevice("sda", (ctrl["address"],), None))
        ctrl["block_devices"] = ("sda",)
    # PFs with VFs enabled now, the VFs each in their own group.
    gid = n_groups
    for pf in [sp for sp in endpoints if "sriov" in sp]:
        if draw(st.booleans()):
            pf["sriov"] = Sriov(pf["sriov"].total_vfs, 2, 128, 1, "1889")
            vfs = []
            for n in range(2):
                vfs.append(dict(address=f"{pf['address'][:7]}:10.{n}", vendor_id=pf["vendor_id"], device_id="1889",
                                class_id="020000", kind="nic", iommu_group=gid, physfn=pf["address"], resettable=True))
                gid += 1
            pf["virtfns"] = tuple(v["address"] for v in vfs)
            specs += vfs
    devices = sorted((PciFunction(**sp) for sp in specs), key=lambda d: d.address)
    iommu = IommuFacts("enabled", True, ("DMAR",), ("dmar0",))
    cpu = CpuFacts("intel", "GenuineIntel", "x", True, ("vmx",))
    return HostFacts("/fake", cpu, iommu, devices, [], False, net, block)


@st.composite
def requests(draw, facts: HostFacts):
    addrs = [d.address for d in facts.devices]
    sels = []
    for _ in range(draw(st.integers(0, 5))):
        how = draw(st.sampled_from(["address", "id", "kind"]))
        if how == "address":
            sels.append(Selector(address=draw(st.sampled_from(addrs)), path="devices[x].address"))
        elif how == "id":
            sels.append(Selector(id=draw(st.sampled_from(IDS)), path="devices[x].id"))
        else:
            sels.append(Selector(kind=draw(st.sampled_from(sorted(KINDS))), path="devices[x].kind"))
    sriov = []
    for pf in [d for d in facts.devices if d.sriov is not None]:
        if draw(st.booleans()):
            sriov.append(SriovChoice(pf.address, draw(st.integers(0, pf.sriov.total_vfs)), draw(st.booleans()), "sriov[x]"))
    return Choices(enabled=True, gpu_drivers=draw(st.booleans()), devices=tuple(sels), sriov=tuple(sriov))


def install_of(facts: HostFacts) -> InstallInfo:
    return InstallInfo(
        known=True,
        device="/dev/sda" if facts.block else None,
        management=tuple(ManagementInterface(n.name, None, "install.managementInterface.interfaces[0]") for n in facts.net),
    )


def forbidden(facts: HostFacts, choices: Choices) -> set[str]:
    """From the policy text: what must never be bound."""
    asked_pf = {s.address for s in choices.sriov if s.num_vfs > 0}
    mgmt = {n.address for n in facts.net}
    ctrls = {c for b in facts.block for c in b.controllers}
    culprits = set()
    out = set()
    for d in facts.devices:
        pf_busy = d.sriov is not None and (d.sriov.num_vfs > 0 or d.address in asked_pf)
        if d.boot_vga or d.address in mgmt or d.address in ctrls or pf_busy:
            out.add(d.address)
            culprits.add(d.address)
        if d.is_bridge:
            out.add(d.address)
            if not d.pci_bridge and d.driver is not None:
                culprits.add(d.address)
    for c in culprits:
        for mate in facts.group_members(facts.device(c)):
            out.add(mate.address)
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_plan_never_holds_what_the_policy_forbids(data):
    facts = data.draw(machines())
    choices = data.draw(requests(facts))
    try:
        plan = make_plan(facts, choices, install_of(facts))
    except BadInput:
        return
    passed = {p.address for p in plan.passthrough}
    assert not passed & forbidden(facts, choices)
    for addr in passed:
        dev = facts.device(addr)
        if dev is None:
            continue  # a VF to be created at boot
        for mate in facts.group_members(dev):
            assert mate.address in passed or mate.pci_bridge or (mate.is_bridge and mate.driver is None), (
                f"{addr} passed without its group-mate {mate.address}"
            )
    if plan.fatal_refusals:
        assert plan.passthrough == [] and plan.vfio_ids == []
    for sel in choices.devices:
        if sel.address is not None and sel.address in forbidden(facts, choices):
            assert sel.address in {r.address for r in plan.fatal_refusals}
    # ids only when every function with them is passed.
    for ids in plan.vfio_ids:
        holders = {d.address for d in facts.devices if d.ids == ids}
        assert holders <= passed
    again = make_plan(facts, choices, install_of(facts))
    assert json.dumps(again.to_json(), sort_keys=True) == json.dumps(plan.to_json(), sort_keys=True)
    assert Plan.from_json(json.loads(json.dumps(plan.to_json()))).to_json() == plan.to_json()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_blockers_are_what_an_explicit_address_is_refused_for(data):
    """One home for blocking: whatever blockers() (the screen's and detect's question)
    says of a function is exactly what make_plan refuses it for when it is named."""
    from installer_ext.plan.planner import blockers

    facts = data.draw(machines())
    choices = data.draw(requests(facts))
    install = install_of(facts)
    try:
        found = blockers(facts, choices, install)
    except BadInput:
        return
    dev = data.draw(st.sampled_from([d for d in facts.devices if d.physfn is None]))
    named = dataclasses.replace(choices, devices=(Selector(address=dev.address, path="devices[0].address"),))
    plan = make_plan(facts, named, install)
    refused = {r.address: r for r in plan.fatal_refusals}
    if dev.address in found:
        bs = found[dev.address]
        assert refused[dev.address].reason == "; ".join(b.reason for b in bs)
        assert refused[dev.address].code == bs[0].code
    else:
        assert dev.address not in refused
        assert dev.address in {p.address for p in plan.passthrough}
