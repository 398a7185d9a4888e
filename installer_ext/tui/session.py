"""The screen's state without urwid: host facts, install info, the user's `Choices`,
and the plans the planner returned for them.

Nothing here decides what is safe. An edit is a mechanical change of `Choices` (add or
remove an address selector, set an SR-IOV count, flip a switch); the planner then says
what it means: selected, taken with its group, refused with a reason, or bad input.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from installer_ext.config.model import Choices, InstallInfo, Selector, SriovChoice
from installer_ext.config.section import SECTION
from installer_ext.errors import BadInput
from installer_ext.host.model import HostFacts, PciFunction
from installer_ext.plan import model as pm
from installer_ext.plan.planner import blockers, make_plan
from installer_ext.report import short_address

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What an edit did, in words for the message panel."""

    ok: bool
    lines: tuple[str, ...] = ()
    error: bool = False


def renumbered(choices: Choices) -> Choices:
    """The same choices with `path`s that name where each item sits in the section,
    so the planner's messages point at the key the output file will have."""
    devices = tuple(
        dataclasses.replace(s, path=f"{SECTION}.devices[{i}]") for i, s in enumerate(choices.devices)
    )
    host = None
    if choices.host_gpus is not None:
        host = tuple(dataclasses.replace(s, path=f"{SECTION}.hostGpus[{i}]") for i, s in enumerate(choices.host_gpus))
    sriov = tuple(dataclasses.replace(s, path=f"{SECTION}.sriov[{i}]") for i, s in enumerate(choices.sriov))
    return dataclasses.replace(choices, devices=devices, host_gpus=host, sriov=sriov)


def name_of(dev: PciFunction | None, address: str) -> str:
    """`01:00.1 (GA102 High Definition Audio Controller)` for messages."""
    short = short_address(address)
    if dev is None:
        return short
    return f"{short} ({dev.device_name or dev.kind})"


class Session:
    """Facts + install info + choices -> plans. Edits return an `Outcome`."""

    def __init__(self, facts: HostFacts, install: InstallInfo, choices: Choices) -> None:
        self.facts = facts
        self.install = install
        self.choices = renumbered(choices)
        # Problems with the current choices (BadInput lines, or refusals of a pending
        # SR-IOV edit). While there are some, the screen does not go on.
        self.errors: list[str] = []
        self.revision = 0  # bumped whenever what the rows show may have changed
        self._probe_key: object = None
        self.blocked: dict[str, pm.Refusal] | None = None
        self.plan = self._plan(self.choices)  # BadInput here: the config does not fit this host
        self._index()
        self._update_probe()

    # -- asking the planner ----------------------------------------------------------
    def _plan(self, choices: Choices) -> pm.Plan:
        return make_plan(self.facts, choices, self.install)

    def _try(self, choices: Choices) -> tuple[pm.Plan | None, list[str]]:
        try:
            return self._plan(choices), []
        except BadInput as exc:
            return None, list(exc.lines)

    def _index(self) -> None:
        p = self.plan
        self.passthrough = {e.address: e for e in p.passthrough}
        self.host_gpus = set(p.host_gpus)
        self.refused = {r.address: r for r in p.refused if r.address is not None}
        self.group_of = {}
        for g in p.groups:
            for a in g.passthrough:
                self.group_of[a] = g
        self.revision += 1

    def _update_probe(self) -> None:
        """Ask the planner why each function cannot go to VMs under the current SR-IOV
        counts and host GPUs (they block PFs and GPUs), with passthrough on: the same
        blockers it refuses selections for, install-dependent reasons included
        (management NIC, install disk)."""
        key = (self.choices.host_gpus, self.choices.sriov)
        if key == self._probe_key and self.blocked is not None:
            return
        probe = dataclasses.replace(self.choices, enabled=True, devices=())
        found = None
        for attempt in (probe, dataclasses.replace(probe, sriov=()), dataclasses.replace(probe, sriov=(), host_gpus=None)):
            try:
                found = blockers(self.facts, attempt, self.install)
                break
            except BadInput as exc:
                log.debug("probe: %s", exc.lines)
        self._probe_key = key
        self.blocked: dict[str, pm.Refusal] = {}
        self.selectable: set[str] = set()
        if found is not None:
            for addr, bs in found.items():
                self.blocked[addr] = pm.Refusal.of(addr, bs, fatal=False)
            self.selectable = {
                d.address
                for d in self.facts.devices
                if d.address not in self.blocked and d.physfn is None and not d.is_bridge
            }
        self.revision += 1

    def _accept(self, choices: Choices, plan: pm.Plan) -> None:
        self.choices = choices
        self.plan = plan
        self.errors = []
        self._index()
        self._update_probe()

    def _new_fatal(self, plan: pm.Plan) -> list[pm.Refusal]:
        old = {(r.address, r.reason) for r in self.plan.fatal_refusals}
        return [r for r in plan.fatal_refusals if (r.address, r.reason) not in old]

    @staticmethod
    def refusal_line(r: pm.Refusal) -> str:
        return f"{short_address(r.address)}: {r.reason}" if r.address else r.reason

    # -- state -----------------------------------------------------------------------
    def section(self) -> dict:
        """The `pciPassthrough` mapping to write."""
        return self.choices.to_section()

    def problems(self) -> list[str]:
        """Why the screen cannot go on now (empty: it can)."""
        if self.errors:
            return list(self.errors)
        return [self.refusal_line(r) for r in self.plan.fatal_refusals]

    def sriov_choice(self, address: str) -> SriovChoice | None:
        return next((s for s in self.choices.sriov if s.address == address), None)

    def sriov_plan(self, address: str) -> pm.SriovPlan | None:
        return next((s for s in self.plan.sriov if s.address == address), None)

    # -- edits -----------------------------------------------------------------------
    def _switch(self, choices: Choices, what: str) -> Outcome:
        choices = renumbered(choices)
        plan, errors = self._try(choices)
        if plan is None:
            return Outcome(False, tuple(errors), error=True)
        fresh = self._new_fatal(plan)
        if fresh:
            return Outcome(False, (f"{what}: refused",) + tuple(self.refusal_line(r) for r in fresh), error=True)
        self._accept(choices, plan)
        return Outcome(True)

    def set_enabled(self, on: bool) -> Outcome:
        return self._switch(dataclasses.replace(self.choices, enabled=on), "Enable PCI passthrough")

    def set_gpu_drivers(self, on: bool) -> Outcome:
        return self._switch(dataclasses.replace(self.choices, gpu_drivers=on), "Install GPU drivers / device plugin")

    def set_allow_unsafe(self, on: bool) -> Outcome:
        return self._switch(dataclasses.replace(self.choices, allow_unsafe_interrupts=on), "Allow unsafe interrupts")

    def toggle(self, address: str) -> Outcome:
        """Space on a function: give it to VMs (with its group), or take it back."""
        dev = self.facts.device(address)
        if address in self.passthrough:
            return self._deselect(address)
        if any(sel.address == address for sel in self.choices.devices):
            # Named by the config but refused (or ignored while passthrough is off):
            # Space takes it out of the selection.
            kept = tuple(sel for sel in self.choices.devices if sel.address != address)
            out = self._switch(dataclasses.replace(self.choices, devices=kept), f"Removing {short_address(address)}")
            if out.ok:
                return Outcome(True, (f"{name_of(dev, address)} taken out of the selection.",))
            return out
        if not self.choices.enabled:
            return Outcome(False, ("Turn on \"Enable PCI passthrough\" first (the switch at the top).",), error=True)
        if dev is not None and dev.physfn is not None:
            return Outcome(
                False,
                (
                    f"{short_address(address)} is a VF: VFs are created again at every boot from the count set on "
                    f"their physical function {short_address(dev.physfn)} (VFs at boot).",
                ),
                error=True,
            )
        choices = renumbered(
            dataclasses.replace(self.choices, devices=self.choices.devices + (Selector(address=address),))
        )
        plan, errors = self._try(choices)
        if plan is None:
            return Outcome(False, tuple(errors), error=True)
        fresh = self._new_fatal(plan)
        if fresh:
            mine = [r for r in fresh if r.address == address]
            if mine:
                lines = [f"{name_of(dev, address)} cannot be given to VMs: {mine[0].reason}"]
            else:
                lines = [f"{name_of(dev, address)} cannot be given to VMs:"] + [self.refusal_line(r) for r in fresh]
            return Outcome(False, tuple(lines), error=True)
        before = set(self.passthrough)
        self._accept(choices, plan)
        mates = [
            e.address for e in plan.passthrough if e.address not in before and e.address != address and e.why == pm.WHY_SAME_GROUP
        ]
        group = self.group_of.get(address)
        line = f"{name_of(dev, address)} goes to VMs (vfio-pci)"
        if mates:
            gid = "?" if group is None or group.id is None else str(group.id)
            pred = " (predicted)" if group is not None and group.predicted else ""
            line += f", with its whole IOMMU group {gid}{pred}: " + ", ".join(
                name_of(self.facts.device(a), a) for a in mates
            )
        return Outcome(True, (line + ".",))

    def _deselect(self, address: str) -> Outcome:
        entry = self.passthrough[address]
        dev = self.facts.device(address)
        if entry.why == pm.WHY_SRIOV_VF:
            return Outcome(
                False,
                (f"{short_address(address)} is a VF of {short_address(entry.vf_of or '')}: change its VFs at boot there.",),
                error=True,
            )
        group = self.group_of.get(address)
        members = set(group.devices) | set(group.passthrough) if group is not None else {address}
        kept = tuple(s for s in self.choices.devices if s.address is None or s.address not in members)
        choices = renumbered(dataclasses.replace(self.choices, devices=kept))
        plan, errors = self._try(choices)
        if plan is None:
            return Outcome(False, tuple(errors), error=True)
        lines: list[str] = []
        if any(e.address == address for e in plan.passthrough):
            # Taken by an id or kind selector of the config: replace those selectors by
            # the addresses they chose, less this group.
            broad = [s for s in kept if s.address is None]
            addressed = {s.address for s in kept if s.address is not None}
            extra = tuple(
                Selector(address=e.address)
                for e in self.plan.passthrough
                if e.why == pm.WHY_SELECTED and e.address not in members and e.address not in addressed
            )
            choices = renumbered(
                dataclasses.replace(self.choices, devices=tuple(s for s in kept if s.address is not None) + extra)
            )
            plan, errors = self._try(choices)
            if plan is None:
                return Outcome(False, tuple(errors), error=True)
            named = ", ".join(s.describe() for s in broad)
            if len(broad) == 1:
                lines.append(f"The selector {named} was replaced by the addresses it matched, to leave this group out.")
            else:
                lines.append(f"The selectors {named} were replaced by the addresses they matched, to leave this group out.")
        before = [a for a in (group.passthrough if group is not None else ()) if a != address]
        self._accept(choices, plan)
        line = f"{name_of(dev, address)} stays on the host"
        if before:
            line += ", with its IOMMU group: " + ", ".join(name_of(self.facts.device(a), a) for a in before)
        lines.insert(0, line + ".")
        return Outcome(True, tuple(lines))

    def set_sriov(self, address: str, num_vfs: int | None, to_vfio: bool) -> Outcome:
        """Set (or, with None, drop) the SR-IOV entry of a PF. A value the planner
        rejects stays in the choices, with its error, until it is corrected."""
        rest = [s for s in self.choices.sriov if s.address != address]
        if num_vfs is not None:
            pos = next((i for i, s in enumerate(self.choices.sriov) if s.address == address), len(rest))
            rest.insert(pos, SriovChoice(address=address, num_vfs=num_vfs, vfs_to_vfio=to_vfio))
        choices = renumbered(dataclasses.replace(self.choices, sriov=tuple(rest)))
        if choices == self.choices and not self.errors:
            return Outcome(True)
        plan, errors = self._try(choices)
        if plan is None:
            self.choices = choices
            self.errors = errors
            self.revision += 1
            return Outcome(False, tuple(errors), error=True)
        fresh = self._new_fatal(plan)
        if fresh:
            self.choices = choices
            self.errors = [self.refusal_line(r) for r in fresh]
            self.revision += 1
            return Outcome(False, tuple(self.errors), error=True)
        self._accept(choices, plan)
        sp = self.sriov_plan(address)
        if sp is None:
            if num_vfs is None:
                return Outcome(True, (f"{short_address(address)}: VFs left as the host has them.",))
            return Outcome(True, (f"{short_address(address)}: VFs are ignored while PCI passthrough is off.",))
        dest = "to vfio-pci for VMs" if sp.vfs_to_vfio else "on the host driver"
        return Outcome(True, (f"{short_address(address)}: {sp.num_vfs} of {sp.total_vfs} VFs at every boot, {dest}.",))
