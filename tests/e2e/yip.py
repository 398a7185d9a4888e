"""A stand-in for rancher/yip, as elemental runs it on the node: only what our cloud-config
uses.

On a Harvester node, elemental applies the yip files in /oem every boot:
`elemental-setup-initramfs.service` runs `elemental run-stage initramfs` in the initrd,
chrooted into the real root (`RootDirectory=/sysroot`, `Before=initrd.target`, so before
switch_root and before the real root's systemd and udev start; rancher/elemental-toolkit
v1.1.8, pkg/features/embedded/elemental-setup/usr/lib/systemd/system/
elemental-setup-initramfs.service). The QEMU node boot (tests/e2e/init.sh, init="systemd")
runs this module at the same point: in a chroot of the guest root, before switch_root.

Implemented, for the steps of one stage (rancher/yip main @ ee4051d, pkg/executor/
executor.go: the conditionals run first, then the plugins in the order EnsureFiles ...
Systemctl):
- `if`: the step runs only when `sh -c IF` exits 0 (pkg/plugins/if.go IfConditional,
  pkg/console/console.go StandardConsole.Run: `exec.Command("sh", "-c", cmd)`);
- `files`: each file written whole, then chmod to `permissions` and chown to
  `owner`/`group`; a missing parent directory is created with the file's permissions
  plus the owner's execute bit when they are below 0700 (pkg/plugins/files.go writeFile);
- `systemctl.enable`: `systemctl enable UNIT` through `sh -c`, one per unit
  (pkg/plugins/systemctl.go Systemctl, console.RunTemplate).

Left out, on purpose: every other key (`commands`, `directories`, `downloads`, `users`,
...), other stages (the node's `boot` stage runs `commands` from
`elemental-setup-boot.service` after the root's systemd is up: here they do not run),
yip's Go templating of contents and `if` (`templateSysData`: a `{{` in either is refused
rather than passed through unexpanded), file `encoding`s and `ownerstring`, the other
`systemctl` verbs, and the loading of every other file elemental reads (/system/oem,
/usr/local/cloud-config). A step that uses a key this stand-in does not implement, or a
stage it does not run that has `files` or `systemctl`, is an error: it never silently
does less than yip would.

    python -m tests.e2e.yip --stage initramfs --report OUT.json /oem/91_installer_ext.yaml

Exit 0 when every step ran or was skipped by its `if`; 1, with the reason on stderr,
otherwise. The report (JSON) lists each step: applied or skipped, files, enabled units.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import yaml

IMPLEMENTED = frozenset({"name", "if", "files", "systemctl"})
FILE_KEYS = frozenset({"path", "permissions", "owner", "group", "content", "encoding"})


class YipError(Exception):
    """The file asks for something this stand-in does not do, or a step failed."""


@dataclass
class StepReport:
    stage: str
    name: str
    condition: str | None
    applied: bool = False
    condition_rc: int | None = None
    files: list[str] = field(default_factory=list)
    enabled: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage, "name": self.name, "if": self.condition, "if_rc": self.condition_rc,
            "applied": self.applied, "files": self.files, "enabled": self.enabled,
        }


def load(text: str, source: str = "yip file") -> dict[str, Any]:
    """The cloud-config as yip reads it. PyYAML (YAML 1.1) reads `0644` as the octal 420,
    as yip's yaml.v3 does into its uint32 `Permissions`."""
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("stages"), dict):
        raise YipError(f"{source}: no `stages` mapping")
    return doc


def steps_of(doc: dict[str, Any], stage: str, source: str = "yip file") -> list[dict[str, Any]]:
    """The steps of `stage`, after refusing what the stand-in cannot do faithfully."""
    for name, steps in doc["stages"].items():
        if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
            raise YipError(f"{source}: stage {name} is not a list of steps")
        if name == stage:
            for s in steps:
                extra = sorted(k for k, v in s.items() if k not in IMPLEMENTED and v not in (None, "", [], {}))
                if extra:
                    raise YipError(f"{source}: stage {name} step {s.get('name')!r} uses {', '.join(extra)}, "
                                   "which this stand-in for yip does not implement")
        else:
            for s in steps:
                if s.get("files") or s.get("systemctl"):
                    raise YipError(f"{source}: stage {name} step {s.get('name')!r} has files or systemctl, "
                                   f"but the stand-in runs only the {stage} stage")
    return list(doc["stages"].get(stage) or [])


def left_out(doc: dict[str, Any], stage: str) -> list[str]:
    """`stage/step: keys` for every step of the other stages (not run here)."""
    out = []
    for name, steps in doc["stages"].items():
        if name == stage:
            continue
        for s in steps:
            keys = sorted(k for k in s if k not in ("name", "if"))
            out.append(f"{name}/{s.get('name')}: {', '.join(keys)}")
    return out


def _no_template(text: str, what: str) -> str:
    if "{{" in text:
        raise YipError(f"{what} holds '{{{{': yip would expand it as a Go template; the stand-in does not")
    return text


def write_file(root: str, entry: dict[str, Any], where: str) -> str:
    """pkg/plugins/files.go writeFile, for what our cloud-config uses."""
    unknown = sorted(set(entry) - FILE_KEYS)
    if unknown:
        raise YipError(f"{where}: file keys {', '.join(unknown)} are not implemented by the stand-in")
    path = entry.get("path")
    if not isinstance(path, str) or not path.startswith("/") or ".." in path.split("/"):
        raise YipError(f"{where}: path {path!r} is not an absolute path")
    if entry.get("encoding") not in (None, ""):
        raise YipError(f"{where}: {path}: encoding {entry['encoding']!r} is not implemented by the stand-in")
    perm = entry.get("permissions", 0)
    owner, group = entry.get("owner", 0), entry.get("group", 0)
    for key, value in (("permissions", perm), ("owner", owner), ("group", group)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise YipError(f"{where}: {path}: {key} {value!r} is not a number (yip's schema.File wants an integer)")
    content = _no_template(entry.get("content") or "", f"{where}: {path}: content")
    dest = os.path.join(root, path.lstrip("/"))
    parent = os.path.dirname(dest)
    if not os.path.isdir(parent):
        dir_perm = perm + 0o100 if perm < 0o700 else perm
        os.makedirs(parent, exist_ok=True)
        os.chmod(parent, dir_perm)
    with open(dest, "w", encoding="utf-8") as f:
        f.write(content)
    os.chmod(dest, perm)
    os.chown(dest, owner, group)
    return path


def run_step(root: str, stage: str, step: dict[str, Any], index: int, shell: str = "/bin/sh") -> StepReport:
    name = str(step.get("name") or f"step {index}")
    cond = step.get("if")
    rep = StepReport(stage, name, cond)
    if cond:
        p = subprocess.run([shell, "-c", _no_template(str(cond), f"{name}: if")], cwd="/", capture_output=True, text=True)
        rep.condition_rc = p.returncode
        if p.returncode != 0:
            return rep
    where = f"{stage}/{name}"
    for entry in step.get("files") or []:
        if not isinstance(entry, dict):
            raise YipError(f"{where}: a files entry is not a mapping")
        rep.files.append(write_file(root, entry, where))
    sysctl = step.get("systemctl") or {}
    if not isinstance(sysctl, dict):
        raise YipError(f"{where}: systemctl is not a mapping")
    verbs = sorted(k for k, v in sysctl.items() if v and k != "enable")
    if verbs:
        raise YipError(f"{where}: systemctl {', '.join(verbs)} is not implemented by the stand-in")
    for unit in sysctl.get("enable") or []:
        if not isinstance(unit, str) or not unit or any(c.isspace() for c in unit):
            raise YipError(f"{where}: systemctl enable {unit!r} is not a unit name")
        # In the guest the stand-in runs chrooted into the node's root, as yip does; a test
        # on this machine points it at a directory instead (`systemctl --root`).
        cmd = f"systemctl enable {unit}" if root == "/" else f"systemctl --root={shlex.quote(root)} enable {unit}"
        p = subprocess.run([shell, "-c", cmd], capture_output=True, text=True)
        if p.returncode != 0:
            raise YipError(f"{where}: systemctl enable {unit} exited {p.returncode}: {p.stderr.strip()}")
        rep.enabled.append(unit)
    rep.applied = True
    return rep


def apply(path: str, stage: str, root: str = "/") -> tuple[list[StepReport], list[str]]:
    with open(path, encoding="utf-8") as f:
        doc = load(f.read(), path)
    steps = steps_of(doc, stage, path)
    return [run_step(root, stage, s, i) for i, s in enumerate(steps, 1)], left_out(doc, stage)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.e2e.yip", description=__doc__.splitlines()[0])
    p.add_argument("--stage", required=True)
    p.add_argument("--report", help="write what was done here (JSON)")
    p.add_argument("files", nargs="+")
    args = p.parse_args(argv)
    report: dict[str, Any] = {"stage": args.stage, "steps": [], "left_out": [], "error": None}
    rc = 0
    try:
        for path in args.files:
            steps, rest = apply(path, args.stage)
            report["steps"] += [s.to_json() for s in steps]
            report["left_out"] += rest
    except (YipError, OSError, yaml.YAMLError) as exc:
        report["error"] = str(exc)
        print(f"yip stand-in: {exc}", file=sys.stderr)
        rc = 1
    for s in report["steps"]:
        state = "applied" if s["applied"] else f"skipped (if exited {s['if_rc']})"
        print(f"yip stand-in: {s['stage']}/{s['name']}: {state}; files {s['files']}; enabled {s['enabled']}")
    for line in report["left_out"]:
        print(f"yip stand-in: not run: {line}")
    if args.report:
        with open(args.report, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
    return rc


if __name__ == "__main__":
    sys.exit(main())
