#!/bin/sh
# installer-ext: run the application archive next to this launcher (generated; do not edit).
#
# Python: the runtime bundled beside it (python/, a relocatable CPython laid down by the
# install) when there is one, else the first system python3.X that is 3.11 or newer.
# Harvester v1.4-v1.6 (SLE Micro 5.5) have Python 3.6 only: there the bundled runtime is
# the only way. Exit 127, with the reason on stderr (the journal, the install log), when
# there is none.
self=$(readlink -f "$0" 2>/dev/null) || self=$0
bindir=${self%/*}
base=${bindir%/*}
app=${INSTALLER_EXT_APP:-$base/installer-ext.pyz}
runtime=${INSTALLER_EXT_RUNTIME:-$base/python}
if [ ! -r "$app" ]; then
    echo "installer-ext: the application $app is missing; reinstall it (installer-ext render --target /)" >&2
    exit 127
fi
# The node trusts only a complete rendered set: the manifest (written last) must match
# every file it names, and name the plan, before anything acts on the plan.
sums=${INSTALLER_EXT_SUMS:-/oem/installer-ext/SHA256SUMS}
case "$1" in
    bind|firstboot|kernel-args)
        if ! sha256sum --status -c "$sums" >/dev/null 2>&1 || ! grep -q '/installer-ext/plan\.json$' "$sums"; then
            echo "installer-ext: the files rendered in /oem/installer-ext are incomplete or changed since (an interrupted render?): $1 does nothing; run $self status" >&2
            exit 1
        fi ;;
esac
for py in "$runtime/bin/python3" python3.14 python3.13 python3.12 python3.11 python3; do
    if command -v "$py" >/dev/null 2>&1 &&
        "$py" -I -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
        exec "$py" -I "$app" "$@"
    fi
done
have=$(python3 -c 'import sys; print(sys.version.split()[0])' 2>/dev/null)
echo "installer-ext: no Python 3.11 or newer: no runtime in $runtime, and the system's python3 is ${have:-missing}" >&2
exit 127
