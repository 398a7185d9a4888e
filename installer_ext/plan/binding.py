"""How the node finds the plan's functions at boot: by id or by address, and what the
binder may meet in each IOMMU group."""

from __future__ import annotations

from installer_ext.host.address import address_sort_key
from installer_ext.host.model import HostFacts
from installer_ext.plan import model as pm


def _ids(p: pm.Passthrough) -> str:
    return f"{p.vendor_id}:{p.device_id}"


def boot_binding(facts: HostFacts, passthrough: list[pm.Passthrough]) -> tuple[list[pm.Passthrough], list[str]]:
    """(entries with `bind_at_boot` set, the vendor:device ids bound by id). By id only
    when every function with those ids, now or as a planned VF, is passed through, and
    never for VFs (they appear after the modules load); otherwise by address."""
    passed = {p.address for p in passthrough}
    # Who has each id now. Every entry but a planned VF is a function of `facts`, so it
    # is among its id's holders; planned VFs are never bound by id (below).
    holders: dict[str, set[str]] = {}
    for d in facts.devices:
        if d.ids:
            holders.setdefault(d.ids, set()).add(d.address)
    vf_ids = {_ids(q) for q in passthrough if q.why == pm.WHY_SRIOV_VF}
    ids_ok = {
        _ids(p)
        for p in passthrough
        if p.why != pm.WHY_SRIOV_VF and holders[_ids(p)] <= passed and _ids(p) not in vf_ids
    }
    out = [
        pm.Passthrough(**{**p.__dict__, "bind_at_boot": pm.BIND_IDS if _ids(p) in ids_ok else pm.BIND_ADDRESS})
        for p in passthrough
    ]
    return out, sorted(ids_ok)


def group_plans(facts: HostFacts, passthrough: list[pm.Passthrough]) -> list[pm.GroupPlan]:
    """Each IOMMU group the plan touches: its functions at plan time, the ones bound,
    the ones left as they are (bridges). VFs that do not exist yet are checked at boot."""
    by_group: dict[tuple, list[str]] = {}
    for p in passthrough:
        d = facts.device(p.address)
        if d is not None:
            by_group.setdefault((d.group is None, d.group), []).append(p.address)
    out = []
    for (_, gid), addrs in sorted(by_group.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        first = facts.device(addrs[0])
        members = facts.group_members(first)
        out.append(
            pm.GroupPlan(
                id=gid,
                predicted=first.iommu_group is None,
                devices=tuple(sorted((m.address for m in members), key=address_sort_key)),
                passthrough=tuple(sorted(addrs, key=address_sort_key)),
                left=tuple(sorted((m.address for m in members if m.address not in addrs), key=address_sort_key)),
            )
        )
    return out
