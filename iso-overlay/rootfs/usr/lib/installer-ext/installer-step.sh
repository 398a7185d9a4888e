#!/bin/sh
# installer-ext: the "GPU drivers / PCI passthrough" step, run by start-installer.sh just
# before `harvester-installer` (build.py adds the line).
#
# start-installer.sh runs on every boot of the installed node too: agetty starts it on the
# first console (setup-installer.sh, every boot from 91_installer.yaml) and
# harvester-installer shows the dashboard there (HARVESTER_DASHBOARD=true in
# /etc/rancher/installer/env, set by 91_installer.yaml when booted with
# root=LABEL=COS_STATE). So:
# - dashboard mode (the installed node): no screen; if the install did not set up what
#   was asked for, say so on the console before the dashboard takes it;
# - not the live installer (no `cdroot`, no root=live: on the kernel line, e.g. the
#   recovery system): nothing;
# - an automatic install (harvester.install.automatic=true): no screen; check the
#   config's pciPassthrough section first (installer-ext precheck), before any disk is
#   touched. An invalid or refused section stops the install here, with the reason on
#   the console and in the install log, unless the kernel line has
#   installer_ext.continue_without_passthrough=1;
# - an interactive install: the screen. It never stops the install.
cmdline=$(cat "${INSTALLER_EXT_CMDLINE:-/proc/cmdline}" 2>/dev/null)
envfile=${INSTALLER_EXT_ENV_FILE:-/etc/rancher/installer/env}
run=${INSTALLER_EXT_RUN:-/run/installer-ext}
bin=${INSTALLER_EXT_BIN:-/usr/bin/installer-ext}
log=${INSTALLER_EXT_LOG:-/var/log/console.log}
status=${INSTALLER_EXT_STATUS:-/oem/installer-ext}
continue_arg=installer_ext.continue_without_passthrough=1

has() { case " $cmdline " in *" $1 "*) return 0 ;; esac; return 1; }
say() { echo "$*"; echo "$(date -u '+%Y-%m-%dT%H:%M:%SZ') installer-ext: $*" >> "$log" 2>/dev/null; }

if grep -Eqs '^HARVESTER_DASHBOARD="?true"?$' "$envfile" || has root=LABEL=COS_STATE; then
    if grep -qs '"ok": false' "$status/install-status.json"; then
        cat "$status/install-status.txt" 2>/dev/null
        echo "(the dashboard follows in 30 seconds; press Enter to go on now)"
        read -r -t "${INSTALLER_EXT_PAUSE:-30}" _ 2>/dev/null
    fi
    exit 0
fi
case " $cmdline " in
    *" cdroot "* | *" root=live:"*) ;;
    *) exit 0 ;;
esac

if has harvester.install.automatic=true; then
    out=$("$bin" precheck --root "${INSTALLER_EXT_ROOT:-/}" 2>&1)
    rc=$?
    [ -n "$out" ] && say "$out"
    [ $rc -eq 0 ] && exit 0
    if [ $rc -eq 127 ]; then
        reason="no Python 3.11 or newer on this installer to check the pciPassthrough section"
    else
        reason="the pciPassthrough section of the install config cannot be used (exit $rc)"
    fi
    if has "$continue_arg"; then
        say "$reason; $continue_arg is on the kernel line: the install goes on without GPU / PCI passthrough"
        exit 0
    fi
    say "THE INSTALL IS STOPPED before any disk was touched: $reason."
    say "Fix the config, or add $continue_arg to the kernel line to install without passthrough, and boot again."
    [ "${INSTALLER_EXT_HOLD:-1}" = 0 ] && exit 3
    while :; do sleep 3600; done
fi

mkdir -p "$run" || exit 0
choices="$run/choices.yaml"
if [ -f "$choices" ]; then
    # The installer was restarted: start from what was chosen before.
    set -- --config "$choices"
else
    set --
fi
TERM=${TERM:-linux} "$bin" tui --root "${INSTALLER_EXT_ROOT:-/}" --output "$choices" "$@"
rc=$?
case $rc in
    0) ;;
    127) say "the passthrough screen cannot run: no Python 3.11 or newer on this installer; the install goes on without GPU / PCI passthrough" >&2
         sleep 3 ;;
    1) say "no GPU / PCI passthrough choices were made (screen left or failed); the install goes on without them" ;;
    *) say "the passthrough screen failed (exit $rc); the install goes on without it" >&2
       sleep 3 ;;
esac
exit 0
