"""Predicted IOMMU groups against the kernel's own grouping.

`KernelOracle` below is written from the kernel, not from installer_ext/host/groups.py:
torvalds/linux drivers/iommu/iommu.c `pci_device_group()`, `get_pci_alias_or_group()`,
`get_pci_alias_group()`, `get_pci_function_alias_group()`; drivers/pci/search.c
`pci_for_each_dma_alias()`; drivers/pci/pci.c `pci_acs_enabled()` and
`pci_acs_path_enabled()`; drivers/pci/probe.c `pci_scan_slot()` (every function found
after the first of a slot is marked multifunction) and drivers/pci/iov.c
`pci_iov_add_virtfn()` (a VF never is). Devices are grouped in the order the kernel
adds them: a bus's devices by devfn, then each bridge's secondary bus in turn
(pci_scan_child_bus_extend() in probe.c), the VFs last (they appear when the PF's
driver enables SR-IOV). DMA alias quirks (pci_add_dma_alias) and ACS quirks
(pci_dev_specific_acs_enabled) are device-specific and left out on both sides, as is ARI.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from installer_ext.host import config_space as cs
from installer_ext.host.facts import gather
from installer_ext.host.groups import predict_groups
from installer_ext.host.model import PciFunction
from tests.fakesys import build
from tests.fakesys import machines as fm

ROOT_PORT, UPSTREAM, DOWNSTREAM = cs.PCIE_ROOT_PORT, cs.PCIE_UPSTREAM, cs.PCIE_DOWNSTREAM
ENDPOINT, LEGACY, RC_END = cs.PCIE_ENDPOINT, cs.PCIE_LEGACY_ENDPOINT, cs.PCIE_RC_END
PCI_BRIDGE, PCIE_BRIDGE, RC_EC = cs.PCIE_PCI_BRIDGE, cs.PCIE_PCIE_BRIDGE, cs.PCIE_RC_EC


# -- the kernel's model of a topology ----------------------------------------------------
@dataclass(eq=False, repr=False)
class KBus:
    number: int
    bridge: KDev | None = None  # the kernel's bus->self: the bridge above it; None for a root bus
    parent: KBus | None = None
    devices: list[KDev] = field(default_factory=list)


@dataclass(eq=False, repr=False)
class KDev:
    bus: KBus
    devfn: int
    pcie_type: int | None  # None: conventional PCI
    acs: bool  # ACS capability: the IOMMU-on kernel enables every control it offers
    header_multifunction: bool  # bit 7 of the header type byte
    bridge: bool = False
    is_virtfn: bool = False
    physfn: KDev | None = None
    subordinate: KBus | None = None
    multifunction: bool = False  # pci_dev->multifunction, set by scan_slot() below
    group: int | None = None

    @property
    def address(self) -> str:
        return f"0000:{self.bus.number:02x}:{self.devfn >> 3:02x}.{self.devfn & 7}"

    def __repr__(self) -> str:
        kind = "conventional" if self.pcie_type is None else f"pcie type {self.pcie_type}"
        flags = "".join(
            f" {name}" for name, on in (("acs", self.acs), ("header-mf", self.header_multifunction),
                                        ("vf", self.is_virtfn), ("bridge", self.bridge)) if on
        )
        return f"<{self.address} {kind}{flags}>"


def scan_slot(devs: list[KDev]) -> None:
    """probe.c pci_scan_slot(): function 0's multifunction is its header bit (set in
    pci_setup_device()); every function found after it gets multifunction = 1."""
    for fn, d in enumerate(sorted(devs, key=lambda d: d.devfn)):
        d.multifunction = d.header_multifunction if fn == 0 else True


class KernelOracle:
    """The kernel's grouping of a topology, step by step as iommu.c does it."""

    def __init__(self, devices_in_add_order: list[KDev]) -> None:
        self.all = devices_in_add_order  # for_each_pci_dev() order
        self.next_group = 0
        for d in self.all:
            d.group = self.pci_device_group(d)

    @staticmethod
    def is_root_bus(bus: KBus) -> bool:
        return bus.parent is None

    def acs_enabled(self, pdev: KDev) -> bool:  # pci.c pci_acs_enabled(), no quirks
        if pdev.pcie_type is None:
            return False
        t = pdev.pcie_type
        if t in (PCIE_BRIDGE, PCI_BRIDGE, RC_EC):
            return False
        if t in (DOWNSTREAM, ROOT_PORT):
            return pdev.acs
        if t in (ENDPOINT, UPSTREAM, LEGACY, RC_END):
            if not pdev.multifunction:
                return True
            return pdev.acs
        return True

    def acs_path_enabled(self, start: KDev) -> bool:  # pci.c pci_acs_path_enabled(start, NULL)
        parent = start
        while True:
            pdev = parent
            if not self.acs_enabled(pdev):
                return False
            if self.is_root_bus(pdev.bus):
                return True  # end == NULL
            parent = pdev.bus.bridge

    def for_each_dma_alias(self, pdev: KDev, fn) -> bool:  # search.c pci_for_each_dma_alias()
        if fn(pdev):
            return True
        bus = pdev.bus
        while not self.is_root_bus(bus):
            tmp = bus.bridge
            if tmp is not None:
                if tmp.pcie_type is not None:
                    if tmp.pcie_type in (PCI_BRIDGE, PCIE_BRIDGE) and fn(tmp):
                        return True
                elif fn(tmp):  # conventional PCI bridge: requests carry its id
                    return True
            bus = bus.parent
        return False

    def alias_group(self, pdev: KDev, devfns: set[int]) -> int | None:  # get_pci_alias_group()
        if pdev.devfn in devfns:
            return None
        devfns.add(pdev.devfn)
        return pdev.group  # no DMA alias quirks: no other device aliases it

    def function_alias_group(self, pdev: KDev, devfns: set[int]) -> int | None:  # get_pci_function_alias_group()
        if not pdev.multifunction or self.acs_enabled(pdev):
            return None
        for tmp in self.all:
            if tmp is pdev or tmp.bus is not pdev.bus or tmp.devfn >> 3 != pdev.devfn >> 3 or self.acs_enabled(tmp):
                continue
            group = self.alias_group(tmp, devfns)
            if group is not None:
                return group
        return None

    def pci_device_group(self, pdev: KDev) -> int:
        data: dict[str, object] = {}

        def get_pci_alias_or_group(dev: KDev) -> bool:
            data["pdev"], data["group"] = dev, dev.group
            return dev.group is not None

        if self.for_each_dma_alias(pdev, get_pci_alias_or_group):
            return data["group"]
        pdev = data["pdev"]
        bus = pdev.bus
        while not self.is_root_bus(bus):
            if bus.bridge is not None:
                if self.acs_path_enabled(bus.bridge):
                    break
                pdev = bus.bridge
                if pdev.group is not None:
                    return pdev.group
            bus = bus.parent
        devfns: set[int] = set()
        group = self.alias_group(pdev, devfns)
        if group is None:
            group = self.function_alias_group(pdev, devfns)
        if group is None:
            group, self.next_group = self.next_group, self.next_group + 1
        return group


def add_order(root: KBus) -> list[KDev]:
    """probe.c: a bus's devices by devfn, then each bridge's secondary bus; VFs last."""
    out: list[KDev] = []

    def walk(bus: KBus) -> None:
        devs = sorted((d for d in bus.devices if not d.is_virtfn), key=lambda d: d.devfn)
        out.extend(devs)
        for d in devs:
            if d.subordinate is not None:
                walk(d.subordinate)

    walk(root)
    vfs: list[KDev] = []

    def collect(bus: KBus) -> None:
        for d in sorted(bus.devices, key=lambda d: d.devfn):
            if d.is_virtfn:
                vfs.append(d)
            if d.subordinate is not None:
                collect(d.subordinate)

    collect(root)
    return out + vfs


# -- random topologies built with the kernel's rules ------------------------------------
class Topology:
    def __init__(self) -> None:
        self.root = KBus(0)
        self.buses = 1

    def new_bus(self, bridge: KDev) -> KBus:
        bus = KBus(self.buses, bridge, bridge.bus)  # numbered depth-first, as firmware does
        self.buses += 1
        bridge.subordinate = bus
        return bus


@st.composite
def slot_functions(draw, max_functions: int = 4) -> list[int]:
    """Function numbers of one slot: 0 always (it is required), others maybe with gaps."""
    more = draw(st.sets(st.integers(1, 7), max_size=max_functions - 1))
    return [0, *sorted(more)]


@st.composite
def topologies(draw):
    t = Topology()

    def device(bus: KBus, devfn: int, pcie_type: int | None, fns: int, bridge: bool = False) -> KDev:
        first = devfn & 7 == 0
        header = (fns > 1 or draw(st.booleans())) if first else draw(st.booleans())
        d = KDev(bus, devfn, pcie_type, acs=pcie_type is not None and draw(st.booleans()),
                 header_multifunction=header, bridge=bridge)
        bus.devices.append(d)
        return d

    def behind_link(bus: KBus, depth: int) -> None:
        """The one device below a root or downstream port (only device 0 on a link)."""
        what = draw(st.sampled_from(["endpoints", "switch", "pcie-to-pci"] if depth < 3 else ["endpoints"]))
        if what == "switch":
            up = device(bus, 0, UPSTREAM, 1, bridge=True)
            inner = t.new_bus(up)
            for slot in range(draw(st.integers(1, 3))):
                down = device(inner, slot << 3, DOWNSTREAM, 1, bridge=True)
                behind_link(t.new_bus(down), depth + 1)
        elif what == "pcie-to-pci":
            br = device(bus, 0, PCI_BRIDGE, 1, bridge=True)
            conventional(t.new_bus(br), depth + 1)
        else:
            fns = draw(slot_functions())
            pfs = []
            for fn in fns:
                pfs.append(device(bus, fn, draw(st.sampled_from([ENDPOINT, ENDPOINT, LEGACY])), len(fns)))
            pf = pfs[0]
            for n in range(draw(st.integers(0, 3)) if pf.pcie_type == ENDPOINT else 0):
                vf = KDev(bus, 0x10 + n, ENDPOINT, acs=False, header_multifunction=False, is_virtfn=True, physfn=pf)
                bus.devices.append(vf)

    def conventional(bus: KBus, depth: int) -> None:
        for slot in draw(st.sets(st.integers(0, 5), min_size=1, max_size=3)):
            fns = draw(slot_functions(3))
            for fn in fns:
                if fn == 0 and depth < 3 and draw(st.integers(0, 4)) == 0:
                    br = device(bus, slot << 3, None, len(fns), bridge=True)
                    conventional(t.new_bus(br), depth + 1)
                else:
                    device(bus, slot << 3 | fn, None, len(fns))

    for slot in sorted(draw(st.sets(st.integers(0, 0x1F), min_size=1, max_size=6))):
        fns = draw(slot_functions())
        for fn in fns:
            kind = draw(st.sampled_from(["root-port", "root-port", "rc-endpoint", "pci", "pci-bridge"]))
            devfn = slot << 3 | fn
            if kind == "root-port":
                rp = device(t.root, devfn, ROOT_PORT, len(fns), bridge=True)
                behind_link(t.new_bus(rp), 1)
            elif kind == "pci-bridge":
                br = device(t.root, devfn, None, len(fns), bridge=True)
                conventional(t.new_bus(br), 1)
            else:
                device(t.root, devfn, RC_END if kind == "rc-endpoint" else None, len(fns))
    devices = add_order(t.root)
    for bus in {id(d.bus): d.bus for d in devices}.values():
        slots: dict[int, list[KDev]] = {}
        for d in bus.devices:
            if not d.is_virtfn:
                slots.setdefault(d.devfn >> 3, []).append(d)
        for members in slots.values():
            scan_slot(members)
    return devices


def facts_of(devices: list[KDev]) -> list[PciFunction]:
    """What the reader gives for each function: the header byte as it is, no kernel flags."""
    out = []
    for d in devices:
        parent = d.bus.bridge.address if d.bus.bridge is not None else None
        out.append(
            PciFunction(
                address=d.address,
                vendor_id="8086",
                device_id="1234",
                class_id="060400" if d.bridge else "020000",
                kind="bridge" if d.bridge else "nic",
                physfn=d.physfn.address if d.physfn is not None else None,
                is_bridge=d.bridge,
                pci_bridge=d.bridge,
                header_type=1 if d.bridge else 0,
                multifunction=d.header_multifunction,
                pcie_type=d.pcie_type,
                acs=d.acs,
                parent=parent,
            )
        )
    return out


def partition(group_of: dict[str, int]) -> set[frozenset[str]]:
    out: dict[int, set[str]] = {}
    for addr, gid in group_of.items():
        out.setdefault(gid, set()).add(addr)
    return {frozenset(g) for g in out.values()}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(topologies())
def test_prediction_is_never_finer_than_the_kernels_grouping(devices):
    """What the safety rules promise: a function never gets a predicted group smaller
    than its real one. On topologies without quirks the two are the same."""
    KernelOracle(devices)
    kernel = {d.address: d.group for d in devices}
    predicted, _ = predict_groups(facts_of(devices))
    for group in partition(kernel):
        assert len({predicted[a] for a in group}) == 1, f"kernel group {sorted(group)} split by the prediction"
    assert partition(predicted) == partition(kernel)


def test_oracle_reproduces_the_workstations_real_groups():
    """The oracle itself, on a machine whose groups were written down from a real
    kernel (tests/fakesys/machines.py intel_workstation): it must give those groups."""
    m = fm.intel_workstation()
    t = Topology()
    kdevs: dict[str, KDev] = {}
    for dev in sorted(m.devices, key=lambda d: d.address):  # parents come first
        bus_no, devfn = int(dev.address[5:7], 16), int(dev.address[8:10], 16) << 3 | int(dev.address[11])
        bus = t.root if dev.parent is None else kdevs[dev.parent].subordinate or t.new_bus(kdevs[dev.parent])
        assert bus.number == bus_no
        kdevs[dev.address] = k = KDev(bus, devfn, dev.pcie_type, dev.acs, dev.multifunction, bridge=dev.cls[:4] == "0604")
        bus.devices.append(k)
    for bus in {id(k.bus): k.bus for k in kdevs.values()}.values():
        slots: dict[int, list[KDev]] = {}
        for k in bus.devices:
            slots.setdefault(k.devfn >> 3, []).append(k)
        for members in slots.values():
            scan_slot(members)
    KernelOracle(add_order(t.root))
    assert partition({a: k.group for a, k in kdevs.items()}) == partition({d.address: d.group for d in m.devices})


def test_function_one_without_the_multifunction_bit_stays_in_its_slots_group(tmp_path):
    """A GPU whose audio function 1 leaves the header's multifunction bit clear: the
    kernel still marks it multifunction (pci_scan_slot), so without ACS it shares the
    GPU's group even behind a port with ACS. The prediction must not split them."""
    machine = fm.intel_dual_gpu()
    for d in machine.devices:
        if d.address == "0000:01:00.1":
            d.multifunction = False
    off = gather(build(fm.with_changes(machine, "dual-gpu-fn1-off", iommu="off"), str(tmp_path / "off")))
    gpu, audio = off.device("0000:01:00.0"), off.device("0000:01:00.1")
    assert audio.multifunction is False  # the header as read
    assert gpu.predicted_group == audio.predicted_group
    on = gather(build(machine, str(tmp_path / "on")))
    assert on.device("0000:01:00.0").iommu_group == on.device("0000:01:00.1").iommu_group
