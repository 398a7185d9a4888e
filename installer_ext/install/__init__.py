"""The ISO side of installer-ext: orchestration next to the faces.

- `original`: the user's original install config (its URL, fetched with bounds).
- `installer_config`: `$HARVESTER_CONFIG`, the Go installer's own marshal of its config.
- `hook`: elemental's after-install hook: plan the choices, render the set, record the
  outcome (every outcome) on the installed system.
- `precheck`: automatic installs: check the pciPassthrough section before the
  installer starts (before any disk is touched).
- `command`: the `install-hook` and `precheck` commands.

Render stays a pure "set of files -> target" layer; this package decides what to render.
"""
