"""Where things live on the installed node, relative to its root (or a render target).

One place for every path the layers agree on: render writes them, the yip stages and
units refer to them, bind and firstboot read and write them.

Two persistent places, both mounted by the node's initrd (harvester-installer
package/harvester-os/files/etc/cos/bootargs.cfg, v1.4-v1.8: `rd.cos.mount=LABEL=COS_OEM:/oem
rd.cos.mount=LABEL=COS_PERSISTENT:/usr/local`):
- COS_OEM at /oem: 50 MiB (harvester-installer pkg/config/constants.go
  DefaultCosOemSizeMiB). Small files only: the yip file, the grubenv, the plan, the
  manifest, the install status.
- COS_PERSISTENT at /usr/local: the rest of the disk (150 GiB minimum). The application,
  its launcher and the optional bundled Python runtime.
During the install (elemental's after-install hook, elemental-toolkit v1.1.x
pkg/constants/constants.go) they are mounted at /run/cos/oem and /run/cos/persistent.
"""

from __future__ import annotations

import os

OEM_PREFIX = "oem/"
PERSISTENT_PREFIX = "usr/local/"

# Rendered at install time into the target's /oem (persistent, read every boot).
PLAN_FILE = "oem/installer-ext/plan.json"
YIP_FILE = "oem/91_installer_ext.yaml"
GRUBENV_FILE = "oem/grubenv"
FRAGMENT_FILE = "oem/installer-ext/harvester-config-fragment.yaml"
MERGED_CONFIG_FILE = "oem/installer-ext/install-config.yaml"
# The manifest of the rendered set (`sha256sum -c` format, absolute node paths), written
# last: the node trusts the set only when every file it names matches.
MANIFEST_FILE = "oem/installer-ext/SHA256SUMS"
# What the install hook did (every outcome), shown by `installer-ext status` and at boot.
INSTALL_STATUS_FILE = "oem/installer-ext/install-status.json"
INSTALL_STATUS_TEXT = "oem/installer-ext/install-status.txt"

# The application on the node (COS_PERSISTENT, /usr/local).
LAUNCHER_FILE = "usr/local/lib/installer-ext/bin/installer-ext"
APP_FILE = "usr/local/lib/installer-ext/installer-ext.pyz"
RUNTIME_DIR = "usr/local/lib/installer-ext/python"
# Inside RUNTIME_DIR, written last when the runtime is laid down: the sha256 of its tree.
RUNTIME_MARK = ".installer-ext-runtime"

# Persistent state on the node (/usr/local is on the persistent partition of an
# Elemental/Harvester system; /etc and /run are rebuilt every boot).
GIVEN_BACK_FILE = "oem/installer-ext/given-back.json"  # `unbind`: the plan is given back (boot/givenback.py)
BIND_RECORD_FILE = "usr/local/lib/installer-ext/bind-record.json"
FIRSTBOOT_STATE_DIR = "usr/local/lib/installer-ext/firstboot"
# In FIRSTBOOT_STATE_DIR on server nodes: the reconciler's last pass (firstboot/cluster.py).
RECONCILE_STATUS = "reconcile.json"
# What first boot handed over to Harvester's pcidevices controller (claimed devices,
# SR-IOV PFs whose VF count it now owns); written by first boot, read by the binder.
CONTROLLER_RECORD_FILE = "usr/local/lib/installer-ext/controller.json"

# Per boot.
RUN_DIR = "run/installer-ext"
BIND_STATUS_FILE = "run/installer-ext/bind-status.json"
KERNEL_ARGS_STATUS_FILE = "run/installer-ext/kernel-args.json"

# Written into /etc by the yip stage each boot.
UDEV_RULE_FILE = "etc/udev/rules.d/40-installer-ext-vfio.rules"
MODPROBE_FILE = "etc/modprobe.d/installer-ext-vfio.conf"
MODULES_LOAD_FILE = "etc/modules-load.d/installer-ext-vfio.conf"
PROFILE_FILE = "etc/profile.d/installer-ext.sh"
SYSTEMD_DIR = "etc/systemd/system"

BIND_UNIT = "installer-ext-bind.service"
FIRSTBOOT_UNIT = "installer-ext-firstboot.service"
# On server nodes: carries out the first-boot requests joined nodes publish (docs/firstboot.md).
RECONCILE_UNIT = "installer-ext-reconcile.service"
RECONCILE_TIMER = "installer-ext-reconcile.timer"
REPORT_UNIT = "installer-ext-report.service"

DEFAULT_KUBECONFIG = "/etc/rancher/rke2/rke2.yaml"
# On the kernel command line: the binder does nothing for this boot (rescue).
SKIP_ARG = "installer_ext.skip=1"


def under(root: str, relpath: str) -> str:
    """`relpath` (one of the constants above) inside `root`."""
    return os.path.join(root, relpath)


def node_path(relpath: str) -> str:
    """The absolute path on the node of a relpath above."""
    return "/" + relpath


class Target:
    """Where the rendered files go: a whole root (`render --target`), or the install's
    partitions mounted on their own (`install-hook`: elemental mounts COS_OEM at
    /run/cos/oem and COS_PERSISTENT at /run/cos/persistent during after-install)."""

    def __init__(self, root: str | None = None, oem: str | None = None, persistent: str | None = None) -> None:
        self.root = root
        self.oem = oem
        self.persistent = persistent

    def path(self, relpath: str) -> str:
        if relpath.startswith(OEM_PREFIX) and self.oem is not None:
            return os.path.join(self.oem, relpath[len(OEM_PREFIX):])
        if relpath.startswith(PERSISTENT_PREFIX) and self.persistent is not None:
            return os.path.join(self.persistent, relpath[len(PERSISTENT_PREFIX):])
        if self.root is None:
            raise ValueError(f"no place for {relpath} in this target")
        return os.path.join(self.root, relpath)

    def describe(self) -> str:
        parts = []
        if self.root is not None:
            parts.append(self.root)
        if self.oem is not None:
            parts.append(f"OEM {self.oem}")
        if self.persistent is not None:
            parts.append(f"persistent {self.persistent}")
        return ", ".join(parts)
