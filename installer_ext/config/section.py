"""The `pciPassthrough` section: spellings, the schema (schema.json), then `Choices`.

Every problem is one line naming the key path, the value and what is expected
(`pciPassthrough.devices[2].address: "0000:zz:00.0" is not a PCI address like
0000:65:00.0`). Nothing from the file reaches a path or a command before it has
passed the schema's strict patterns. Which kernel arguments may be written is the
planner's decision (installer_ext/plan); here a token only has to be a token.
"""

from __future__ import annotations

import logging
from typing import Any

from installer_ext.config.messages import quote, schema_errors, type_name
from installer_ext.config.model import Choices, HarvesterChoice, Selector, SriovChoice
from installer_ext.config.schemas import SECTION_SCHEMA, canonical_keys, validator
from installer_ext.host.address import normalize_address

log = logging.getLogger(__name__)

SECTION = "pciPassthrough"


def _selectors(items: list[dict[str, Any]], base: str) -> tuple[Selector, ...]:
    out = []
    for i, item in enumerate(items):
        path = f"{base}[{i}]"
        if "address" in item:
            out.append(Selector(address=normalize_address(item["address"]), path=f"{path}.address"))
        elif "id" in item:
            out.append(Selector(id=item["id"].lower(), path=f"{path}.id"))
        else:
            out.append(Selector(kind=item["kind"], path=f"{path}.kind"))
    return tuple(out)


def parse_section(section: Any, errors: list[str]) -> Choices:
    """A `pciPassthrough` value -> Choices; problems are appended to `errors`."""
    if section is None:
        section = {}
    if not isinstance(section, dict):
        errors.append(f"{SECTION}: {quote(section)} is {type_name(section)}, expected a mapping")
        return Choices()
    mine: list[str] = []
    section = canonical_keys(section, mine, SECTION, SECTION_SCHEMA)
    mine += schema_errors(validator(SECTION_SCHEMA).iter_errors(section), SECTION)
    if mine:
        errors += mine
        return Choices()
    h = section.get("harvester", {})
    host = section.get("hostGpus")
    args: list[str] = []
    for token in section.get("extraKernelArgs", []):
        if token not in args:
            args.append(token)
    return Choices(
        enabled=section.get("enabled", False),
        gpu_drivers=section.get("gpuDrivers", False),
        devices=_selectors(section.get("devices", []), f"{SECTION}.devices"),
        host_gpus=None if host is None else _selectors(host, f"{SECTION}.hostGpus"),
        sriov=tuple(
            SriovChoice(
                address=normalize_address(s["address"]) or "",
                num_vfs=s["numVfs"],
                vfs_to_vfio=s.get("vfsToVfio", True),
                path=f"{SECTION}.sriov[{i}]",
            )
            for i, s in enumerate(section.get("sriov", []))
        ),
        allow_unsafe_interrupts=section.get("allowUnsafeInterrupts", False),
        extra_kernel_args=tuple(args),
        harvester=HarvesterChoice(
            settings=h.get("settings", True), addon=h.get("addon", True), claims=h.get("claims", True)
        ),
        device_plugin=section.get("devicePlugin", "auto"),
    )
