"""Plan -> the files of the installed node, as (relative path, bytes, mode).

Pure: the same plan gives the same bytes. `write.py` puts them under a target root.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from installer_ext import paths
from installer_ext.plan.model import BIND_ADDRESS, BIND_IDS, Plan
from installer_ext.templating import render_template

NODE_PYTHON = "/usr/bin/python3"
BIND_TIMEOUT = "30min"
BIND_INSTANCE_UNIT = "installer-ext-bind@.service"


@dataclass(frozen=True)
class Artifact:
    relpath: str  # under the target root, e.g. oem/91_installer_ext.yaml
    data: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class NodeFile:
    """A file the yip stage writes into the node's /etc every boot."""

    path: str  # absolute on the node
    content: str
    permissions: str = "0644"


def plan_json(plan: Plan) -> bytes:
    return (json.dumps(plan.to_json(), indent=2, sort_keys=True) + "\n").encode()


def _abs(relpath: str) -> str:
    return "/" + relpath


def _common() -> dict[str, str]:
    return {
        "plan_path": _abs(paths.PLAN_FILE),
        "python": NODE_PYTHON,
        "app": _abs(paths.APP_FILE),
        "bind_timeout": BIND_TIMEOUT,
        "bind_unit": paths.BIND_UNIT,
        "bind_instance": BIND_INSTANCE_UNIT.replace("@.service", "@"),
        "done_marker": _abs(paths.FIRSTBOOT_STATE_DIR) + "/done",
        "kubeconfig": paths.DEFAULT_KUBECONFIG,
        "grubenv": paths.GRUBENV_FILE,
    }


def softdep_modules(plan: Plan) -> list[str]:
    """Native modules that must wait for vfio-pci: those of the ids-bound devices."""
    mods = set()
    for p in plan.passthrough:
        if p.bind_at_boot == BIND_IDS and p.module and p.module not in ("vfio_pci", "vfio-pci"):
            mods.add(p.module)
            if p.module == "nvidia":
                mods.add("nouveau")  # whichever NVIDIA driver the image carries
            if p.module == "nouveau":
                mods.add("nvidia")
    return sorted(mods)


def driver_files(plan: Plan) -> list[NodeFile]:
    """vfio-pci's module options and the udev rule: left out on a rescue boot."""
    c = _common()
    files = []
    if plan.passthrough or plan.sriov:
        files.append(
            NodeFile(
                "/" + paths.MODPROBE_FILE,
                render_template("node/modprobe.conf.j2", vfio_ids=plan.vfio_ids, softdeps=softdep_modules(plan), **c),
            )
        )
        files.append(
            NodeFile("/" + paths.MODULES_LOAD_FILE, render_template("node/modules-load.conf.j2", modules=plan.modules or ["vfio-pci"]))
        )
        by_address = [p for p in plan.passthrough if p.bind_at_boot == BIND_ADDRESS]
        files.append(NodeFile("/" + paths.UDEV_RULE_FILE, render_template("node/udev.rules.j2", devices=by_address, **c)))
    return files


def unit_files(plan: Plan) -> list[NodeFile]:
    """The units, on every boot: the binder records a rescue boot as skipped."""
    c = _common()
    files = []
    for unit, template in (
        (paths.BIND_UNIT, "node/installer-ext-bind.service.j2"),
        (BIND_INSTANCE_UNIT, "node/installer-ext-bind@.service.j2"),
        (paths.FIRSTBOOT_UNIT, "node/installer-ext-firstboot.service.j2"),
    ):
        files.append(NodeFile(f"/{paths.SYSTEMD_DIR}/{unit}", render_template(template, **c)))
    return files


def node_files(plan: Plan) -> list[NodeFile]:
    return driver_files(plan) + unit_files(plan)


def enabled_units(plan: Plan) -> list[str]:
    return [paths.BIND_UNIT, paths.FIRSTBOOT_UNIT]


def yip_config(plan: Plan) -> bytes:
    return render_template(
        "node/yip.yaml.j2",
        driver_files=driver_files(plan),
        unit_files=unit_files(plan),
        enable=enabled_units(plan),
        **_common(),
    ).encode()


def harvester_fragment(plan: Plan) -> bytes:
    """For installs driven by the Go installer's own config: the same result through
    os.additionalKernelArguments, os.writeFiles and the addon switch."""
    write_files = [
        NodeFile(_abs(paths.PLAN_FILE), plan_json(plan).decode()),
        NodeFile(_abs(paths.YIP_FILE), yip_config(plan).decode()),
    ]
    return render_template(
        "node/harvester-config-fragment.yaml.j2",
        kernel_args=" ".join(plan.kernel_args),
        write_files=write_files,
        addon_enabled=bool(plan.addons.get("pcidevices-controller", False)),
    ).encode()


FRAGMENT_FILE = "oem/installer-ext/harvester-config-fragment.yaml"


def artifacts(plan: Plan) -> list[Artifact]:
    """Every file but the grubenv (merged with what the target already holds)."""
    return [
        Artifact(paths.YIP_FILE, yip_config(plan)),
        Artifact(FRAGMENT_FILE, harvester_fragment(plan)),
        Artifact(paths.PLAN_FILE, plan_json(plan)),
    ]
