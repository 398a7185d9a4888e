"""What a node asks of the cluster, and what the cluster reconciler answers.

A joined node is an RKE2 agent: its only credentials are the kubelet's, which the node
authorizer and the NodeRestriction admission plugin limit to reading and patching its
own Node object (kubernetes plugin/pkg/auth/authorizer/node/node_authorizer.go
authorizeNode; plugin/pkg/admission/noderestriction/admission.go admitNode). So the
node writes its request as an annotation of its own Node, and the reconciler on a
server node (which has RKE2's admin kubeconfig) carries it out and writes the answer
in another annotation of the same Node. See docs/firstboot.md for the design.

The request is data, not instructions: the reconciler validates it strictly and acts
only on that node's own objects (PCIDevices and SRIOVNetworkDevices whose nodeName is
the node), on the two Settings and the pcidevices-controller Addon, and on the device
plugins whose manifests installer-ext ships.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from installer_ext.harvester import ADDON_PCIDEVICES, SETTING_GPU, SETTING_PCI
from installer_ext.host.address import PCI_ADDRESS_RE, PCI_ID_RE, is_driver_name
from installer_ext.firstboot.objects import PLUGIN_RESOURCES

VERSION = 1
MAX_DEVICES = 1024
MAX_SRIOV = 64
MAX_VFS = 4096
MAX_ANNOTATION_BYTES = 128 * 1024  # of 256 KiB for all annotations of an object
_SETTING_VALUES = ("true", "false")
ALLOWED_SETTINGS = (SETTING_PCI, SETTING_GPU)
ALLOWED_ADDONS = (ADDON_PCIDEVICES,)

# Result states.
DONE, WAITING, FAILED = "done", "waiting", "failed"


class BadRequest(ValueError):
    """A request that does not parse or breaks a rule: the reconciler refuses it."""


@dataclass(frozen=True)
class DeviceRequest:
    address: str
    vendor_id: str
    device_id: str
    driver: str  # the host driver the binder recorded before binding; "" for none


@dataclass(frozen=True)
class SriovRequest:
    address: str  # the PF
    num_vfs: int
    vfs_to_vfio: bool


@dataclass
class Request:
    settings: dict[str, str] = field(default_factory=dict)
    addons: dict[str, bool] = field(default_factory=dict)
    claims: bool = False
    devices: list[DeviceRequest] = field(default_factory=list)
    sriov: list[SriovRequest] = field(default_factory=list)
    plugins: list[str] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "settings": dict(sorted(self.settings.items())),
            "addons": dict(sorted(self.addons.items())),
            "claims": self.claims,
            "devices": [{"address": d.address, "vendorId": d.vendor_id, "deviceId": d.device_id, "driver": d.driver}
                        for d in sorted(self.devices, key=lambda d: d.address)],
            "sriov": [{"address": s.address, "numVFs": s.num_vfs, "vfsToVfio": s.vfs_to_vfio}
                      for s in sorted(self.sriov, key=lambda s: s.address)],
            "plugins": sorted(self.plugins),
        }

    def needs_cluster(self) -> bool:
        """Whether anything in the request can change the cluster for this node: a
        request of "false" Settings alone only creates them when absent."""
        return bool(self.devices or self.sriov or self.plugins or any(self.addons.values())
                    or any(v == "true" for v in self.settings.values()))

    @property
    def digest(self) -> str:
        return hashlib.sha256(_canonical(self.body()).encode()).hexdigest()[:16]

    def to_annotation(self) -> str:
        text = _canonical({**self.body(), "digest": self.digest})
        if len(text) > MAX_ANNOTATION_BYTES:
            raise BadRequest(f"request of {len(text)} bytes is above {MAX_ANNOTATION_BYTES}")
        return text


def _canonical(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def _want(cond: bool, what: str) -> None:
    if not cond:
        raise BadRequest(what)


def parse(text: object) -> Request:
    """The request in an annotation's text. BadRequest naming the first problem."""
    _want(isinstance(text, str), "not a string")
    assert isinstance(text, str)
    _want(len(text) <= MAX_ANNOTATION_BYTES, f"larger than {MAX_ANNOTATION_BYTES} bytes")
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise BadRequest(f"not JSON: {exc}") from None
    _want(isinstance(doc, dict), "not a JSON object")
    _want(doc.get("version") == VERSION, f"version {doc.get('version')!r} is not {VERSION}")
    known = {"version", "digest", "settings", "addons", "claims", "devices", "sriov", "plugins"}
    extra = sorted(set(doc) - known)
    _want(not extra, f"unknown key {extra[0]!r}" if extra else "")

    settings = doc.get("settings", {})
    _want(isinstance(settings, dict), "settings: not an object")
    for k, v in settings.items():
        _want(k in ALLOWED_SETTINGS, f"settings: {k!r} is not a setting installer-ext writes")
        _want(v in _SETTING_VALUES, f"settings.{k}: {v!r} is not \"true\" or \"false\"")
    addons = doc.get("addons", {})
    _want(isinstance(addons, dict), "addons: not an object")
    for k, v in addons.items():
        _want(k in ALLOWED_ADDONS, f"addons: {k!r} is not an addon installer-ext enables")
        _want(isinstance(v, bool), f"addons.{k}: not a boolean")
    claims = doc.get("claims", False)
    _want(isinstance(claims, bool), "claims: not a boolean")

    devices_raw = doc.get("devices", [])
    _want(isinstance(devices_raw, list) and len(devices_raw) <= MAX_DEVICES,
          f"devices: not a list of at most {MAX_DEVICES}")
    devices, seen = [], set()
    for i, d in enumerate(devices_raw):
        where = f"devices[{i}]"
        _want(isinstance(d, dict) and set(d) == {"address", "vendorId", "deviceId", "driver"},
              f"{where}: needs exactly address, vendorId, deviceId, driver")
        a = d["address"]
        _want(isinstance(a, str) and PCI_ADDRESS_RE.match(a) is not None, f"{where}.address: not a PCI address")
        _want(a not in seen, f"{where}.address: {a} twice")
        seen.add(a)
        for key in ("vendorId", "deviceId"):
            _want(isinstance(d[key], str) and PCI_ID_RE.match(d[key]) is not None, f"{where}.{key}: not 4 hex digits")
        drv = d["driver"]
        _want(isinstance(drv, str) and (drv == "" or (is_driver_name(drv) and drv != "vfio-pci")),
              f"{where}.driver: not a host driver name")
        devices.append(DeviceRequest(a, d["vendorId"], d["deviceId"], drv))

    sriov_raw = doc.get("sriov", [])
    _want(isinstance(sriov_raw, list) and len(sriov_raw) <= MAX_SRIOV, f"sriov: not a list of at most {MAX_SRIOV}")
    sriov, pfs = [], set()
    for i, s in enumerate(sriov_raw):
        where = f"sriov[{i}]"
        _want(isinstance(s, dict) and set(s) == {"address", "numVFs", "vfsToVfio"},
              f"{where}: needs exactly address, numVFs, vfsToVfio")
        a = s["address"]
        _want(isinstance(a, str) and PCI_ADDRESS_RE.match(a) is not None, f"{where}.address: not a PCI address")
        _want(a not in pfs and a not in seen, f"{where}.address: {a} twice")
        pfs.add(a)
        n = s["numVFs"]
        _want(isinstance(n, int) and not isinstance(n, bool) and 0 < n <= MAX_VFS, f"{where}.numVFs: not 1..{MAX_VFS}")
        _want(isinstance(s["vfsToVfio"], bool), f"{where}.vfsToVfio: not a boolean")
        sriov.append(SriovRequest(a, n, s["vfsToVfio"]))

    plugins = doc.get("plugins", [])
    _want(isinstance(plugins, list) and all(p in PLUGIN_RESOURCES for p in plugins) and len(set(plugins)) == len(plugins),
          f"plugins: only {', '.join(sorted(PLUGIN_RESOURCES))}, each once")
    req = Request(dict(settings), dict(addons), claims, devices, sriov, list(plugins))
    _want(doc.get("digest") in (None, req.digest), "digest does not match the content")
    return req


@dataclass
class Result:
    """The reconciler's answer for one request (the `result` annotation)."""

    request: str  # the digest it answers
    state: str  # done | waiting | failed
    reason: str = ""
    by: str = ""  # the reconciler's node
    at: str = ""
    claimed: list[str] = field(default_factory=list)  # addresses with a claim (ours or the same)
    conflicts: list[str] = field(default_factory=list)
    sriov: list[dict[str, Any]] = field(default_factory=list)  # {"address", "object", "numVFs", "vfs", "status"}
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"version": VERSION, "request": self.request, "state": self.state, "reason": self.reason,
                "by": self.by, "at": self.at, "claimed": sorted(self.claimed), "conflicts": self.conflicts,
                "sriov": self.sriov, "details": self.details}

    def to_annotation(self) -> str:
        return _canonical(self.to_json())

    def outcome(self) -> tuple[Any, ...]:
        """What the answer says happened, without who, when and how (a rerun finds
        "existing" where the first run "created": the same outcome)."""
        sriov = sorted((str(s.get("address")), s.get("numVFs"), str(s.get("object")), tuple(s.get("vfs") or []),
                        s.get("status") in ("ready", "set")) for s in self.sriov)
        return (self.request, self.state, self.reason, tuple(sorted(self.claimed)), tuple(self.conflicts), tuple(sriov))


def parse_result(text: object) -> Result | None:
    """The answer in an annotation, None when it is missing or not ours to read."""
    if not isinstance(text, str) or len(text) > 4 * MAX_ANNOTATION_BYTES:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        return None
    state = doc.get("state")
    if state not in (DONE, WAITING, FAILED) or not isinstance(doc.get("request"), str):
        return None
    claimed = [a for a in doc.get("claimed") or [] if isinstance(a, str) and PCI_ADDRESS_RE.match(a)]
    sriov = [s for s in doc.get("sriov") or [] if isinstance(s, dict)]
    return Result(doc["request"], state, str(doc.get("reason") or ""), str(doc.get("by") or ""),
                  str(doc.get("at") or ""), claimed, [str(c) for c in doc.get("conflicts") or []], sriov,
                  doc.get("details") if isinstance(doc.get("details"), dict) else {})
