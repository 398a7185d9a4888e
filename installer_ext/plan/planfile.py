"""Read a plan file and validate it strictly before anything uses it (bind, unbind,
firstboot, the kernel-args keeper).

The plan comes from disk (/oem), so it is input like any other: every address that will
be joined to a sysfs path must match `PCI_ADDRESS_RE` exactly (no `../`, no trailing
newline, no short form), every id is four hex digits, every driver name is a plain
name. A bad plan is `BadInput` with one line naming the file and the key path.
"""

from __future__ import annotations

import json
import re
from typing import Any

from installer_ext.errors import BadInput
from installer_ext.fsutil import read_input
from installer_ext.host.address import (
    KERNEL_ARG_RE,
    PCI_ADDRESS_RE,
    PCI_ID_RE,
    VENDOR_DEVICE_RE,
    is_driver_name,
)
from installer_ext.plan.model import BIND_ADDRESS, BIND_IDS, PLAN_VERSION, Plan

MAX_PLAN_BYTES = 16 << 20
MAX_VFS = 65535  # sriov_numvfs is a u16 in the kernel
# RFC 1123 subdomain: Kubernetes object names (Settings, Addons).
DNS_SUBDOMAIN_RE = re.compile(r"\A(?=.{1,253}\Z)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")


class _Bad(Exception):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")


def _show(value: object) -> str:
    """A value as JSON on one line (newlines escaped), cut to a readable length."""
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 80 else text[:77] + "..."


def _obj(value: object, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(key, f"must be an object, not {_show(value)}")
    return value


def _list(d: dict[str, Any], name: str, key: str) -> list[Any]:
    value = d.get(name, [])
    if not isinstance(value, list):
        raise _Bad(f"{key}{name}", f"must be a list, not {_show(value)}")
    return value


def _address(value: object, key: str) -> str:
    if not isinstance(value, str) or not PCI_ADDRESS_RE.match(value):
        raise _Bad(key, f"{_show(value)} is not a PCI address (like 0000:65:00.0)")
    return value


def _opt_address(d: dict[str, Any], name: str, key: str) -> None:
    if d.get(name) is not None:
        _address(d[name], f"{key}.{name}")


def _pci_id(d: dict[str, Any], name: str, key: str, required: bool) -> None:
    value = d.get(name)
    if value is None and not required:
        return
    if value == "" and not required:
        return
    if not isinstance(value, str) or not PCI_ID_RE.match(value):
        raise _Bad(f"{key}.{name}", f"{_show(value)} is not 4 lowercase hex digits")


def _int(d: dict[str, Any], name: str, key: str, required: bool, lo: int = 0, hi: int = 1 << 31) -> None:
    if name not in d and not required:
        return
    value = d.get(name)
    if value is None and not required:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _Bad(f"{key}.{name}", f"{_show(value)} is not an integer from {lo} to {hi}")


def _bool(d: dict[str, Any], name: str, key: str, required: bool) -> None:
    if name not in d and not required:
        return
    if not isinstance(d.get(name), bool):
        raise _Bad(f"{key}.{name}", f"{_show(d.get(name))} is not true or false")


def _addresses(d: dict[str, Any], name: str, key: str) -> None:
    prefix = f"{key}." if key else ""
    for i, a in enumerate(_list(d, name, prefix)):
        _address(a, f"{prefix}{name}[{i}]")


def validate(data: object) -> None:
    """Raise _Bad for the first problem, naming its key path."""
    top = _obj(data, "(top level)")
    if "version" in top and top["version"] != PLAN_VERSION:
        raise _Bad("version", f"{_show(top['version'])} is not a plan version this program reads ({PLAN_VERSION})")
    _bool(top, "enabled", "", False)
    seen: dict[str, str] = {}
    for i, p in enumerate(_list(top, "passthrough", "")):
        key = f"passthrough[{i}]"
        p = _obj(p, key)
        address = _address(p.get("address"), f"{key}.address")
        if address in seen:
            raise _Bad(f"{key}.address", f"{_show(address)} is listed twice (also {seen[address]})")
        seen[address] = key
        _pci_id(p, "vendor_id", key, True)
        _pci_id(p, "device_id", key, True)
        if p.get("bind_at_boot") not in (BIND_IDS, BIND_ADDRESS):
            raise _Bad(f"{key}.bind_at_boot", f"{_show(p.get('bind_at_boot'))} is not \"ids\" or \"address\"")
        if not isinstance(p.get("why"), str):
            raise _Bad(f"{key}.why", f"{_show(p.get('why'))} is not a string")
        _int(p, "iommu_group", key, False)
        _bool(p, "group_predicted", key, False)
        _opt_address(p, "vf_of", key)
        if p.get("driver") is not None and not is_driver_name(p["driver"]):
            raise _Bad(f"{key}.driver", f"{_show(p['driver'])} is not a driver name")
    pfs: set[str] = set()
    for i, s in enumerate(_list(top, "sriov", "")):
        key = f"sriov[{i}]"
        s = _obj(s, key)
        address = _address(s.get("address"), f"{key}.address")
        if address in pfs:
            raise _Bad(f"{key}.address", f"{_show(address)} is listed twice")
        pfs.add(address)
        _int(s, "num_vfs", key, True, 0, MAX_VFS)
        _bool(s, "vfs_to_vfio", key, True)
        _pci_id(s, "vendor_id", key, False)
        _pci_id(s, "device_id", key, False)
        _pci_id(s, "vf_device_id", key, False)
        _int(s, "total_vfs", key, False, 0, MAX_VFS)
        _addresses(s, "vfs", key)
    for i, g in enumerate(_list(top, "groups", "")):
        key = f"groups[{i}]"
        g = _obj(g, key)
        _int(g, "id", key, False)
        _bool(g, "predicted", key, False)
        for name in ("devices", "passthrough", "left"):
            _addresses(g, name, key)
    _addresses(top, "host_gpus", "")
    for i, token in enumerate(_list(top, "kernel_args", "")):
        if not isinstance(token, str) or not KERNEL_ARG_RE.match(token):
            raise _Bad(f"kernel_args[{i}]", f"{_show(token)} is not a kernel argument token")
    for i, ids in enumerate(_list(top, "vfio_ids", "")):
        if not isinstance(ids, str) or not VENDOR_DEVICE_RE.match(ids):
            raise _Bad(f"vfio_ids[{i}]", f"{_show(ids)} is not a vendor:device id")
    for i, module in enumerate(_list(top, "modules", "")):
        if not is_driver_name(module):
            raise _Bad(f"modules[{i}]", f"{_show(module)} is not a module name")
    for i, plugin in enumerate(_list(top, "device_plugins", "")):
        if plugin not in ("nvidia", "amd"):
            raise _Bad(f"device_plugins[{i}]", f"{_show(plugin)} is not \"nvidia\" or \"amd\"")
    for name, value in _obj(top.get("settings", {}), "settings").items():
        if not DNS_SUBDOMAIN_RE.match(name):
            raise _Bad("settings", f"{_show(name)} is not a Setting name")
        if not isinstance(value, str):
            raise _Bad(f"settings.{name}", f"{_show(value)} is not a string")
    for name, value in _obj(top.get("addons", {}), "addons").items():
        if not DNS_SUBDOMAIN_RE.match(name):
            raise _Bad("addons", f"{_show(name)} is not an Addon name")
        if not isinstance(value, bool):
            raise _Bad(f"addons.{name}", f"{_show(value)} is not true or false")


def load_plan(path: str) -> Plan:
    """The validated plan at `path`; BadInput (exit 2) naming the file and key."""
    raw = read_input(path, MAX_PLAN_BYTES, "a plan file")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    try:
        validate(data)
        return Plan.from_json(data)
    except _Bad as exc:
        raise BadInput(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:  # what validate() does not model
        raise BadInput(f"{path}: invalid plan: {type(exc).__name__}: {exc}") from None
