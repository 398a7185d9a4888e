#!/bin/sh
# installer-ext: elemental `after-install` hook on the installer ISO
# (/system/oem/92_installer_ext.yaml). Renders the screen's choices, or the original
# config's pciPassthrough section, into the installed system, and records the outcome
# there whatever it is.
#
# elemental (v1.1.x pkg/action/install.go) runs after-install with COS_OEM mounted at
# /run/cos/oem and COS_PERSISTENT at /run/cos/persistent (/usr/local on the node: the
# archive and the runtime go there, the OEM partition is 50 MiB). It ignores this hook's
# exit status (no strict mode in Harvester) and logs a failed command's output at error
# level, which reaches harvester-installer's install panel and /var/log/console.log; the
# output of a command that succeeds is not logged, so it is appended to that log here.
bin=${INSTALLER_EXT_BIN:-/usr/lib/installer-ext/bin/installer-ext}
oem=${INSTALLER_EXT_OEM:-/run/cos/oem}
persistent=${INSTALLER_EXT_PERSISTENT:-/run/cos/persistent}
app=${INSTALLER_EXT_APP:-/usr/lib/installer-ext/installer-ext.pyz}
runtime=${INSTALLER_EXT_RUNTIME_DIR:-/usr/lib/installer-ext/python}
log=${HARVESTER_INSTALLATION_LOG:-/var/log/console.log}

if [ -d "$oem" ] && [ -d "$persistent" ]; then
    set -- --oem "$oem" --persistent "$persistent" "$@"
else
    set -- --target "${INSTALLER_EXT_TARGET:-/run/cos/target}" "$@"
    oem=${INSTALLER_EXT_TARGET:-/run/cos/target}/oem
fi
[ -x "$runtime/bin/python3" ] && set -- --runtime "$runtime" "$@"
out=$("$bin" install-hook --root "${INSTALLER_EXT_ROOT:-/}" --app "$app" "$@" 2>&1)
rc=$?
printf '%s\n' "$out"
printf '%s\n' "$out" | sed "s/^/$(date -u '+%Y-%m-%dT%H:%M:%SZ') [installer-ext hook] /" >> "$log" 2>/dev/null
if [ $rc -eq 127 ]; then
    # No interpreter: the application could not even record the outcome. Do it here.
    mkdir -p "$oem/installer-ext"
    reason=$(printf '%s' "$out" | tail -n 1 | sed 's/\\/\\\\/g; s/"/\\"/g')
    at=$(date -u '+%Y-%m-%dT%H:%M:%S+00:00')
    printf '{"version": 1, "outcome": "failed", "ok": false, "source": null, "config": null, "reason": ["%s"], "warnings": [], "at": "%s"}\n' \
        "$reason" "$at" > "$oem/installer-ext/install-status.json"
    printf 'installer-ext: GPU / PCI passthrough was NOT set up: the install step failed (%s)\ninstaller-ext:   %s\n' \
        "$at" "$reason" > "$oem/installer-ext/install-status.txt"
fi
exit $rc
