"""Devices known to misbehave when passed through.

AMD GPUs of these families do not come back cleanly from a function-level or bus reset
(the "AMD reset bug": a VM's second start hangs or the card stays dead until the host
reboots); the out-of-tree vendor-reset module exists for them. Ids by family.
"""

from __future__ import annotations

AMD_RESET_BUG = {
    "Polaris": ("67df", "67ef", "67ff", "699f", "6fdf", "67e0", "67e3", "67e8", "67eb"),
    "Vega 10": ("687f", "6860", "6861", "6862", "6863", "6864", "6867", "6868", "686c"),
    "Vega 20": ("66a0", "66a1", "66a2", "66a3", "66a7", "66af"),
    "Navi 10": ("7310", "7312", "7318", "7319", "731a", "731b", "731e", "731f"),
    "Navi 12": ("7360", "7362"),
    "Navi 14": ("7340", "7341", "7347", "734f"),
    "Navi 23": ("73e0", "73e1", "73e3", "73ef", "73ff"),
}
_BY_ID = {dev: family for family, ids in AMD_RESET_BUG.items() for dev in ids}


def amd_reset_family(vendor_id: str | None, device_id: str | None) -> str | None:
    if vendor_id != "1002" or device_id is None:
        return None
    return _BY_ID.get(device_id)


def reset_warnings(address: str, vendor_id: str | None, device_id: str | None, resettable: bool | None) -> list[str]:
    """Warnings for a function that will not come back cleanly from a VM."""
    out = []
    family = amd_reset_family(vendor_id, device_id)
    if family:
        out.append(
            f"{address}: AMD {family} GPUs do not reset cleanly; a VM may hang on its second start "
            "until the host reboots (the vendor-reset module helps)"
        )
    if resettable is False:
        out.append(f"{address}: the kernel knows no reset method for it; VM restarts may fail")
    return out
