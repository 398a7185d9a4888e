"""A Harvester node's boot, reproduced for tests: harv-install's grubenv edits, the
bootargs.cfg of each Harvester version, elemental's grub.cfg, and the kernel line GRUB
builds from them. The GRUB variables come from the real `grub-editenv list` (GRUB's own
grub_envblk_iterate()); the scripts are interpreted here, independently of
installer_ext/grubline.py, so that a test checks the product against them.

Sources (read 2026-12; the files below are written for the tests, reduced to what
builds the kernel line, not copied):
- bootargs.cfg: harvester/harvester-installer package/harvester-os/files/etc/cos/
  bootargs.cfg, branch v1.3 (no $third_party_kernel_args) and v1.4 to v1.8 (identical;
  also harvester/harvester's copy for v1.9+), lines 4-8: the recovery image gets
  `kernelcmd` without IOMMU arguments, every other image
  `... intel_iommu=on amd_iommu=on iommu=pt $third_party_kernel_args`.
- grub.cfg: rancher/elemental-toolkit pkg/features/embedded/grub-config/etc/cos/grub.cfg
  (v0.11.1, v1.1.8: line 14 `load_env -f "(${oem_blk})${env_file}"` with
  env_file=/grubenv; menuentry --id cos at line 48, its line 54
  `linux ($loopdev)$kernel $kernelcmd ${extra_cmdline} ${extra_active_cmdline}` after
  `source ($loopdev)/etc/cos/bootargs.cfg`; recovery at lines 70-81) and
  etc/elemental/grub.cfg (v1.2.0, v1.3.0: the same at lines 14, 48, 56, 74-86).
  OLD_COS_GRUB_CFG is the cOS grub.cfg before elemental-toolkit PR #821 (2021-10,
  "Customize grub menu"), whose linux line has no ${extra_cmdline}.
- harv-install: harvester/harvester-installer package/harvester-os/files/usr/sbin/
  harv-install (v1.8, update_grub_settings(), lines 434-453): after `elemental install`
  (which runs the after-install hooks) it runs `grub2-editenv /oem/grubenv create` if
  the file is missing, then `grub2-editenv /oem/grubenv set
  third_party_kernel_args="${HARVESTER_ADDITIONAL_KERNEL_ARGUMENTS}"` when that is not
  empty; pkg/console/util.go doInstall() (v1.8, lines 555-560) appends
  HARVESTER_ADDITIONAL_KERNEL_ARGUMENTS=multipath=off unless external storage is
  enabled, then =<os.additionalKernelArguments> when set (the last one wins in Go's
  exec environment).
"""

from __future__ import annotations

import os
import re
import subprocess

from tests.conftest import require_tool

RECOVERY_BRANCH = 'set kernelcmd="$console_params root=LABEL=$recovery_label cos-img/filename=$img rd.neednet=1 rd.cos.oemlabel=$oem_label"'
COMMON = (
    "$console_params root=LABEL=$state_label cos-img/filename=$img panic=0 net.ifnames=1 "
    "rd.cos.oemlabel=$oem_label rd.cos.mount=LABEL=$oem_label:/oem rd.cos.oemtimeout=120 "
    "audit=1 audit_backlog_limit=8192 intel_iommu=on amd_iommu=on iommu=pt"
)


def bootargs_cfg(third_party: bool) -> str:
    """A bootargs.cfg with the shape and the arguments of Harvester's: v1.4+ when
    `third_party`, v1.3 otherwise."""
    tail = " $third_party_kernel_args" if third_party else ""
    return (
        'set console_params="console=tty1"\n'
        "set kernel=/boot/vmlinuz\n"
        'if [ "${img}" == "/cOS/recovery.img" ]; then\n'
        f"    {RECOVERY_BRANCH}\n"
        "else\n"
        f'    set kernelcmd="{COMMON}{tail}"\n'
        "fi\n"
        "set initramfs=/boot/initrd\n"
    )


BOOTARGS_V13 = bootargs_cfg(third_party=False)
BOOTARGS_V14 = bootargs_cfg(third_party=True)

ELEMENTAL_GRUB_CFG = """\
set env_file="/grubenv"
search --no-floppy --set oem_blk --label "${oem_label}"
if [ -f "(${oem_blk})${env_file}" ]; then
  load_env -f "(${oem_blk})${env_file}"
fi
menuentry "${display_name}" --id cos {
  set img=/cOS/active.img
  loopback $loopdev /$img
  source ($loopdev)/etc/cos/bootargs.cfg
  linux ($loopdev)$kernel $kernelcmd ${extra_cmdline} ${extra_active_cmdline}
  initrd ($loopdev)$initramfs
}
menuentry "${display_name} recovery" --id recovery {
  set img=/cOS/recovery.img
  source ($loopdev)/etc/cos/bootargs.cfg
  linux ($loopdev)$kernel $kernelcmd ${extra_cmdline} ${extra_recovery_cmdline}
}
"""
OLD_COS_GRUB_CFG = """\
menuentry "cOS" --id cos {
  set img=/cOS/active.img
  loopback loop0 /$img
  source (loop0)/etc/cos/bootargs.cfg
  linux (loop0)$kernel $kernelcmd
  initrd (loop0)$initramfs
}
"""


def editenv(path: str, *args: str | bytes) -> bytes:
    tool = require_tool("grub-editenv")
    return subprocess.run([tool, path, *args], check=True, capture_output=True).stdout


def editenv_pairs(path: str) -> list[tuple[bytes, bytes]]:
    """`grub-editenv list`: every variable line as GRUB iterates them (values without
    newlines in these tests)."""
    out = editenv(path, "list")
    return [tuple(line.split(b"=", 1)) for line in out.split(b"\n")[:-1]]  # type: ignore[misc]


def grub_variables(path: str) -> dict[str, str]:
    """What `load_env` leaves set: the last line of a name wins (loadenv.c set_var())."""
    if not os.path.exists(path):
        return {}
    return {k.decode(): v.decode("utf-8", "surrogateescape") for k, v in editenv_pairs(path)}


def harv_install(oem: str, additional: str | None = "multipath=off") -> None:
    """harv-install's update_grub_settings() on the target's OEM directory."""
    path = os.path.join(oem, "grubenv")
    if not os.path.isfile(path):
        editenv(path, "create")
    if additional:
        editenv(path, "set", f"third_party_kernel_args={additional}")


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def _expand(text: str, env: dict[str, str]) -> str:
    return _VAR.sub(lambda m: env.get(m.group(1) or m.group(2), ""), text)


def _run_script(script: str, env: dict[str, str]) -> None:
    """The subset of GRUB script bootargs.cfg uses: `set NAME="..."`,
    `if [ "A" == "B" ]; then / else / fi`."""
    active = [True]
    for raw in script.splitlines():
        line = raw.strip()
        m = re.fullmatch(r'if \[ "(.*)" == "(.*)" \]; then', line)
        if m:
            active.append(active[-1] and _expand(m.group(1), env) == _expand(m.group(2), env))
            continue
        if line == "else":
            active[-1] = not active[-1] and active[-2]
            continue
        if line == "fi":
            active.pop()
            continue
        m = re.fullmatch(r'set ([A-Za-z_][A-Za-z0-9_]*)="?(.*?)"?', line)
        if m and active[-1]:
            env[m.group(1)] = _expand(m.group(2), env)


def linux_line(grub_cfg: str, entry: str = "cos") -> str:
    body = grub_cfg.split(f"--id {entry} {{", 1)[1].split("\n}", 1)[0]
    return next(l.strip() for l in body.splitlines() if l.strip().startswith("linux "))


def boot_cmdline(grubenv_path: str, bootargs: str, grub_cfg: str = ELEMENTAL_GRUB_CFG, image: str = "/cOS/active.img") -> str:
    """/proc/cmdline of the next boot of the entry for `image`: grubenv variables,
    then bootargs.cfg, then the entry's linux line, word-split as GRUB does for
    unquoted variables, with the BOOT_IMAGE= that GRUB's linux loader puts first."""
    env = grub_variables(grubenv_path)
    env.update(img=image, state_label="COS_STATE", recovery_label="COS_RECOVERY", oem_label="COS_OEM", loopdev="loop0")
    _run_script(bootargs, env)
    words = _expand(linux_line(grub_cfg, "recovery" if "recovery" in image else "cos"), env).split()
    return " ".join(["BOOT_IMAGE=" + words[1], *words[2:]]) + "\n"


def node_root(root: str, cmdline: str, bootargs: str = BOOTARGS_V14, grub_cfg: str | None = ELEMENTAL_GRUB_CFG) -> str:
    """Lay out what the keeper reads on a booted node under `root`."""
    for rel, text in (("proc/cmdline", cmdline), ("etc/cos/bootargs.cfg", bootargs), ("run/initramfs/cos-state/grub2/grub.cfg", grub_cfg)):
        path = os.path.join(root, rel)
        if text is None:
            if os.path.exists(path):
                os.unlink(path)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    return root


def reboot(root: str) -> None:
    """A new boot: /run is empty again."""
    status = os.path.join(root, "run/installer-ext/kernel-args.json")
    if os.path.exists(status):
        os.unlink(status)
