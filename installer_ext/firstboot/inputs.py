"""What first boot knows about this node: the plan, the node name, the bound devices.

The binder writes ROOT/run/installer-ext/bind-status.json every boot: that is the truth
about what is bound to vfio-pci now. When it is missing (the binder did not run, an older
binder) the plan's passthrough list is checked against sysfs instead. A status file that
cannot be used is a warning and the same fallback, never a crash: sysfs is the truth
the status file reports.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
from dataclasses import dataclass, field
from typing import Any

from installer_ext import paths
from installer_ext.errors import BadInput
from installer_ext.host.address import is_pci_address
from installer_ext.host.pci import read_function
from installer_ext.host.sysfs import SysRoot
from installer_ext.plan.model import Plan

log = logging.getLogger(__name__)

BIND_STATUS_VERSION = 1
BOUND_STATUSES = ("bound", "already-bound")
VFIO = "vfio-pci"
# RFC 1123 subdomain: Kubernetes object names, node names, setting names.
DNS_SUBDOMAIN_RE = re.compile(r"\A[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")


def is_dns_subdomain(name: object) -> bool:
    return isinstance(name, str) and len(name) <= 253 and DNS_SUBDOMAIN_RE.match(name) is not None


def node_name(root: str, override: str | None) -> str:
    """--node-name, else ROOT/etc/hostname, else this machine's hostname; Harvester
    names the Kubernetes node after the hostname."""
    source = "--node-name"
    name = override
    if name is None:
        hostname_file = os.path.join(root, "etc", "hostname")
        try:
            with open(hostname_file, encoding="utf-8") as f:
                name = f.read().strip()
            source = hostname_file
        except OSError:
            name = ""
        if not name:
            name, source = socket.gethostname(), "hostname"
    if not is_dns_subdomain(name):
        raise BadInput(f"{source}: {name!r} is not a valid Kubernetes node name")
    return name


@dataclass(frozen=True)
class BoundDevice:
    address: str
    vendor_id: str | None = None
    device_id: str | None = None


@dataclass
class BindView:
    """What the binder left bound to vfio-pci this boot."""

    source: str  # bind-status | sysfs
    devices: list[BoundDevice] = field(default_factory=list)
    skipped: bool = False
    skip_reason: str | None = None
    not_bound: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _from_status(doc: Any, plan_addresses: set[str], path: str) -> BindView:
    if not isinstance(doc, dict) or doc.get("version") != BIND_STATUS_VERSION:
        raise ValueError(f"version {doc.get('version') if isinstance(doc, dict) else None!r} is not {BIND_STATUS_VERSION}")
    view = BindView(source="bind-status")
    if doc.get("skipped"):
        view.skipped = True
        view.skip_reason = str(doc.get("skip_reason") or "skipped")
        return view
    devices = doc.get("devices")
    if not isinstance(devices, list):
        raise ValueError("devices is not a list")
    for i, d in enumerate(devices):
        if not isinstance(d, dict) or not is_pci_address(d.get("address")):
            view.warnings.append(f"{path}: devices[{i}]: no valid address, ignored")
            continue
        addr = d["address"]
        if d.get("status") in BOUND_STATUSES and d.get("driver") == VFIO:
            if addr not in plan_addresses:
                view.warnings.append(f"{addr}: bound but not in the plan's passthrough list, not claimed")
                continue
            view.devices.append(BoundDevice(addr, d.get("vendor_id"), d.get("device_id")))
        else:
            view.not_bound.append({"address": addr, "status": d.get("status"), "reason": d.get("reason")})
    return view


def _from_sysfs(root: str, plan: Plan) -> BindView:
    sr = SysRoot(root)
    view = BindView(source="sysfs")
    for p in plan.passthrough:
        fn = read_function(sr, p.address, want_config=False)
        if fn.driver == VFIO:
            view.devices.append(BoundDevice(p.address, fn.vendor_id, fn.device_id))
        else:
            view.not_bound.append({"address": p.address, "status": "not-bound", "reason": f"driver is {fn.driver}"})
    return view


def bound_devices(root: str, plan: Plan) -> BindView:
    path = paths.under(root, paths.BIND_STATUS_FILE)
    plan_addresses = {p.address for p in plan.passthrough}
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        view = _from_status(doc, plan_addresses, path)
    except FileNotFoundError:
        log.info("%s missing: checking the plan's %d devices in sysfs", path, len(plan.passthrough))
        return _from_sysfs(root, plan)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        view = _from_sysfs(root, plan)
        view.warnings.insert(0, f"{path}: unusable ({exc}); checked sysfs instead")
        log.warning("%s", view.warnings[0])
        return view
    view.devices.sort(key=lambda d: d.address)
    return view
