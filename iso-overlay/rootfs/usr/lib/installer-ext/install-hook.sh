#!/bin/sh
# installer-ext: elemental `after-install` hook on the installer ISO. Renders the
# screen's choices (or the config's pciPassthrough section) into the installed system:
# its OEM partition (mounted by elemental at /run/cos/oem) or, if that is not mounted,
# the target root harv-install uses (/run/cos/target).
bin=${INSTALLER_EXT_BIN:-/usr/bin/installer-ext}
oem=${INSTALLER_EXT_OEM:-/run/cos/oem}
target=${INSTALLER_EXT_TARGET:-/run/cos/target}
app=${INSTALLER_EXT_APP:-/usr/lib/installer-ext/installer-ext.pyz}
if [ -d "$oem" ]; then
    exec "$bin" install-hook --root / --oem "$oem" --app "$app" "$@"
fi
exec "$bin" install-hook --root / --target "$target" --app "$app" "$@"
