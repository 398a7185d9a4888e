"""GPUs kept on the host for containers, and the device plugin they call for."""

from __future__ import annotations

from installer_ext.host.address import address_sort_key
from installer_ext.host.model import HostFacts
from installer_ext.host.vendors import GPU_PLUGIN_VENDORS


def host_gpus(facts: HostFacts, asked: set[str] | None, passed: set[str]) -> list[str]:
    """The GPUs `hostGpus` names (`asked`), or with no such list every NVIDIA or AMD GPU
    that is not passed through (VFs aside), less the ones passed through."""
    if asked is not None:
        return sorted((a for a in asked if a not in passed), key=address_sort_key)
    return sorted(
        (
            d.address
            for d in facts.devices
            if d.kind == "gpu" and d.vendor_id in GPU_PLUGIN_VENDORS and d.address not in passed and d.physfn is None
        ),
        key=address_sort_key,
    )


def device_plugins(facts: HostFacts, gpus: list[str], wanted: str, warnings: list[str]) -> list[str]:
    """The plugins to expect for `wanted` (auto | nvidia | amd | none): auto picks the
    host GPUs' vendors. A choice no host GPU fits is kept, with a warning."""
    vendor_of = {a: (facts.device(a).vendor_id or "") for a in gpus}
    vendors = sorted({GPU_PLUGIN_VENDORS[v] for v in vendor_of.values() if v in GPU_PLUGIN_VENDORS})
    if wanted == "none":
        return []
    if wanted == "auto":
        if not vendors:
            warnings.append("gpuDrivers is on but no NVIDIA or AMD GPU stays on the host: no device plugin")
        return vendors
    if wanted not in vendors:
        warnings.append(f"devicePlugin {wanted}: no {wanted.upper()} GPU stays on the host")
    return [wanted]
