"""The planner: (host facts, choices, install info) -> Plan. Pure: no I/O, no clock;
the same inputs always give the same Plan (everything sorted by address).

It is the only place that decides. Rules (DESIGN.md, safety policy):
- blocked: boot VGA, management NICs, install/data disk controllers, bridges, SR-IOV
  PFs (with VFs now or asked for), unreadable devices, and their group-mates;
- an explicit address on a blocked device refuses the plan; id/kind selectors skip
  blocked devices with a warning;
- a selection takes its whole IOMMU group (real or predicted);
- no IOMMU: any passthrough request is refused; no interrupt remapping: refused unless
  allowUnsafeInterrupts;
- bind at boot by ids only when every function with those ids is passed through.
"""

from __future__ import annotations

import logging

from installer_ext.config.model import Choices, InstallInfo, Selector
from installer_ext.errors import BadInput
from installer_ext.host import blockers as hb
from installer_ext.host import model as hm
from installer_ext.host.address import address_sort_key, vf_address
from installer_ext.host.groups import vf_isolated
from installer_ext.host.model import Blocker, HostFacts, PciFunction
from installer_ext.plan import model as pm
from installer_ext.plan.install_blockers import install_blockers, unknown_install
from installer_ext.plan.kernel_args import kernel_args
from installer_ext.plan.quirks import amd_reset_family

log = logging.getLogger(__name__)

GPU_VENDORS = {"10de": "nvidia", "1002": "amd"}
SETTING_PCI = "pci-pt-enable"
SETTING_GPU = "gpu-enable"
ADDON_PCIDEVICES = "pcidevices-controller"


def _key(address: str):
    return address_sort_key(address)


class _Planner:
    def __init__(self, facts: HostFacts, choices: Choices, install: InstallInfo) -> None:
        self.facts = facts
        self.choices = choices
        self.install = install
        self.warnings: list[str] = []
        self.refused: dict[str, pm.Refusal] = {}
        self.selected: dict[str, str] = {}  # address -> why
        self.blockers: dict[str, list[Blocker]] = {}

    # -- blockers ------------------------------------------------------------------
    def compute_blockers(self, host_gpu_seeds: set[str]) -> None:
        seeds: dict[str, list[Blocker]] = {}
        for d in self.facts.devices:
            seeds[d.address] = hb.intrinsic(d, self.facts.iommu)
        extra = install_blockers(self.facts, self.install)
        for addr, bs in unknown_install(self.facts, self.install).items():
            extra.setdefault(addr, []).extend(bs)
        for s in self.choices.sriov if self.choices.enabled else ():
            dev = self.facts.device(s.address)
            if dev is not None and s.num_vfs > 0 and not any(b.code == hm.BLOCK_SRIOV_PF for b in seeds[dev.address]):
                extra.setdefault(dev.address, []).append(
                    Blocker(hm.BLOCK_SRIOV_PF, f"SR-IOV physical function, {s.num_vfs} VFs asked: stays on its host driver")
                )
        for addr in host_gpu_seeds:
            extra.setdefault(addr, []).append(Blocker(hm.BLOCK_HOST_GPU, "kept on the host for containers (hostGpus)"))
        for addr, bs in extra.items():
            if addr in seeds:
                seeds[addr] = seeds[addr] + bs
        self.blockers = hb.spread(self.facts.devices, seeds, self.facts.group_members)

    def blocked(self, dev: PciFunction) -> list[Blocker]:
        return self.blockers.get(dev.address, [])

    # -- selectors -----------------------------------------------------------------
    def resolve(self, sel: Selector, purpose: str) -> list[PciFunction]:
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

    def refuse(self, dev: PciFunction, reasons: list[Blocker], fatal: bool, sel: Selector) -> None:
        text = "; ".join(b.reason for b in reasons)
        code = reasons[0].code if reasons else ""
        by = reasons[0].by if reasons else None
        prev = self.refused.get(dev.address)
        if prev is None or (fatal and not prev.fatal):
            self.refused[dev.address] = pm.Refusal(dev.address, text, code, fatal=fatal, by=by)
        if not fatal:
            self.warnings.append(f"{sel.path}: skipped {dev.address}: {text}")

    # -- main ------------------------------------------------------------------------
    def run(self) -> pm.Plan:
        c = self.choices
        f = self.facts
        enabled = c.enabled
        if not enabled and (c.devices or c.sriov):
            self.warnings.append("pciPassthrough.enabled is false: devices and sriov are ignored")

        for s in c.sriov:
            self.check_sriov(s)
        explicit_host = set()
        if c.host_gpus is not None:
            for sel in c.host_gpus:
                for d in self.resolve(sel, "host"):
                    if d.kind != "gpu":
                        if sel.address is not None:
                            raise BadInput(f"{sel.path}: {d.address} is a {d.kind}, not a GPU")
                        continue
                    explicit_host.add(d.address)
        self.compute_blockers(explicit_host if enabled else set())

        for sel in c.devices if enabled else ():
            explicit = sel.address is not None
            if explicit and sel.address in explicit_host:
                raise BadInput(f"{sel.path}: {sel.address} is also listed in pciPassthrough.hostGpus")
            for d in self.resolve(sel, "vm"):
                bs = self.blocked(d)
                if bs:
                    self.refuse(d, bs, fatal=explicit, sel=sel)
                    continue
                self.selected.setdefault(d.address, pm.WHY_SELECTED)
                if explicit:
                    self.selected[d.address] = pm.WHY_SELECTED

        # Whole groups.
        groups: dict[int | None, list[PciFunction]] = {}
        for addr in sorted(self.selected, key=_key):
            dev = f.device(addr)
            for mate in f.group_members(dev):
                if mate.address == addr or mate.address in self.selected:
                    continue
                if self._left_alone(mate):
                    continue
                self.selected[mate.address] = pm.WHY_SAME_GROUP
        for addr in self.selected:
            groups.setdefault(f.device(addr).group, []).append(f.device(addr))

        # SR-IOV.
        sriov_plans: list[pm.SriovPlan] = []
        vf_entries: list[pm.Passthrough] = []
        for s in c.sriov if enabled else ():
            sp, vfs = self.plan_sriov(s)
            if sp is not None:
                sriov_plans.append(sp)
                vf_entries += vfs

        # Global refusals.
        requested = bool(self.selected or vf_entries)
        if enabled and f.iommu.state == "absent":
            reason = "no IOMMU on this host (no DMAR or IVRS table): enable VT-d / AMD-Vi in the firmware"
            for addr in list(self.selected) or [None]:
                self.refused[addr or "host"] = pm.Refusal(addr, reason, hm.BLOCK_NO_IOMMU, fatal=True)
            self.selected.clear()
            vf_entries = []
        elif enabled and f.iommu.interrupt_remapping is False and f.iommu.state == "enabled":
            if c.allow_unsafe_interrupts:
                self.warnings.append(
                    "no interrupt remapping: allowUnsafeInterrupts lets VMs use passed devices, but a device "
                    "can then inject interrupts into the host (unsafe)"
                )
            elif requested:
                reason = "no interrupt remapping: vfio refuses devices without it (set allowUnsafeInterrupts to accept the risk)"
                for addr in list(self.selected) + [v.address for v in vf_entries]:
                    self.refused[addr] = pm.Refusal(addr, reason, "no-interrupt-remapping", fatal=True)
                self.selected.clear()
                vf_entries = []
        elif enabled and f.iommu.interrupt_remapping is None and requested:
            self.warnings.append("interrupt remapping could not be read: vfio will refuse devices if it is off")
        if enabled and f.iommu.state == "available":
            self.warnings.append(
                "the IOMMU is off in the installer's kernel: groups are predicted from the topology "
                "and checked again on the installed system before anything is bound"
            )
        if enabled and not f.cpu.virtualization:
            self.warnings.append(
                "no CPU virtualization seen (no vmx/svm flag, no /dev/kvm): enable it in the firmware or VMs will not start"
            )
        if enabled and f.cpu.vendor == "other":
            self.warnings.append("unknown CPU vendor: no IOMMU kernel arguments are added")

        passthrough = self.passthrough_entries() + vf_entries
        passthrough.sort(key=lambda p: _key(p.address))
        passthrough, vfio_ids = self.boot_binding(passthrough)
        self.device_warnings(passthrough)

        host_gpus = self.host_gpus(passthrough, explicit_host) if c.gpu_drivers else []
        plugins = self.device_plugins(host_gpus) if c.gpu_drivers else []

        settings: dict[str, str] = {}
        if c.harvester.settings:
            settings = {SETTING_PCI: str(enabled).lower(), SETTING_GPU: str(c.gpu_drivers).lower()}
        addons = {ADDON_PCIDEVICES: enabled} if c.harvester.addon else {}
        fatal = [r for r in self.refused.values() if r.fatal]
        modules = ["vfio-pci", "vfio_iommu_type1"] if enabled and passthrough else []
        plan = pm.Plan(
            enabled=enabled,
            gpu_drivers=c.gpu_drivers,
            cpu_vendor=f.cpu.vendor,
            iommu_state=f.iommu.state,
            groups_predicted=f.groups_predicted,
            passthrough=[] if fatal else passthrough,
            host_gpus=host_gpus,
            sriov=[] if fatal else sorted(sriov_plans, key=lambda s: _key(s.address)),
            kernel_args=kernel_args(
                f.cpu.vendor, enabled and f.iommu.state != "absent", c.allow_unsafe_interrupts, c.extra_kernel_args
            ),
            vfio_ids=[] if fatal else vfio_ids,
            refused=sorted(self.refused.values(), key=lambda r: (r.address is None, _key(r.address) if r.address else ())),
            warnings=list(dict.fromkeys(self.warnings)),
            settings=settings,
            addons=addons,
            claims=bool(enabled and c.harvester.claims and passthrough),
            device_plugins=plugins,
            groups=[] if fatal else self.group_plans(passthrough),
            modules=modules,
        )
        return plan

    @staticmethod
    def _left_alone(mate: PciFunction) -> bool:
        """Group-mates that stay as they are: PCI-to-PCI bridges, driverless bridges."""
        return mate.pci_bridge or (mate.is_bridge and mate.driver is None)

    def check_sriov(self, s) -> PciFunction:
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

    def plan_sriov(self, s) -> tuple[pm.SriovPlan | None, list[pm.Passthrough]]:
        f = self.facts
        dev = self.check_sriov(s)
        pf_blockers = [b for b in self.blocked(dev) if b.code not in (hm.BLOCK_SRIOV_PF, hm.BLOCK_MGMT_NIC, hm.BLOCK_SAME_GROUP)]
        if any(b.code in (hm.BLOCK_UNKNOWN,) for b in pf_blockers):
            raise BadInput(f"{s.path}.address: {s.address} could not be read in sysfs")
        vf_dev_id = dev.sriov.vf_device_id or dev.device_id or ""
        vfs: list[str] = []
        if dev.virtfns and len(dev.virtfns) == s.num_vfs:
            vfs = list(dev.virtfns)
        elif dev.sriov.offset is not None and dev.sriov.stride is not None:
            for n in range(s.num_vfs):
                a = vf_address(dev.address, dev.sriov.offset, dev.sriov.stride, n)
                if a is not None:
                    vfs.append(a)
        entries: list[pm.Passthrough] = []
        if s.vfs_to_vfio and s.num_vfs:
            if len(vfs) != s.num_vfs:
                self.refused[dev.address] = pm.Refusal(
                    dev.address, "VF addresses cannot be worked out (no sriov_offset/sriov_stride)", "sriov", fatal=True
                )
                return None, []
            if not vf_isolated(f.devices, dev):
                self.refused[dev.address] = pm.Refusal(
                    dev.address,
                    "its VFs would share an IOMMU group with the PF (no ACS above it): they cannot go to VMs",
                    hm.BLOCK_SAME_GROUP,
                    fatal=True,
                )
                return None, []
            for a in vfs:
                existing = f.device(a)
                if existing is not None and existing.physfn == dev.address:
                    bs = [b for b in self.blocked(existing) if b.code != hm.BLOCK_NO_IOMMU]
                    if bs:
                        self.refused[a] = pm.Refusal(a, "; ".join(b.reason for b in bs), bs[0].code, fatal=True)
                        continue
                entries.append(
                    pm.Passthrough(
                        address=a,
                        vendor_id=dev.vendor_id or "",
                        device_id=vf_dev_id,
                        iommu_group=existing.group if existing is not None else None,
                        why=pm.WHY_SRIOV_VF,
                        bind_at_boot=pm.BIND_ADDRESS,
                        kind=dev.kind,
                        class_id=dev.class_id,
                        group_predicted=existing is None or existing.iommu_group is None,
                        vf_of=dev.address,
                        driver=existing.driver if existing is not None else None,
                    )
                )
        sp = pm.SriovPlan(
            address=dev.address,
            num_vfs=s.num_vfs,
            vfs_to_vfio=s.vfs_to_vfio,
            vendor_id=dev.vendor_id or "",
            device_id=dev.device_id or "",
            total_vfs=dev.sriov.total_vfs,
            vf_device_id=vf_dev_id,
            vfs=tuple(vfs),
        )
        return sp, entries

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

    def boot_binding(self, passthrough: list[pm.Passthrough]) -> tuple[list[pm.Passthrough], list[str]]:
        """ids when every function with those ids (now, or as a planned VF) is passed."""
        passed = {p.address for p in passthrough}
        holders: dict[str, set[str]] = {}
        for d in self.facts.devices:
            if d.ids:
                holders.setdefault(d.ids, set()).add(d.address)
        for p in passthrough:
            holders.setdefault(f"{p.vendor_id}:{p.device_id}", set()).add(p.address)
        ids_ok = set()
        for p in passthrough:
            ids = f"{p.vendor_id}:{p.device_id}"
            if p.why != pm.WHY_SRIOV_VF and holders[ids] <= passed and not any(
                q.why == pm.WHY_SRIOV_VF and f"{q.vendor_id}:{q.device_id}" == ids for q in passthrough
            ):
                ids_ok.add(ids)
        out = [
            pm.Passthrough(**{**p.__dict__, "bind_at_boot": pm.BIND_IDS if f"{p.vendor_id}:{p.device_id}" in ids_ok else pm.BIND_ADDRESS})
            for p in passthrough
        ]
        return out, sorted(ids_ok)

    def device_warnings(self, passthrough: list[pm.Passthrough]) -> None:
        for p in passthrough:
            family = amd_reset_family(p.vendor_id, p.device_id)
            if family:
                self.warnings.append(
                    f"{p.address}: AMD {family} GPUs do not reset cleanly; a VM may hang on its second start "
                    "until the host reboots (the vendor-reset module helps)"
                )
            d = self.facts.device(p.address)
            if d is not None and d.resettable is False:
                self.warnings.append(f"{p.address}: the kernel knows no reset method for it; VM restarts may fail")

    def host_gpus(self, passthrough: list[pm.Passthrough], explicit: set[str]) -> list[str]:
        passed = {p.address for p in passthrough}
        if self.choices.host_gpus is not None:
            return sorted((a for a in explicit if a not in passed), key=_key)
        return sorted(
            (
                d.address
                for d in self.facts.devices
                if d.kind == "gpu" and d.vendor_id in GPU_VENDORS and d.address not in passed and d.physfn is None
            ),
            key=_key,
        )

    def device_plugins(self, host_gpus: list[str]) -> list[str]:
        wanted = self.choices.device_plugin
        vendors = sorted({GPU_VENDORS[self.facts.device(a).vendor_id] for a in host_gpus if self.facts.device(a).vendor_id in GPU_VENDORS})
        if wanted == "none":
            return []
        if wanted == "auto":
            if not vendors:
                self.warnings.append("gpuDrivers is on but no NVIDIA or AMD GPU stays on the host: no device plugin")
            return vendors
        if wanted not in vendors:
            self.warnings.append(f"devicePlugin {wanted}: no {wanted.upper()} GPU stays on the host")
        return [wanted]

    def group_plans(self, passthrough: list[pm.Passthrough]) -> list[pm.GroupPlan]:
        f = self.facts
        by_group: dict[tuple, list[str]] = {}
        for p in passthrough:
            d = f.device(p.address)
            if d is None:
                continue  # a VF that does not exist yet: checked at boot
            by_group.setdefault((d.group is None, d.group), []).append(p.address)
        out = []
        for (_, gid), addrs in sorted(by_group.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
            members = f.group_members(f.device(addrs[0]))
            out.append(
                pm.GroupPlan(
                    id=gid,
                    predicted=f.device(addrs[0]).iommu_group is None,
                    devices=tuple(sorted((m.address for m in members), key=_key)),
                    passthrough=tuple(sorted(addrs, key=_key)),
                    left=tuple(sorted((m.address for m in members if m.address not in addrs), key=_key)),
                )
            )
        return out


def blockers(facts: HostFacts, choices: Choices, install: InstallInfo) -> dict[str, list[Blocker]]:
    """Why each function cannot go to VMs under these choices (address -> blockers;
    an empty or missing list: it can). The intrinsic reasons, the install config's
    (management NIC, disks, or their possible candidates while unknown), the PFs asked
    for VFs and the GPUs kept for the host, spread to their IOMMU group-mates: what the
    planner itself refuses selections for. Raises BadInput as make_plan does."""
    p = _Planner(facts, choices, install)
    explicit_host = set()
    if choices.host_gpus is not None:
        for sel in choices.host_gpus:
            explicit_host.update(d.address for d in p.resolve(sel, "host") if d.kind == "gpu")
    p.compute_blockers(explicit_host if choices.enabled else set())
    return {addr: bs for addr, bs in p.blockers.items() if bs}


def make_plan(facts: HostFacts, choices: Choices, install: InstallInfo) -> pm.Plan:
    """Decide. Raises BadInput when the config names something this host lacks."""
    plan = _Planner(facts, choices, install).run()
    log.debug("plan: %d passthrough, %d refused", len(plan.passthrough), len(plan.refused))
    return plan
