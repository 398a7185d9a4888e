"""The node side of a QEMU boot: what `render --target DIR` wrote, laid into the guest root
as the installed node has it, and the stand-ins around it.

- `tree_files(target)`: every file render wrote, at the same path under the guest root
  (/oem/..., and whatever else it lays down).
- `unit_commands(yip_doc)`: the `ExecStart=` command lines of the units the yip file
  writes (read from the rendered yip file, never from our templates).
- `program_files(...)`: what those command lines run and render did not write. The units
  run the launcher render lays down (/usr/local/lib/installer-ext/bin/installer-ext, which
  runs the archive render packed beside it), so nothing is added; a unit that ran
  `python3 SCRIPT` with a script render did not write would get `standin_app()` there, a
  zip application that runs this checkout. A program that is neither in the target nor
  in the guest root (this machine's) is an error.
- `RKE2_SERVER`, `NETWORK`, `NETWORK_ONLINE`: the units that stand in for the cluster and
  for the network service.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

from . import qemu

# The cluster, as the bind unit's `Before=` and the first-boot unit's `After=` name it.
# Ordering and install lines as in rancher/rke2 bundle/lib/systemd/system/rke2-server.service
# (master @ 1a821cd: Wants=/After=network-online.target, WantedBy=multi-user.target, no
# Type=, so simple); it runs nothing, it only shows when the cluster would start.
RKE2_SERVER_UNIT = "rke2-server.service"
RKE2_SERVER = """\
[Unit]
Description=e2e stand-in for rke2-server.service (Rancher Kubernetes Engine v2, server)
Wants=network-online.target
After=network-online.target
Conflicts=rke2-agent.service

[Service]
ExecStart=/bin/sleep infinity

[Install]
WantedBy=multi-user.target
"""

# The network, as a node configures it: NetworkManager on v1.7+ (wicked on v1.4-v1.6, with
# the same ordering). Ordering and install lines as in NetworkManager's
# data/NetworkManager.service.in (Wants=network.target, After=network-pre.target,
# Before=network.target, WantedBy=multi-user.target) and
# data/NetworkManager-wait-online.service.in (Requires=/After=NetworkManager.service,
# Before=network-online.target, WantedBy=network-online.target); wicked's wickedd.service
# is also After=network-pre.target, Before=network.target. Without a network service the
# guest reaches network-online.target at once (nothing pulls network.target in), which
# says nothing about whether the binder runs before the network is configured.
NETWORK_UNIT = "NetworkManager.service"
NETWORK = """\
[Unit]
Description=e2e stand-in for NetworkManager.service (configures the network)
Wants=network.target
After=network-pre.target
Before=network.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true

[Install]
WantedBy=multi-user.target
"""
NETWORK_ONLINE_UNIT = "NetworkManager-wait-online.service"
NETWORK_ONLINE = """\
[Unit]
Description=e2e stand-in for NetworkManager-wait-online.service
Requires=NetworkManager.service
After=NetworkManager.service
Before=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true

[Install]
WantedBy=network-online.target
"""

_PYTHON = re.compile(r"python3(\.\d+)?")
_EXEC_PREFIX = "@-:+!|"  # systemd.service(5): ExecStart= special executable prefixes


def cluster_standin() -> dict[str, str | qemu.Link]:
    """The cluster's and the network's stand-in units, enabled as `systemctl enable` does."""
    units = "/etc/systemd/system"
    return {
        f"{units}/{RKE2_SERVER_UNIT}": RKE2_SERVER,
        f"{units}/multi-user.target.wants/{RKE2_SERVER_UNIT}": qemu.Link(f"../{RKE2_SERVER_UNIT}"),
        f"{units}/{NETWORK_UNIT}": NETWORK,
        f"{units}/multi-user.target.wants/{NETWORK_UNIT}": qemu.Link(f"../{NETWORK_UNIT}"),
        f"{units}/{NETWORK_ONLINE_UNIT}": NETWORK_ONLINE,
        f"{units}/network-online.target.wants/{NETWORK_ONLINE_UNIT}": qemu.Link(f"../{NETWORK_ONLINE_UNIT}"),
    }


class NodeSetupError(AssertionError):
    """The rendered files cannot be laid into the guest as the node would have them."""


def tree_files(top: Path) -> dict[str, bytes | qemu.Link | qemu.Executable]:
    """{absolute guest path: bytes, Executable or Link} for every file and symlink under
    `top` (a render target, or the persistent trees a booted node left); a file with an
    executable bit stays executable (the launcher the units run)."""
    out: dict[str, bytes | qemu.Link | qemu.Executable] = {}
    for p in sorted(top.rglob("*")):
        key = "/" + p.relative_to(top).as_posix()
        if p.is_symlink():
            out[key] = qemu.Link(os.readlink(p))
        elif p.is_file():
            data = p.read_bytes()
            out[key] = qemu.Executable(data) if p.stat().st_mode & 0o111 else data
    return out


def unit_commands(yip_doc: dict[str, Any]) -> dict[str, list[list[str]]]:
    """{unit path: [argv of each ExecStart=]} for the units the yip file writes."""
    out: dict[str, list[list[str]]] = {}
    for steps in yip_doc["stages"].values():
        for step in steps or []:
            for f in step.get("files") or []:
                path = f.get("path", "")
                if not re.search(r"\.(service|socket|timer|path)$", path):
                    continue
                out[path] = [exec_argv(v) for k, v in unit_settings(f.get("content") or "") if k == "ExecStart" and v]
    return out


def unit_settings(text: str) -> list[tuple[str, str]]:
    """(key, value) of every setting in a unit file, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1].rstrip() + " "
            continue
        if not line or line[0] in "#;[" or "=" not in line:
            continue
        key, value = line.split("=", 1)
        out.append((key.strip(), value.strip()))
    return out


def exec_argv(value: str) -> list[str]:
    """An ExecStart= value as argv: prefixes (`-`, `@`, `+`, ...) dropped, words split."""
    argv = shlex.split(value)
    if not argv:
        return []
    argv[0] = argv[0].lstrip(_EXEC_PREFIX)
    return argv


def program_files(commands: dict[str, list[list[str]]], target: Path, guest_root: Path = Path("/")) -> dict[str, bytes]:
    """What the units' command lines run that render did not write (see the module doc)."""
    def exists(path: str) -> bool:
        rel = path.lstrip("/")
        return (target / rel).exists() or (guest_root / rel).exists()

    out: dict[str, bytes] = {}
    for unit, argvs in commands.items():
        for argv in argvs:
            prog = argv[0]
            if not prog.startswith("/"):
                raise NodeSetupError(f"{unit}: ExecStart runs {prog!r}, not an absolute path")
            if not exists(prog):
                raise NodeSetupError(f"{unit}: ExecStart runs {prog}, which render did not write and the guest root lacks")
            if _PYTHON.fullmatch(os.path.basename(prog)) and len(argv) > 1 and argv[1].startswith("/"):
                script = argv[1]
                if not exists(script) and script not in out:
                    out[script] = standin_app()
    return out


def standin_app() -> bytes:
    """A zip application that runs this checkout's installer_ext (the guest sees this
    machine's root) with this interpreter's site-packages: the node's archive, until
    render writes one."""
    paths = [str(qemu.REPO)] + sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    main = (
        "# e2e stand-in for installer-ext.pyz (tests/e2e/node.py standin_app)\n"
        "import sys\n"
        f"sys.path[:0] = {paths!r}\n"
        "from installer_ext.cli import main\n"
        "sys.exit(main())\n"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("__main__.py", main)
    return buf.getvalue()
