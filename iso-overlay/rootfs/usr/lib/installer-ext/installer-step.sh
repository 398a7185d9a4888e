#!/bin/sh
# installer-ext: the "GPU drivers / PCI passthrough" step of the interactive install.
# start-installer.sh runs it just before the Harvester installer; the choices go to
# /run/installer-ext/choices.yaml, where the after-install hook finds them. Skipped for
# automatic installs (harvester.install.automatic=true), like the installer's own
# screens. It never stops the install: on any failure the install goes on without it.
cmdline=${INSTALLER_EXT_CMDLINE:-/proc/cmdline}
run=${INSTALLER_EXT_RUN:-/run/installer-ext}
bin=${INSTALLER_EXT_BIN:-/usr/bin/installer-ext}

case " $(cat "$cmdline" 2>/dev/null) " in
    *" harvester.install.automatic=true "*) exit 0 ;;
esac
mkdir -p "$run" || exit 0
choices="$run/choices.yaml"
if [ -f "$choices" ]; then
    # The installer was restarted: start from what was chosen before.
    set -- --config "$choices"
else
    set --
fi
TERM=${TERM:-linux} "$bin" tui --root / --output "$choices" "$@"
rc=$?
case $rc in
    0) ;;
    1) echo "installer-ext: no GPU / PCI passthrough choices; the install goes on without them" ;;
    *) echo "installer-ext: the passthrough screen failed (exit $rc); the install goes on without it" >&2
       sleep 3 ;;
esac
exit 0
