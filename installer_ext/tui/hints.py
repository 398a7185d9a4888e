"""What the details lines and the key line say about the thing that has the focus
(pure text, no urwid): a switch, the filter, a function, the "VFs at boot" line.

The key line always shows the keys that do something where the focus is; each entry
is a tuple of variants, longest first (`chrome.fitting` picks the one that fits).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

# -- the switches ------------------------------------------------------------------------
SWITCH_ENABLED = "Enable PCI passthrough"
SWITCH_GPU = "Install GPU drivers / device plugin"
SWITCH_UNSAFE = "Allow unsafe interrupts (no interrupt remapping here)"

SWITCH_HELP = {
    "enabled": "IOMMU kernel arguments, vfio-pci at every boot, Harvester's PCI devices addon and pci-pt-enable.",
    "gpu": "GPUs not given to VMs stay on their host driver for containers: gpu-enable and a device plugin.",
    "unsafe": "This host has no interrupt remapping: vfio refuses devices unless this is on, and a passed "
    "device can then disturb the host.",
}


def switch_lines(which: str, on: bool) -> tuple[str, str]:
    label = {"enabled": SWITCH_ENABLED, "gpu": SWITCH_GPU, "unsafe": SWITCH_UNSAFE}[which]
    return f"{label}: {'on' if on else 'off'} (Space turns it {'off' if on else 'on'})", SWITCH_HELP[which]


KEYS_SWITCH = (
    "Space on/off  Left/Right other switch  Tab devices  Enter next  Esc back",
    "Space on/off  Right/Left switch  Tab devices  Enter  Esc",
    "Space  Tab  Enter  Esc",
)
KEYS_SWITCH_STACKED = (
    "Space on/off  Arrows other switch  Tab devices  Enter next  Esc back",
    "Space on/off  Up/Down switch  Tab devices  Enter  Esc",
    "Space  Tab  Enter  Esc",
)

# -- the filter --------------------------------------------------------------------------
FILTER_LINES = (
    "Filter: type part of an address, name, id, driver, interface or state.",
    "Enter or Down goes back to the list with the matches; Esc clears the filter.",
)
KEYS_FILTER = (
    "Type to filter  Enter/Down to the list  Esc clears it",
    "Type  Enter list  Esc clear",
)

# -- the list ----------------------------------------------------------------------------
KEYS_ROW = (
    "Up/Down move  Space select  / filter  b bridges  PgUp/PgDn  Tab switches  Enter next  Esc back",
    "Up/Down  Space select  / filter  Tab switches  Enter next  Esc back",
    "Up/Down  Space select  / filter  Tab switches  Enter  Esc",
    "Space  /  Enter  Esc",
)
KEYS_PF = (
    "Up/Down move  Space select  Right VFs at boot  / filter  Tab switches  Enter next  Esc back",
    "Space select  Right VFs at boot  / filter  Enter next  Esc back",
    "Space select  Right VFs at boot  Enter next  Esc back",
    "Space  Right  Enter  Esc",
)
KEYS_PF_UNFOLDED = (
    "Up/Down move  Space select  Right VFs at boot  Left fold VFs  / filter  Enter next  Esc back",
    "Space select  Right VFs at boot  Left fold  Enter next  Esc back",
    "Space select  Right VFs at boot  Left fold  Enter  Esc",
    "Space  Right  Left  Enter  Esc",
)
KEYS_VF = (
    "Up/Down move  Left fold VFs  / filter  Tab switches  Enter next  Esc back",
    "Up/Down  Left fold VFs  / filter  Enter next  Esc back",
    "Left fold  Enter  Esc",
)
KEYS_VF_COUNT = (
    "0-9 VFs at every boot  Backspace  Right \"VFs to VMs\"  Left fold VFs  Up/Down  Enter next  Esc back",
    "0-9 VF count  Right \"VFs to VMs\"  Up/Down  Enter next  Esc back",
    "0-9 VF count  Right \"VFs to VMs\"  Enter next  Esc back",
    "0-9  Right  Enter  Esc",
)
KEYS_VF_BOX = (
    "Space \"VFs to VMs\" on/off  Left VF count  Up/Down move  Enter next  Esc back",
    "Space on/off  Left VF count  Enter next  Esc back",
    "Space  Left  Enter  Esc",
)
KEYS_HEADER = KEYS_ROW

VF_COUNT_HELP = (
    "VFs made at every boot (empty: left as the host has them); [X] VFs to VMs: bound to vfio-pci."
)
