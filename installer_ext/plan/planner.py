"""The planner: (host facts, choices, install info) -> Plan. Pure: no I/O, no clock;
the same inputs always give the same Plan (everything sorted by address).

It is the only place that decides (docs/planner.md has the policy as implemented):
- blocked: boot VGA, management NICs, install/data disk controllers, bridges, SR-IOV
  PFs (with VFs now or asked for), unreadable devices, and their group-mates
  (plan/blocking.py);
- an explicit address on a blocked device refuses the plan; id/kind selectors skip
  blocked devices with a warning;
- a selection takes its whole IOMMU group (real or predicted);
- no IOMMU: any passthrough request is refused; no interrupt remapping: refused unless
  allowUnsafeInterrupts;
- bind at boot by ids only when every function with those ids is passed through.
"""

from __future__ import annotations

import logging

from installer_ext.config.model import Choices, InstallInfo, Selector, SriovChoice
from installer_ext.errors import BadInput
from installer_ext.harvester import ADDON_PCIDEVICES, SETTING_GPU, SETTING_PCI
from installer_ext.host.address import address_sort_key
from installer_ext.host.model import HostFacts, PciFunction
from installer_ext.plan import binding, blocking, gpus, sriov
from installer_ext.plan import model as pm
from installer_ext.plan import reasons as rs
from installer_ext.plan.kernel_args import kernel_args, refusal_sentence, unsafe_interrupts_needed
from installer_ext.plan.quirks import reset_warnings
from installer_ext.plan.reasons import Blocker

log = logging.getLogger(__name__)

# A kind in a sentence: "0000:01:00.1 is an audio device, not a GPU".
_A_KIND = {
    "gpu": "a GPU",
    "nic": "a network controller",
    "storage": "a storage controller",
    "usb": "a USB controller",
    "audio": "an audio device",
    "bridge": "a bridge",
    "other": "a device of another class",
}


def _key(address: str):
    return address_sort_key(address)


class _Planner:
    """One decision: checks the choices against the host (BadInput when they name
    what it lacks), then blocks, selects, and builds the Plan in `run`."""

    def __init__(self, facts: HostFacts, choices: Choices, install: InstallInfo) -> None:
        self.facts = facts
        self.choices = choices
        self.warnings: list[str] = []
        self.refused: dict[str, pm.Refusal] = {}
        self.selected: dict[str, str] = {}  # address -> why
        for s in choices.sriov:
            self.sriov_pf(s)
        self.host_gpus_asked = self.resolve_host_gpus()
        enabled = choices.enabled
        self.blocked = blocking.blocked(
            facts,
            install,
            {s.address: s.num_vfs for s in choices.sriov} if enabled else {},
            self.host_gpus_asked if enabled else set(),
        )

    # -- reading the choices ---------------------------------------------------------
    def resolve(self, sel: Selector) -> list[PciFunction]:
        if sel.address is not None:
            dev = self.facts.device(sel.address)
            if dev is None:
                raise BadInput(f"{sel.path}: no PCI function {sel.address} on this host")
            return [dev]
        if sel.id is not None:
            found = [d for d in self.facts.devices if d.ids == sel.id]
        else:
            found = [d for d in self.facts.devices if d.kind == sel.kind and d.physfn is None]
        if not found:
            self.warnings.append(f"{sel.path}: {sel.describe()} matches no device on this host")
        return found

    def resolve_host_gpus(self) -> set[str]:
        """The GPUs `hostGpus` names; BadInput for an address that is not a GPU."""
        out: set[str] = set()
        for sel in self.choices.host_gpus or ():
            for d in self.resolve(sel):
                if d.kind == "gpu":
                    out.add(d.address)
                elif sel.address is not None:
                    raise BadInput(f"{sel.path}: {d.address} is {_A_KIND[d.kind]}, not a GPU")
        return out

    def sriov_pf(self, s: SriovChoice) -> PciFunction:
        """The PF an sriov entry names; BadInput when this host cannot do what it asks
        (checked even while passthrough is off: the entry is wrong either way)."""
        dev = self.facts.device(s.address)
        if dev is None:
            raise BadInput(f"{s.path}.address: no PCI function {s.address} on this host")
        if dev.sriov is None or dev.sriov.total_vfs == 0:
            raise BadInput(f"{s.path}.address: {s.address} is not an SR-IOV physical function (no sriov_totalvfs)")
        if s.num_vfs > dev.sriov.total_vfs:
            raise BadInput(
                f"{s.path}.numVfs: {s.num_vfs} is more than {s.address} supports (sriov_totalvfs {dev.sriov.total_vfs})"
            )
        return dev

    def blockers_of(self, address: str) -> tuple[Blocker, ...]:
        return self.blocked.get(address, ())

    def refuse(self, dev: PciFunction, blockers: tuple[Blocker, ...], fatal: bool, sel: Selector) -> None:
        r = pm.Refusal.of(dev.address, blockers, fatal)
        prev = self.refused.get(dev.address)
        if prev is None or (fatal and not prev.fatal):
            self.refused[dev.address] = r
        if not fatal:
            self.warnings.append(f"{sel.path}: skipped {dev.address}: {r.reason}")

    # -- deciding --------------------------------------------------------------------
    def run(self) -> pm.Plan:
        c = self.choices
        if not c.enabled and (c.devices or c.sriov):
            self.warnings.append("pciPassthrough.enabled is false: devices and sriov are ignored")
        if c.enabled:
            self.select_devices()
            self.take_whole_groups()
        sriov_plans, vf_entries = self.plan_sriov() if c.enabled else ([], [])
        vf_entries = self.global_refusals(vf_entries)
        self.host_warnings()
        return self.build(sriov_plans, vf_entries)

    def select_devices(self) -> None:
        """Each selector's functions, or their refusal: fatal for an explicit address,
        a warning for an id or kind selector."""
        for sel in self.choices.devices:
            explicit = sel.address is not None
            if explicit and sel.address in self.host_gpus_asked:
                raise BadInput(f"{sel.path}: {sel.address} is also listed in pciPassthrough.hostGpus")
            for d in self.resolve(sel):
                bs = self.blockers_of(d.address)
                if bs:
                    self.refuse(d, bs, fatal=explicit, sel=sel)
                else:
                    self.selected[d.address] = pm.WHY_SELECTED

    def take_whole_groups(self) -> None:
        """Every endpoint of a selected function's group goes with it; bridges that are
        left alone stay as they are."""
        f = self.facts
        for addr in sorted(self.selected, key=_key):
            for mate in f.group_members(f.device(addr)):
                if mate.address not in self.selected and not blocking.left_alone(mate):
                    self.selected[mate.address] = pm.WHY_SAME_GROUP

    def plan_sriov(self) -> tuple[list[pm.SriovPlan], list[pm.Passthrough]]:
        plans: list[pm.SriovPlan] = []
        vf_entries: list[pm.Passthrough] = []
        for s in self.choices.sriov:
            pf = self.sriov_pf(s)
            if any(b.code == rs.BLOCK_UNKNOWN for b in self.blockers_of(pf.address)):
                raise BadInput(f"{s.path}.address: {s.address} could not be read in sysfs")
            got = sriov.plan_pf(self.facts, pf, s, self.blocked)
            for r in got.refused:
                self.refused[r.address] = r
            if got.sriov is not None:
                plans.append(got.sriov)
                vf_entries += got.vfs
        return plans, vf_entries

    def global_refusals(self, vf_entries: list[pm.Passthrough]) -> list[pm.Passthrough]:
        """What the host as a whole refuses: any passthrough without an IOMMU, and
        without interrupt remapping unless allowUnsafeInterrupts. Returns the VFs left."""
        c, io = self.choices, self.facts.iommu
        if not c.enabled:
            return vf_entries
        requested = bool(self.selected or vf_entries)
        if io.state == "absent":
            reason = "no IOMMU on this host (no DMAR or IVRS table): enable VT-d / AMD-Vi in the firmware"
            for addr in list(self.selected) or [None]:
                self.refused[addr or "host"] = pm.Refusal(addr, reason, rs.BLOCK_NO_IOMMU, fatal=True)
            self.selected.clear()
            return []
        if unsafe_interrupts_needed(io):
            if c.allow_unsafe_interrupts:
                self.warnings.append(
                    "no interrupt remapping: allowUnsafeInterrupts lets VMs use passed devices, but a device "
                    "can then inject interrupts into the host (unsafe)"
                )
            elif requested:
                reason = "no interrupt remapping: vfio refuses devices without it (set allowUnsafeInterrupts to accept the risk)"
                for addr in list(self.selected) + [v.address for v in vf_entries]:
                    self.refused[addr] = pm.Refusal(addr, reason, rs.REFUSE_NO_INTERRUPT_REMAPPING, fatal=True)
                self.selected.clear()
                return []
        elif io.interrupt_remapping is None and requested:
            self.warnings.append("interrupt remapping could not be read: vfio will refuse devices if it is off")
        return vf_entries

    def host_warnings(self) -> None:
        """What the host and the choices are worth a word about, beyond refusals."""
        c, f = self.choices, self.facts
        if c.enabled and f.iommu.state == "available":
            self.warnings.append(
                "the IOMMU is off in the installer's kernel: groups are predicted from the topology "
                "and checked again on the installed system before anything is bound"
            )
        if c.enabled and not f.cpu.virtualization:
            self.warnings.append(
                "no CPU virtualization seen (no vmx/svm flag, no /dev/kvm): enable it in the firmware or VMs will not start"
            )
        if c.enabled and f.cpu.vendor == "other":
            self.warnings.append("unknown CPU vendor: no IOMMU kernel arguments are added")
        if c.enabled and c.allow_unsafe_interrupts and f.iommu.interrupt_remapping is True:
            self.warnings.append("allowUnsafeInterrupts is set, but this host has interrupt remapping: it is not needed here, "
                "and its kernel argument is left out")
        if c.host_gpus and not c.gpu_drivers:
            self.warnings.append(
                "pciPassthrough.hostGpus: gpuDrivers is false, so no device plugin is set up for them "
                "(they are only kept out of VMs)"
            )

    def build(self, sriov_plans: list[pm.SriovPlan], vf_entries: list[pm.Passthrough]) -> pm.Plan:
        c, f = self.choices, self.facts
        enabled = c.enabled
        passthrough = self.passthrough_entries() + vf_entries
        passthrough.sort(key=lambda p: _key(p.address))
        passthrough, vfio_ids = binding.boot_binding(f, passthrough)
        for p in passthrough:
            d = f.device(p.address)
            self.warnings += reset_warnings(p.address, p.vendor_id, p.device_id, d.resettable if d else None)
        asked = self.host_gpus_asked if c.host_gpus is not None else None
        host_gpus = gpus.host_gpus(f, asked, {p.address for p in passthrough}) if c.gpu_drivers else []
        plugins = gpus.device_plugins(f, host_gpus, c.device_plugin, self.warnings) if c.gpu_drivers else []
        settings: dict[str, str] = {}
        if c.harvester.settings:
            settings = {SETTING_PCI: str(enabled).lower(), SETTING_GPU: str(c.gpu_drivers).lower()}
        addons = {ADDON_PCIDEVICES: enabled} if c.harvester.addon else {}
        ka = kernel_args(
            f.cpu.vendor, enabled and f.iommu.state != "absent", c.allow_unsafe_interrupts, c.extra_kernel_args,
            f.iommu.interrupt_remapping,
        )
        for i, (token, why) in enumerate(ka.refused):
            self.refused[f"kernel-arg-{i}"] = pm.Refusal(None, refusal_sentence(token, why), rs.REFUSE_KERNEL_ARG, fatal=True, subject=token)
        fatal = [r for r in self.refused.values() if r.fatal]
        modules = ["vfio-pci", "vfio_iommu_type1"] if enabled and passthrough else []
        return pm.Plan(
            enabled=enabled,
            gpu_drivers=c.gpu_drivers,
            cpu_vendor=f.cpu.vendor,
            iommu_state=f.iommu.state,
            groups_predicted=f.groups_predicted,
            passthrough=[] if fatal else passthrough,
            host_gpus=host_gpus,
            sriov=[] if fatal else sorted(sriov_plans, key=lambda s: _key(s.address)),
            kernel_args=ka.args,
            harvester_kernel_args=ka.harvester,
            vfio_ids=[] if fatal else vfio_ids,
            refused=sorted(self.refused.values(), key=lambda r: (r.address is None, _key(r.address) if r.address else ())),
            warnings=list(dict.fromkeys(self.warnings)),
            settings=settings,
            addons=addons,
            claims=bool(enabled and c.harvester.claims and passthrough),
            device_plugins=plugins,
            groups=[] if fatal else binding.group_plans(f, passthrough),
            modules=modules,
        )

    # -- the plan's parts ------------------------------------------------------------
    def passthrough_entries(self) -> list[pm.Passthrough]:
        out = []
        for addr, why in self.selected.items():
            d = self.facts.device(addr)
            out.append(
                pm.Passthrough(
                    address=addr,
                    vendor_id=d.vendor_id or "",
                    device_id=d.device_id or "",
                    iommu_group=d.group,
                    why=why,
                    bind_at_boot=pm.BIND_ADDRESS,
                    kind=d.kind,
                    class_id=d.class_id,
                    group_predicted=d.iommu_group is None,
                    driver=d.driver,
                    module=self.facts.driver_modules.get(d.driver or "", d.driver),
                )
            )
        return out


def blockers(facts: HostFacts, choices: Choices, install: InstallInfo) -> dict[str, tuple[Blocker, ...]]:
    """Why each function cannot go to VMs under these choices (address -> blockers;
    a missing address: it can): exactly what the planner refuses an explicit address
    for. `detect` asks with empty choices. Raises BadInput as make_plan does."""
    return dict(_Planner(facts, choices, install).blocked)


def make_plan(facts: HostFacts, choices: Choices, install: InstallInfo) -> pm.Plan:
    """Decide. Raises BadInput when the config names something this host lacks."""
    plan = _Planner(facts, choices, install).run()
    log.debug("plan: %d passthrough, %d refused", len(plan.passthrough), len(plan.refused))
    return plan
