"""Plan -> the files of the installed node, as (relative path, bytes, mode).

Pure: the same plan (and record) gives the same bytes. `write.py` puts them under a
target. YAML documents (the yip file, the Harvester config fragment) are built as data
and dumped with PyYAML (`yamldoc`); units, the udev rule and modprobe files are Jinja
templates.

Every unit, udev rule and yip step runs the program through one path, PROGRAM: the
launcher on COS_PERSISTENT that picks a usable Python (`templates/node/installer-ext.sh`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from installer_ext import paths
from installer_ext.harvester import ADDON_PCIDEVICES
from installer_ext.plan.model import BIND_ADDRESS, BIND_IDS, Plan
from installer_ext.render.record import InstallRecord
from installer_ext.render.yamldoc import Literal, Octal, dump
from installer_ext.templating import render_template, template_source

# The one way every unit, rule and yip step runs installer-ext on the node.
PROGRAM = paths.node_path(paths.LAUNCHER_FILE)
BIND_TIMEOUT = "30min"
BIND_INSTANCE_UNIT = "installer-ext-bind@.service"
CAT = "/usr/bin/cat"


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
    permissions: int = 0o644


def plan_json(plan: Plan) -> bytes:
    return (json.dumps(plan.to_json(), indent=2, sort_keys=True) + "\n").encode()


def launcher_script() -> bytes:
    return template_source("node/installer-ext.sh").encode()


def _common() -> dict[str, str]:
    return {
        "plan_path": paths.node_path(paths.PLAN_FILE),
        "program": PROGRAM,
        "bind_timeout": BIND_TIMEOUT,
        "bind_unit": paths.BIND_UNIT,
        "bind_instance": BIND_INSTANCE_UNIT.replace("@.service", "@"),
        "done_marker": paths.node_path(paths.FIRSTBOOT_STATE_DIR) + "/done",
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


# Enabled on every node: the binder, first boot, and the timer that runs the reconciler
# (its service's condition keeps it to server nodes).
ENABLED_UNITS = [paths.BIND_UNIT, paths.FIRSTBOOT_UNIT, paths.RECONCILE_TIMER]


def unit_files() -> list[NodeFile]:
    """The units, on every boot: the binder records a rescue boot as skipped."""
    c = _common()
    return [
        NodeFile(f"/{paths.SYSTEMD_DIR}/{unit}", render_template(template, **c))
        for unit, template in (
            (paths.BIND_UNIT, "node/installer-ext-bind.service.j2"),
            (BIND_INSTANCE_UNIT, "node/installer-ext-bind@.service.j2"),
            (paths.FIRSTBOOT_UNIT, "node/installer-ext-firstboot.service.j2"),
            (paths.RECONCILE_UNIT, "node/installer-ext-reconcile.service.j2"),
            (paths.RECONCILE_TIMER, "node/installer-ext-reconcile.timer.j2"),
        )
    ]


def report_files(record: InstallRecord) -> list[NodeFile]:
    """What the install did, every boot: a unit that puts the record's words in the
    journal and on the console (before the console's getty starts Harvester's
    dashboard), and, when it is bad news, a line for every login shell (the console's
    shell after F12, SSH)."""
    text = paths.node_path(paths.INSTALL_STATUS_TEXT)
    files = [
        NodeFile(
            f"/{paths.SYSTEMD_DIR}/{paths.REPORT_UNIT}",
            render_template("node/installer-ext-report.service.j2", text=text, cat=CAT),
        )
    ]
    if not record.ok:
        files.append(NodeFile("/" + paths.PROFILE_FILE, render_template("node/profile.sh.j2", text=text, cat=CAT)))
    return files


def manifest_check() -> str:
    """Shell test: every OEM file the manifest names is the one rendered with it (the
    manifest is written last). The persistent files are checked by the launcher's
    commands (`installer-ext verify`), after /usr/local is mounted."""
    sums = paths.node_path(paths.MANIFEST_FILE)
    return f"grep ' /oem/' {sums} | sha256sum --status -c -"


def _files_step(name: str, condition: str, files: list[NodeFile]) -> dict:
    return {
        "name": name,
        "if": condition,
        "files": [
            {"path": f.path, "permissions": Octal(f.permissions), "owner": 0, "group": 0, "content": Literal(f.content)}
            for f in files
        ],
    }


def yip_config(plan: Plan | None, record: InstallRecord) -> bytes:
    """The yip file elemental runs every boot from /oem (elemental rebuilds /etc each
    boot). Its steps run only while the manifest matches the set it belongs to."""
    check = manifest_check()
    plan_path = paths.node_path(paths.PLAN_FILE)
    initramfs = [
        {**_files_step("installer-ext: report what the install did", check, report_files(record)),
         "systemctl": {"enable": [paths.REPORT_UNIT]}},
    ]
    stages: dict = {"initramfs": initramfs}
    if plan is not None:
        drivers = driver_files(plan)
        if drivers:
            initramfs.append(
                _files_step(
                    "installer-ext: vfio-pci options and udev rule (not on a rescue boot, not while given back)",
                    f"[ -f {plan_path} ] && [ ! -e {paths.node_path(paths.GIVEN_BACK_FILE)} ] && "
                    f"! grep -qw {paths.SKIP_ARG} /proc/cmdline && {check}",
                    drivers,
                )
            )
        initramfs.append(
            {**_files_step("installer-ext: binder and first-boot units", f"[ -f {plan_path} ] && {check}", unit_files()),
             "systemctl": {"enable": ENABLED_UNITS}}
        )
        # The kernel-args keeper (render/grubenv.py, kernel_args.py): keeps the plan's
        # arguments in the grubenv after harv-install's rewrite.
        stages["boot"] = [
            {
                "name": f"installer-ext: keep the kernel arguments in /{paths.GRUBENV_FILE}",
                "if": f"[ -f {plan_path} ] && {check}",
                "commands": [f"{PROGRAM} kernel-args --plan {plan_path} --grubenv /{paths.GRUBENV_FILE}"],
            }
        ]
    doc = {"name": "installer-ext: GPU drivers and PCI passthrough", "stages": stages}
    header = (
        f"installer-ext: GPU drivers and PCI passthrough (generated from {plan_path}; do not edit).\n"
        "Elemental runs this every boot: /etc is rebuilt each boot, /oem persists."
    )
    return dump(doc, header)


def harvester_fragment(plan: Plan, record: InstallRecord) -> bytes:
    """For installs driven by the Go installer's own config: the same result through
    os.additionalKernelArguments, os.writeFiles and the addon switch."""
    files = [
        (paths.node_path(paths.PLAN_FILE), plan_json(plan)),
        (paths.node_path(paths.YIP_FILE), yip_config(plan, record)),
    ]
    os_section: dict = {}
    header = "installer-ext: merge into the Harvester install config (generated; do not edit)."
    if plan.added_kernel_args:
        # harv-install sets third_party_kernel_args to additionalKernelArguments INSTEAD of
        # its default multipath=off (harvester-installer pkg/console/util.go doInstall), so
        # the default is kept here; Harvester's bootargs.cfg already has the IOMMU
        # arguments, so only what it lacks is added (docs/kernel-args.md).
        os_section["additionalKernelArguments"] = " ".join(["multipath=off", *plan.added_kernel_args])
        header += "\nDrop multipath=off from additionalKernelArguments if the install enables external storage."
    os_section["writeFiles"] = [
        {"path": p, "permissions": "0644", "owner": "root", "encoding": "", "content": Literal(data.decode())}
        for p, data in files
    ]
    doc = {
        "os": os_section,
        "install": {"addons": {"harvester_pcidevices_controller": {"enabled": bool(plan.addons.get(ADDON_PCIDEVICES, False))}}},
    }
    return dump(doc, header)


def artifacts(plan: Plan | None, record: InstallRecord, app: bytes | None) -> list[Artifact]:
    """Every file of the set but the grubenv (merged with what the target holds) and
    the runtime (a directory) and the manifest (written last, over these)."""
    out = [Artifact(paths.YIP_FILE, yip_config(plan, record))]
    if plan is not None:
        out.append(Artifact(paths.FRAGMENT_FILE, harvester_fragment(plan, record)))
    out += [
        Artifact(paths.INSTALL_STATUS_FILE, record.json_bytes()),
        Artifact(paths.INSTALL_STATUS_TEXT, record.text_bytes()),
    ]
    if app is not None:
        out += [Artifact(paths.APP_FILE, app, 0o644), Artifact(paths.LAUNCHER_FILE, launcher_script(), 0o755)]
    if plan is not None:
        out.append(Artifact(paths.PLAN_FILE, plan_json(plan)))
    return out
