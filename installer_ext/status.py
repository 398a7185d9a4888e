"""What the install did and what this boot shows, in one place (`installer-ext status`,
whose face is installer_ext/commands/status.py).

Reads, under a root (default /), each only if present:
- the install record (render/record.py, written with every outcome of the install hook)
  and whether the rendered set is complete (its manifest, render/manifest.py);
- first boot: the firstboot summary `status.json` in its state dir when present, else
  its step records (`steps/<step>.json`) and the `done` marker, else "has not run";
- the binder's per-boot `bind-status.json` (boot/record.py);
- the kernel-args keeper's per-boot `kernel-args.json` ("not checked this boot" when
  absent);
- on a server node, the reconciler's last pass (`reconcile.json` in first boot's state
  dir, firstboot/cluster.py): the nodes whose requests it carried out.
`--json` prints the same as one object. Reading never fails the command: an unreadable
file is reported as such.
"""

from __future__ import annotations

import json
import os
from typing import Any

from installer_ext import paths
from installer_ext.render import manifest
from installer_ext.render.record import InstallRecord

MAX_BYTES = 1 << 20


def _read_json(path: str) -> tuple[Any, str | None]:
    """(document, None), or (None, why) when missing or unreadable."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        return None, "missing"
    except OSError as exc:
        return None, f"unreadable ({exc.strerror or exc})"
    if len(data) > MAX_BYTES:
        return None, "too large"
    try:
        return json.loads(data.decode("utf-8")), None
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None, "not valid JSON"


def install_status(root: str) -> dict[str, Any]:
    doc, why = _read_json(paths.under(root, paths.INSTALL_STATUS_FILE))
    record = InstallRecord.from_json(doc) if why is None else None
    check = manifest.verify(paths.Target(root=root))
    out: dict[str, Any] = {"record": record.to_json() if record else None,
                           "set": {"complete": check.complete, "problems": list(check.problems), "has_plan": check.names_plan}}
    if record is None:
        out["note"] = "no install record" if why == "missing" else f"install record {why or 'not a version-1 record'}"
    return out


def firstboot_status(root: str) -> dict[str, Any]:
    state = paths.under(root, paths.FIRSTBOOT_STATE_DIR)
    summary, why = _read_json(os.path.join(state, "status.json"))
    if why is None and isinstance(summary, dict):
        return {"source": "status.json", **summary}
    steps = []
    steps_dir = os.path.join(state, "steps")
    try:
        names = sorted(n for n in os.listdir(steps_dir) if n.endswith(".json"))
    except OSError:
        names = []
    for n in names:
        rec, _ = _read_json(os.path.join(steps_dir, n))
        if isinstance(rec, dict):
            steps.append({"name": rec.get("step", n[:-5]), "status": rec.get("status"),
                          "reason": (rec.get("result") or {}).get("reason") if isinstance(rec.get("result"), dict) else None,
                          "at": rec.get("at")})
    done = os.path.exists(os.path.join(state, "done"))
    if not steps and not done:
        return {"source": None, "state": "not-run", "steps": [], "message": "first boot has not run"}
    failed = [s for s in steps if s["status"] == "failed"]
    return {"source": "steps", "state": "done" if done else ("failed" if failed else "running"), "steps": steps,
            "message": "first boot finished" if done else f"{len(steps)} step(s) recorded"}


def bind_status(root: str) -> dict[str, Any] | None:
    doc, why = _read_json(paths.under(root, paths.BIND_STATUS_FILE))
    if why == "missing":
        return None
    return doc if isinstance(doc, dict) else {"note": f"bind status {why or 'not a mapping'}"}


def kernel_args_status(root: str) -> dict[str, Any] | None:
    doc, why = _read_json(paths.under(root, paths.KERNEL_ARGS_STATUS_FILE))
    if why == "missing":
        return None
    return doc if isinstance(doc, dict) else {"state": "unknown", "reason": f"kernel-args status {why or 'not a mapping'}"}


def reconcile_status(root: str) -> dict[str, Any] | None:
    """The reconciler's last pass; None where it never ran (every joined agent)."""
    doc, why = _read_json(os.path.join(paths.under(root, paths.FIRSTBOOT_STATE_DIR), paths.RECONCILE_STATUS))
    if why == "missing":
        return None
    return doc if isinstance(doc, dict) else {"state": "unknown", "message": f"reconcile status {why or 'not a mapping'}"}


def collect(root: str) -> dict[str, Any]:
    return {"install": install_status(root), "firstboot": firstboot_status(root),
            "bind": bind_status(root), "kernel_args": kernel_args_status(root),
            "reconcile": reconcile_status(root)}


def format_status(st: dict[str, Any]) -> str:
    lines = []
    inst = st["install"]
    rec = InstallRecord.from_json(inst["record"]) if inst["record"] else None
    if rec is None:
        lines.append(f"install:     {inst.get('note', 'no install record')}")
    else:
        lines.append(f"install:     {rec.outcome}" + (f" (choices from the {rec.source})" if rec.source else "") + (f", {rec.at}" if rec.at else ""))
        lines += [f"             {r}" for r in rec.reason]
        lines += [f"             warning: {w}" for w in rec.warnings]
    s = inst["set"]
    if s["complete"]:
        lines.append("files:       the rendered set is complete" + ("" if s["has_plan"] else " (no plan in it)"))
    elif s["problems"] and inst["record"] is not None:
        lines.append("files:       INCOMPLETE (bind, first boot and the kernel-args keeper do nothing):")
        lines += [f"             {p}" for p in s["problems"][:10]]
    fb = st["firstboot"]
    lines.append(f"first boot:  {fb.get('state')}: {fb.get('message', '')}".rstrip(": "))
    for step in fb.get("steps") or []:
        if isinstance(step, dict):
            reason = f" ({step.get('reason')})" if step.get("reason") else ""
            lines.append(f"             {step.get('name')}: {step.get('status')}{reason}")
    b = st["bind"]
    if b is None:
        lines.append("binder:      not run this boot")
    elif "note" in b:
        lines.append(f"binder:      {b['note']}")
    elif b.get("skipped"):
        lines.append(f"binder:      skipped this boot ({b.get('skip_reason')})")
    else:
        for d in b.get("devices") or []:
            if isinstance(d, dict):
                lines.append(f"binder:      {d.get('address')}: {d.get('status')}" + (f" ({d['reason']})" if d.get("reason") else ""))
        if not b.get("devices"):
            lines.append("binder:      no devices")
    k = st["kernel_args"]
    if k is None:
        lines.append("kernel line: not checked this boot")
    else:
        lines.append(f"kernel line: {k.get('state')}" + (f": {k['reason']}" if k.get("reason") else ""))
        if k.get("missing"):
            lines.append(f"             missing: {' '.join(map(str, k['missing']))}")
    r = st["reconcile"]
    if r is not None:
        lines.append(f"reconciler:  {r.get('state')}: {r.get('message', '')}".rstrip(": "))
        nodes = r.get("nodes") if isinstance(r.get("nodes"), dict) else {}
        for name, n in sorted(nodes.items()):
            if isinstance(n, dict):
                lines.append(f"             {name}: {n.get('state')}" + (f" ({n['reason']})" if n.get("reason") else ""))
    return "\n".join(lines) + "\n"
