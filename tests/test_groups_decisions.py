"""Predicted IOMMU groups on small hand-made topologies, one rule of docs/planner.md
"Predicted IOMMU groups" each (DMA alias, walking up without ACS, the multifunction
slot, what counts as ACS), the group ids (address order, from 0), the real groups as
the kernel reports them, and whether the VFs of a PF get groups of their own
(host/groups.py vf_isolated)."""

from __future__ import annotations

from installer_ext.host import config_space as cs
from installer_ext.host.groups import predict_groups, real_groups, vf_isolated
from installer_ext.host.model import Group, PciFunction

RP, UP, DP, EP, LEG, RC_END, RC_EC = (
    cs.PCIE_ROOT_PORT, cs.PCIE_UPSTREAM, cs.PCIE_DOWNSTREAM, cs.PCIE_ENDPOINT,
    cs.PCIE_LEGACY_ENDPOINT, cs.PCIE_RC_END, cs.PCIE_RC_EC,
)
PCI = None  # conventional PCI


def f(addr: str, pcie_type, acs: bool | None = False, mf: bool | None = False, parent=None, physfn=None, group=None, virtfns=()):
    bridge = pcie_type in (RP, UP, DP, cs.PCIE_PCI_BRIDGE, cs.PCIE_PCIE_BRIDGE)
    return PciFunction(
        address=f"0000:{addr}" if addr.count(":") == 1 else addr,
        vendor_id="8086", device_id="1234", class_id="060400" if bridge else "020000",
        kind="bridge" if bridge else "nic",
        pcie_type=pcie_type, acs=acs, multifunction=mf,
        parent=(f"0000:{parent}" if parent and parent.count(":") == 1 else parent),
        physfn=(f"0000:{physfn}" if physfn else None), iommu_group=group,
        virtfns=tuple(f"0000:{v}" for v in virtfns),
        is_bridge=bridge, pci_bridge=bridge, header_type=1 if bridge else 0,
    )


def groups(*devices) -> list[list[str]]:
    """The predicted groups in id order, addresses without the domain where it is 0000."""
    group_of, gs = predict_groups(list(devices))
    assert [g.id for g in gs] == list(range(len(gs)))  # ids from 0, no gaps
    assert all(g.predicted for g in gs)
    for g in gs:
        assert all(group_of[a] == g.id for a in g.devices)
    assert sorted(group_of) == sorted(d.address for d in devices)
    return [[a.removeprefix("0000:") for a in g.devices] for g in gs]


def test_acs_at_the_root_port_isolates_the_endpoint_below_it():
    assert groups(f("00:01.0", RP, acs=True), f("01:00.0", EP)) == [["00:01.0"], ["01:00.0"]]


def test_without_acs_at_the_port_the_endpoint_joins_the_ports_group():
    assert groups(f("00:01.0", RP), f("01:00.0", EP, parent="00:01.0")) == [["00:01.0", "01:00.0"]]
    # ACS must hold on the whole path: a switch below a root port without ACS.
    topo = (
        f("00:01.0", RP), f("01:00.0", UP, parent="00:01.0"),
        f("02:00.0", DP, acs=True, parent="01:00.0"), f("03:00.0", EP, parent="02:00.0"),
    )
    assert groups(*topo) == [["00:01.0", "01:00.0", "02:00.0", "03:00.0"]]


def test_a_switch_with_acs_everywhere_isolates_each_endpoint_but_a_port_without_joins():
    topo = (
        f("00:01.0", RP, acs=True),
        f("01:00.0", UP, parent="00:01.0"),
        f("02:00.0", DP, acs=True, parent="01:00.0"),
        f("02:01.0", DP, acs=False, parent="01:00.0"),
        f("03:00.0", EP, parent="02:00.0"),
        f("04:00.0", EP, parent="02:01.0"),
    )
    assert groups(*topo) == [["00:01.0"], ["01:00.0"], ["02:00.0"], ["02:01.0", "04:00.0"], ["03:00.0"]]


def test_the_functions_of_a_multifunction_slot_without_acs_share_a_group():
    rp = f("00:01.0", RP, acs=True)
    # Function 1 without the header's multifunction bit counts as multifunction (the kernel's flag).
    assert groups(rp, f("01:00.0", EP, mf=True, parent="00:01.0"), f("01:00.1", EP, mf=False, parent="00:01.0")) == [
        ["00:01.0"], ["01:00.0", "01:00.1"],
    ]
    with_acs = groups(rp, f("01:00.0", EP, acs=True, mf=True, parent="00:01.0"), f("01:00.1", LEG, acs=True, parent="00:01.0"))
    assert with_acs == [["00:01.0"], ["01:00.0"], ["01:00.1"]]
    # Only the functions without ACS share: function 1 with ACS stays alone.
    mixed = groups(
        rp,
        f("01:00.0", EP, mf=True, parent="00:01.0"),
        f("01:00.1", EP, acs=True, parent="00:01.0"),
        f("01:00.2", EP, parent="00:01.0"),
    )
    assert mixed == [["00:01.0"], ["01:00.0", "01:00.2"], ["01:00.1"]]


def test_a_single_function_endpoint_needs_no_acs_and_an_unreadable_header_counts_as_none():
    rp = f("00:01.0", RP, acs=True)
    assert groups(rp, f("01:00.0", EP, mf=False, parent="00:01.0")) == [["00:01.0"], ["01:00.0"]]
    # mf None (header unreadable): not isolated, so the slot stays open to function 1 ...
    assert groups(rp, f("01:00.0", EP, mf=None, parent="00:01.0"), f("01:00.1", EP, parent="00:01.0")) == [
        ["00:01.0"], ["01:00.0", "01:00.1"],
    ]
    # ... and the device behind such an upstream port is not isolated either.
    topo = (
        rp,
        f("01:00.0", UP, mf=None, parent="00:01.0"),
        f("02:00.0", DP, acs=True, parent="01:00.0"),
        f("03:00.0", EP, parent="02:00.0"),
    )
    assert groups(*topo) == [["00:01.0"], ["01:00.0", "02:00.0", "03:00.0"]]


def test_a_vf_is_never_multifunction_and_never_opens_or_joins_a_slot():
    rp = f("00:01.0", RP, acs=True)
    pf = f("01:00.0", EP, mf=True, parent="00:01.0", virtfns=("01:00.2",))
    fn1 = f("01:00.1", EP, parent="00:01.0")
    vf = f("01:00.2", EP, parent="00:01.0", physfn="01:00.0")
    assert groups(rp, pf, fn1, vf) == [["00:01.0"], ["01:00.0", "01:00.1"], ["01:00.2"]]
    # A VF first in its slot does not open it for the functions after it.
    vf0 = f("01:01.0", EP, parent="00:01.0", physfn="01:00.0")
    other = f("01:01.1", EP, parent="00:01.0")
    assert groups(rp, f("01:00.0", EP, parent="00:01.0"), vf0, other) == [["00:01.0"], ["01:00.0"], ["01:01.0"], ["01:01.1"]]


def test_devices_behind_a_pcie_to_pci_bridge_take_the_bridges_group():
    for bridge_type in (cs.PCIE_PCI_BRIDGE, cs.PCIE_PCIE_BRIDGE, PCI):
        topo = (
            f("00:01.0", RP, acs=True),
            f("01:00.0", bridge_type, parent="00:01.0"),
            f("02:00.0", PCI, parent="01:00.0"),
            f("02:01.0", EP, acs=True, parent="01:00.0"),
        )
        if bridge_type is PCI:
            topo = (topo[0], f("01:00.0", PCI, parent="00:01.0"), *topo[2:])
        assert groups(*topo) == [["00:01.0"], ["01:00.0", "02:00.0", "02:01.0"]], bridge_type


def test_the_topmost_alias_counts_and_an_unaliased_device_below_stays_apart():
    topo = (
        f("00:1e.0", PCI),  # conventional bridge on the root bus
        f("05:00.0", cs.PCIE_PCIE_BRIDGE, parent="00:1e.0"),
        f("06:00.0", EP, parent="05:00.0"),
        f("00:1f.0", RC_END),
    )
    assert groups(*topo) == [["00:1e.0", "05:00.0", "06:00.0"], ["00:1f.0"]]


def test_conventional_pci_and_event_collectors_never_count_as_acs():
    # An event collector with an ACS capability still shares its slot's group.
    assert groups(f("00:1f.0", RC_END, mf=True), f("00:1f.1", RC_EC, acs=True)) == [["00:1f.0", "00:1f.1"]]
    assert groups(f("00:1f.0", RC_END, mf=True), f("00:1f.1", PCI, acs=True)) == [["00:1f.0", "00:1f.1"]]
    # A PCIe type the rules do not name counts as isolated (pci_acs_enabled's default).
    assert groups(f("00:1f.0", RC_END, mf=True), f("00:1f.1", 0x3)) == [["00:1f.0"], ["00:1f.1"]]
    assert groups(f("00:1f.0", RC_END, mf=True, acs=True), f("00:1f.1", RC_END, acs=True)) == [["00:1f.0"], ["00:1f.1"]]


def test_a_slot_joins_the_group_of_its_first_open_function_not_a_later_one():
    topo = (
        f("00:1f.0", RC_END, mf=True),
        f("00:1f.1", RC_END, acs=True),
        f("00:1f.2", RC_END),
        f("00:1f.3", RC_END),
    )
    assert groups(*topo) == [["00:1f.0", "00:1f.2", "00:1f.3"], ["00:1f.1"]]


def test_group_ids_follow_address_order_numerically_even_given_out_of_order():
    """Ids in address order (the kernel's), numbers compared as numbers: a 5-digit
    domain (a VMD domain) comes after domain ffff."""
    devs = [
        f("10000:00:00.0", RC_END),
        f("0000:00:02.0", RC_END),
        f("ffff:00:00.0", RC_END),
        f("0000:00:01.0", RP, acs=True),
        f("0000:01:00.0", EP, parent="0000:00:01.0"),
    ]
    assert groups(*devs) == [["00:01.0"], ["00:02.0"], ["01:00.0"], ["ffff:00:00.0"], ["10000:00:00.0"]]
    # The members of a group are in numeric address order too.
    shared = [f("10000:00:01.0", RP), f("10000:01:00.0", EP, parent="10000:00:01.0")]
    _, gs = predict_groups(shared)
    assert gs == [Group(0, ("10000:00:01.0", "10000:01:00.0"), predicted=True)]


def test_real_groups_are_the_kernels_numbers_with_members_in_address_order():
    devs = [
        f("10000:01:00.0", EP, group=7),
        f("0000:01:00.1", EP, group=3),
        f("0000:01:00.0", EP, group=3),
        f("ffff:00:00.0", EP, group=7),
        f("0000:02:00.0", EP, group=None),
    ]
    assert real_groups(devs) == [
        Group(3, ("0000:01:00.0", "0000:01:00.1")),
        Group(7, ("ffff:00:00.0", "10000:01:00.0")),
    ]
    assert real_groups([]) == []


# -- VFs in groups of their own ---------------------------------------------------------


def vf_host(pf_group=5, vf_groups=(6, 7), rp_acs=True, sw_acs=True, extra=()):
    pf = f("02:00.0", EP, parent="01:00.0", group=pf_group, virtfns=("02:00.1", "02:00.2"))
    vfs = [f(a, EP, parent="01:00.0", physfn="02:00.0", group=g) for a, g in zip(("02:00.1", "02:00.2"), vf_groups)]
    ports = [f("00:01.0", RP, acs=rp_acs, group=1), f("01:00.0", DP, acs=sw_acs, parent="00:01.0", group=2)]
    return [*ports, pf, *vfs, *extra], pf


def test_vfs_with_real_groups_of_their_own_are_isolated():
    devices, pf = vf_host()
    assert vf_isolated(devices, pf)
    # VFs sharing one group among themselves only: still without the PF.
    devices, pf = vf_host(vf_groups=(6, 6))
    assert vf_isolated(devices, pf)


def test_the_real_groups_decide_over_the_topology_when_they_exist():
    # A VF in the PF's group: not isolated, though ACS above says it would be.
    devices, pf = vf_host(vf_groups=(6, 5))
    assert not vf_isolated(devices, pf)
    # Another function in a VF's group: not isolated either.
    devices, pf = vf_host(extra=[f("03:00.0", EP, group=7)])
    assert not vf_isolated(devices, pf)
    # Real groups that isolate win over a topology without ACS.
    devices, pf = vf_host(rp_acs=False)
    assert vf_isolated(devices, pf)


def test_without_real_groups_the_acs_path_above_the_pf_decides():
    for rp_acs, sw_acs in ((True, True), (False, True), (True, False)):
        devices, pf = vf_host(pf_group=None, vf_groups=(None, None), rp_acs=rp_acs, sw_acs=sw_acs)
        assert vf_isolated(devices, pf) is (rp_acs and sw_acs)
        # No VFs yet (or a PF without a group): the same answer from the topology.
        no_vfs = [d for d in devices if d.physfn is None]
        assert vf_isolated(no_vfs, pf) is (rp_acs and sw_acs)
        devices, pf = vf_host(pf_group=None, rp_acs=rp_acs, sw_acs=sw_acs)
        assert vf_isolated(devices, pf) is (rp_acs and sw_acs)
        devices, pf = vf_host(vf_groups=(6, None), rp_acs=rp_acs, sw_acs=sw_acs)
        assert vf_isolated(devices, pf) is (rp_acs and sw_acs)
    # A PF on the root bus: nothing above it to share with.
    root_pf = f("00:03.0", RC_END, group=None)
    assert vf_isolated([root_pf], root_pf)
