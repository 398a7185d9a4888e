#!/bin/sh
# /init of the e2e initramfs (busybox-static). tests/e2e/qemu.py writes the job into the
# writable 9p share `out`; this script:
#   1. loads the modules for the shares, mounts `out` at /job and reads /job/boot.env;
#   2. mounts the host root (9p `hostroot`, read-only, cache=loose) under a tmpfs overlay
#      at /newroot, bind-mounts /proc /sys /dev, fresh tmpfs on /run and /tmp, the job at
#      /run/e2e, the guest kernel's modules at /lib/modules/$(uname -r), and copies the
#      job's files/ tree over the root (in the chroot, so its symlinks resolve there);
# then, with E2E_MODE=hook (the default):
#   3. loads the device drivers in E2E_DRIVERS order, with busybox modprobe or, when
#      E2E_MODPROBE=kmod, the host's kmod (/sbin/modprobe in the chroot: it reads
#      /etc/modprobe.d, softdeps and `vfio-pci.ids=` from /proc/cmdline like a real system);
#   4. runs /run/e2e/hook.sh in the chroot under a timeout, output to /job/hook.log,
#      exit status to /job/hook.rc and the console marker E2E-HOOK-RC=<n>;
#   5. powers off. QEMU's exit status means nothing; the markers and files do.
# or, with E2E_MODE=systemd (a node boot):
#   3. loads no device driver: the modules are copied into the root (they must outlive
#      the initramfs) and indexed by the root's kmod depmod, so systemd-udevd loads them
#      by modalias, reading /etc/modprobe.d, as on an installed system;
#   4. empties the root's /etc/systemd/system (this machine's own enabled services are
#      not the node's), masks the gettys, makes multi-user.target the default and adds
#      e2e-hook.service, which runs the hook under systemd and powers off;
#   5. runs $E2E_PREPARE in the chroot (the stand-in for the initramfs stage of the
#      node's cloud-config), output to /job/prepare.log, status to /job/prepare.rc;
#   6. switch_root to /lib/systemd/systemd as PID 1.
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec 0</dev/console 1>/dev/console 2>&1
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys

die() {
    echo "E2E-INIT-FAILED: $*"
    sync
    poweroff -f
    sleep 10
}

KVER=$(uname -r)
echo "E2E-INIT-START $KVER $(cut -d' ' -f1 /proc/uptime)"
modprobe -a virtio_pci 9pnet_virtio 9p overlay || die "modules for the 9p shares"
mkdir -p /job /host /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 out /job || die "mount the out share"
[ -r /job/boot.env ] || die "no boot.env in the out share"
. /job/boot.env

mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /host ||
    die "mount the host root"
mount -t tmpfs -o mode=0755 tmpfs /rw && mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work /newroot ||
    die "overlay over the host root"
for d in proc sys dev; do mount --bind /$d /newroot/$d || die "bind /$d"; done
# A checkout under /tmp or /run (a CI runner's) would vanish under the fresh tmpfs:
# keep its overlay view aside and put it back at the same path.
keep=
case "$E2E_CWD" in
    /tmp/*|/run/*)
        mkdir -p /keep && mount --bind "/newroot$E2E_CWD" /keep || die "keep the repository"
        keep=1 ;;
esac
mount -t tmpfs -o mode=0755 tmpfs /newroot/run
mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp
if [ -n "$keep" ]; then
    mkdir -p "/newroot$E2E_CWD" && mount --bind /keep "/newroot$E2E_CWD" || die "put the repository back"
fi
mkdir -p /newroot/run/e2e && mount --bind /job /newroot/run/e2e || die "bind the job"
# lib/modules: /newroot/lib may be a relative symlink (merged /usr); mkdir follows it.
if [ "$E2E_MODE" = systemd ]; then
    # switch_root empties the initramfs: the modules go into the overlay instead.
    mkdir -p "/newroot/lib/modules" && cp -a "/lib/modules/$KVER" "/newroot/lib/modules/" ||
        die "copy the modules"
else
    mkdir -p "/newroot/lib/modules/$KVER" &&
        mount --bind "/lib/modules/$KVER" "/newroot/lib/modules/$KVER" || die "bind the modules"
fi
if [ "$E2E_MODE" = systemd ]; then
    chroot /newroot /bin/sh -c '[ -x /sbin/depmod ] && [ -x /lib/systemd/systemd ] && [ -x /lib/systemd/systemd-udevd ]' ||
        die "a systemd boot needs kmod, systemd and udev in the host root (apt-get install kmod systemd udev)"
    chroot /newroot /sbin/depmod "$KVER" || die "depmod"
    # This machine's own enabled services are not the node's: start from an empty
    # /etc/systemd/system (the job's files may add units and links to it).
    units=/newroot/etc/systemd/system
    rm -rf "$units" && mkdir -p "$units/multi-user.target.wants" || die "empty /etc/systemd/system"
    ln -s /lib/systemd/system/multi-user.target "$units/default.target"
    # No login prompts on the console; no D-Bus or logind (nothing here talks to them,
    # and under TCG they cost ~10 s).
    for u in getty@.service serial-getty@.service getty.target dbus.service dbus.socket systemd-logind.service; do
        ln -s /dev/null "$units/$u"
    done
    # This machine may be a container: its markers would make systemd believe it runs in
    # one (it then reads PID 1's argv, not /proc/cmdline, for ConditionKernelCommandLine=).
    rm -f /newroot/.dockerenv /newroot/run/.containerenv
    # systemd-tmpfiles --boot --remove would empty /tmp (`D /tmp`), checkout included.
    mkdir -p /newroot/etc/tmpfiles.d && echo 'd /tmp 1777 root root -' >/newroot/etc/tmpfiles.d/tmp.conf
    cat >"$units/e2e-hook.service" <<'UNIT'
[Unit]
Description=e2e: the test's hook, then power off
After=basic.target

[Service]
Type=simple
ExecStart=/bin/sh /run/e2e/systemd-hook.sh
UNIT
    ln -s ../e2e-hook.service "$units/multi-user.target.wants/e2e-hook.service"
    cat >/job/systemd-hook.sh <<'HOOK'
. /run/e2e/boot.env
cd "$E2E_CWD" || exit 1
echo "E2E-HOOK-START $(cut -d' ' -f1 /proc/uptime)" >/dev/console
timeout "$E2E_HOOK_TIMEOUT" /bin/sh /run/e2e/hook.sh >/run/e2e/hook.log 2>&1 </dev/null
rc=$?
journalctl -b --no-pager -o short-monotonic >/run/e2e/journal.txt 2>&1
dmesg >/run/e2e/dmesg.txt 2>&1
echo "$rc" >/run/e2e/hook.rc
sync
echo "E2E-HOOK-RC=$rc" >/dev/console
systemctl poweroff --force --force
HOOK
fi

# File by file, inside the chroot: /sbin, /lib, /etc/alternatives/... are symlinks there.
if [ -d /job/files ]; then
    chroot /newroot /bin/sh -c 'cd /run/e2e/files && find . ! -type d | while read -r f; do
        mkdir -p "/${f%/*}" && cp -P "$f" "/$f" || exit 1; done' || die "copy the job's files"
fi

if [ "$E2E_MODE" = systemd ]; then
    if [ -n "$E2E_PREPARE" ]; then
        chroot /newroot /bin/sh -c '. /run/e2e/boot.env && cd "$E2E_CWD" && eval "$E2E_PREPARE"' \
            >/job/prepare.log 2>&1 </dev/null
        rc=$?
        echo "$rc" >/job/prepare.rc
        [ "$rc" -eq 0 ] || die "the prepare step exited $rc (see prepare.log)"
    fi
    echo "E2E-SYSTEMD-START $(cut -d' ' -f1 /proc/uptime)"
    sync
    exec switch_root /newroot /lib/systemd/systemd
    die "switch_root to systemd"
fi

echo "E2E-DRIVERS $E2E_MODPROBE: $E2E_DRIVERS"
if [ "$E2E_MODPROBE" = kmod ]; then
    # The full paths: busybox sh would run its own applet for a bare `modprobe`.
    # Test inside the chroot: the host's /sbin/modprobe is an absolute symlink.
    chroot /newroot /bin/sh -c '[ -x /sbin/modprobe ] && [ -x /sbin/depmod ]' ||
        die "kmod asked for but the host root has no /sbin/modprobe (apt-get install kmod)"
    chroot /newroot /sbin/depmod "$KVER" || die "depmod"
    for m in $E2E_DRIVERS; do
        chroot /newroot /sbin/modprobe "$m" || die "kmod modprobe $m"
    done
else
    for m in $E2E_DRIVERS; do
        modprobe "$m" || die "modprobe $m"
    done
fi

echo "E2E-HOOK-START"
timeout "$E2E_HOOK_TIMEOUT" chroot /newroot /bin/sh -c 'cd "$E2E_CWD" && exec /bin/sh /run/e2e/hook.sh' \
    >/job/hook.log 2>&1 </dev/null
rc=$?
dmesg >/job/dmesg.txt 2>&1
echo "$rc" >/job/hook.rc
sync
echo "E2E-HOOK-RC=$rc"
poweroff -f
sleep 10
