"""Random edits of a plan's JSON, as a person (or an attacker) editing plan.json would
make them: the generators of the hand-edited-plan property tests (tests/test_bind_handedit_fuzz.py,
tests/test_planfile.py)."""

from __future__ import annotations

import copy
import json

from hypothesis import strategies as st

HOSTILE_ADDRESSES = [
    "../", "0000:00:17.0/../../x", "0000:01:00.0\n", "0000:01:00.0\x00", "01:00.0", "0000:01:00.0 ",
    "0000:01:00.8", "0000:01:00.0/driver", "/sys/bus/pci/devices/0000:00:17.0", "0000:zz:00.0",
]
HOSTILE_VALUES = [
    None, True, False, 0, -1, 2**64, 2**31, 1.5, "", "x" * 5000, [], {}, {"a": 1}, [None], "\n", "ids", "address",
    "vfio-pci", "../../x", "nvidia\n", "0000", 65536, -2**63,
]


def paths_of(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths_of(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths_of(v, (*prefix, i))


def _get(doc, path):
    for p in path:
        doc = doc[p]
    return doc


def _parent(doc, path):
    return _get(doc, path[:-1])


BREAKING = ["set", "unknown-key", "delete", "duplicate", "hostile-address", "deep", "swap-lists"]
# Edits that keep the file valid against the schema, so that the binder itself meets them.
VALID = ["needed", "needed", "host-device", "group-lie", "enum", "reorder", "drop"]


def _entry(address: str, ids: str, driver: str | None, bind: str) -> dict:
    vendor, device = ids.split(":")
    return {"address": address, "vendor_id": vendor, "device_id": device, "iommu_group": None,
            "why": "selected", "bind_at_boot": bind, "kind": "other", "class_id": None,
            "group_predicted": True, "vf_of": None, "driver": driver, "module": None}


def edit(data, doc, needed: dict[str, tuple[str, str | None]], devices: dict[str, tuple[str, str | None]] | None = None,
         valid: bool = False) -> None:
    """One random edit of `doc` in place. `needed`: address -> (vendor:device, driver) of
    the functions the host needs; `devices`: the same for every function of the machine.
    `valid`: only edits that keep the file valid against the schema."""
    devices = devices or needed
    kind = data.draw(st.sampled_from(VALID if valid else BREAKING + VALID))
    paths = [p for p in paths_of(doc) if p]
    if not paths:
        return
    pt_list = doc.get("passthrough") if isinstance(doc.get("passthrough"), list) else None
    if kind == "set":
        path = data.draw(st.sampled_from(paths))
        _parent(doc, path)[path[-1]] = data.draw(st.sampled_from(HOSTILE_VALUES + HOSTILE_ADDRESSES))
    elif kind == "unknown-key":
        objs = [p for p in paths_of(doc) if isinstance(_get(doc, p), dict)]
        target = _get(doc, data.draw(st.sampled_from(objs)))
        target[data.draw(st.sampled_from(["adress", "x\ny", "../", "", "enabeld", "passthru"]))] = 1
    elif kind == "delete":
        path = data.draw(st.sampled_from(paths))
        parent = _parent(doc, path)
        del parent[path[-1]]
    elif kind == "duplicate":
        name = data.draw(st.sampled_from(["passthrough", "groups", "sriov", "host_gpus", "kernel_args"]))
        if isinstance(doc.get(name), list) and doc[name]:
            doc[name].append(copy.deepcopy(data.draw(st.sampled_from(doc[name]))))
    elif kind in ("needed", "host-device"):
        # A function of the machine (one the host needs, or any), written in as a clean
        # entry with its real ids, instead of an entry or next to them.
        table = needed if kind == "needed" else devices
        address = data.draw(st.sampled_from(sorted(table)))
        ids, driver = table[address]
        if pt_list is not None and not any(isinstance(p, dict) and p.get("address") == address for p in pt_list):
            entry = _entry(address, ids, driver, data.draw(st.sampled_from(["ids", "address"])))
            if pt_list and data.draw(st.booleans()):
                pt_list[data.draw(st.integers(0, len(pt_list) - 1))] = entry
            else:
                pt_list.append(entry)
        if isinstance(doc.get("groups"), list) and data.draw(st.booleans()):
            doc["groups"].append({"id": None, "predicted": True, "devices": [address], "passthrough": [address],
                                  "left": []})
        if data.draw(st.booleans()) and isinstance(doc.get("vfio_ids"), list):
            doc["vfio_ids"].append(ids)
    elif kind == "group-lie":
        # A group that says a function the host needs is "left as is" or passed.
        groups = doc.get("groups")
        if isinstance(groups, list) and groups and isinstance(groups[0], dict):
            g = groups[data.draw(st.integers(0, len(groups) - 1))]
            name = data.draw(st.sampled_from(["devices", "passthrough", "left"]))
            if isinstance(g, dict) and isinstance(g.get(name), list):
                g[name].append(data.draw(st.sampled_from(sorted(needed))))
    elif kind == "enum":
        if pt_list:
            p = pt_list[data.draw(st.integers(0, len(pt_list) - 1))]
            if isinstance(p, dict):
                key, values = data.draw(st.sampled_from([("bind_at_boot", ["ids", "address"]),
                                                         ("why", ["selected", "same-group", "sriov-vf"]),
                                                         ("group_predicted", [True, False])]))
                p[key] = data.draw(st.sampled_from(values))
    elif kind == "reorder":
        if pt_list:
            order = data.draw(st.permutations(range(len(pt_list))))
            pt_list[:] = [pt_list[i] for i in order]
    elif kind == "drop":
        if pt_list:
            del pt_list[data.draw(st.integers(0, len(pt_list) - 1))]
    elif kind == "hostile-address":
        addr_paths = [p for p in paths if isinstance(_parent(doc, p)[p[-1]], str)
                      and (p[-1] in ("address", "vf_of") or isinstance(p[-1], int))]
        if addr_paths:
            path = data.draw(st.sampled_from(addr_paths))
            _parent(doc, path)[path[-1]] = data.draw(st.sampled_from(HOSTILE_ADDRESSES))
    elif kind == "deep":
        path = data.draw(st.sampled_from(paths))
        value: object = 1
        for _ in range(data.draw(st.integers(10, 40))):
            value = [value]
        _parent(doc, path)[path[-1]] = value
    elif kind == "swap-lists":
        a, b = data.draw(st.sampled_from([("passthrough", "groups"), ("host_gpus", "passthrough"),
                                          ("settings", "addons"), ("sriov", "refused")]))
        doc[a], doc[b] = doc.get(b), doc.get(a)


DAMAGES = ("digits", "brackets", "duplicate-key", "nan", "truncate", "bom", "nul")


def damaged(out: str, damage: str, cut: int = 0) -> str:
    """`out` (a plan's JSON) damaged as text: a 5000-digit number, 100000 brackets, a key
    given twice, NaN, cut short at `cut`, a byte order mark, a NUL in a key."""
    if damage == "digits":
        return out.replace('"version": 1', '"version": 1' + "0" * 5000, 1)
    if damage == "brackets":
        return "[" * 100000 + out
    if damage == "duplicate-key":
        return out.replace("{", '{"enabled": false, ', 1)
    if damage == "nan":
        return out.replace('"version": 1', '"version": NaN', 1)
    if damage == "truncate":
        return out[:cut]
    if damage == "bom":
        return "\ufeff" + out
    if damage == "nul":
        return out.replace('"enabled"', '"en\\u0000abled"', 1)
    return out


def text(data, doc, damage: bool = True) -> str:
    """The document as JSON, sometimes damaged as text (never when `damage` is False)."""
    out = json.dumps(doc, indent=data.draw(st.sampled_from([None, 1])))
    if not damage:
        return out
    damage = data.draw(st.sampled_from(("none",) + DAMAGES))
    return damaged(out, damage, data.draw(st.integers(0, max(0, len(out) - 1))))
