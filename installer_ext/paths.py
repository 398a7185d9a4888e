"""Where things live on the installed node, relative to its root (or a render target).

One place for every path the layers agree on: render writes them, the yip stages and
units refer to them, bind and firstboot read and write them.
"""

from __future__ import annotations

import os

# Rendered at install time into the target's /oem (persistent, read every boot).
OEM_DIR = "oem/installer-ext"
PLAN_FILE = "oem/installer-ext/plan.json"
APP_FILE = "oem/installer-ext/installer-ext.pyz"
YIP_FILE = "oem/91_installer_ext.yaml"
GRUBENV_FILE = "oem/grubenv"
UNITS_DIR = "oem/installer-ext/units"

# Persistent state on the node (/usr/local is on the persistent partition of an
# Elemental/Harvester system; /etc and /run are rebuilt every boot).
STATE_DIR = "usr/local/lib/installer-ext"
BIND_RECORD_FILE = "usr/local/lib/installer-ext/bind-record.json"
FIRSTBOOT_STATE_DIR = "usr/local/lib/installer-ext/firstboot"

# Per boot.
RUN_DIR = "run/installer-ext"
BIND_STATUS_FILE = "run/installer-ext/bind-status.json"

# Written into /etc by the yip stage each boot.
UDEV_RULE_FILE = "etc/udev/rules.d/40-installer-ext-vfio.rules"
MODPROBE_FILE = "etc/modprobe.d/installer-ext-vfio.conf"
MODULES_LOAD_FILE = "etc/modules-load.d/installer-ext-vfio.conf"
SYSTEMD_DIR = "etc/systemd/system"

BIND_UNIT = "installer-ext-bind.service"
FIRSTBOOT_UNIT = "installer-ext-firstboot.service"

DEFAULT_KUBECONFIG = "/etc/rancher/rke2/rke2.yaml"
# On the kernel command line: the binder does nothing for this boot (rescue).
SKIP_ARG = "installer_ext.skip=1"


def under(root: str, relpath: str) -> str:
    """`relpath` (one of the constants above) inside `root`."""
    return os.path.join(root, relpath)
