"""Colours for a VGA console (TERM=linux) and a monochrome fallback.

Only the 8 dark colours are used as backgrounds: on the Linux console a bright
background blinks. Every entry has a mono attribute, so the screen stays readable
with NO_COLOR or on a terminal without colour: the focus is `standout`, errors are
`bold`, and the state of each device is in its words and its mark, never only in
its colour.
"""

from __future__ import annotations

# (name, foreground, background, mono)
PALETTE = [
    ("title", "white,bold", "dark blue", "standout"),
    ("text", "light gray", "black", ""),
    ("ok", "light green", "black", ""),
    ("warn", "yellow", "black", "bold"),
    ("bad", "light red", "black", "bold"),
    ("switch", "white", "black", ""),
    ("switch focus", "black", "light gray", "standout"),
    ("listhead", "light cyan", "black", "bold"),
    ("group", "dark cyan", "black", "underline"),
    ("row", "light gray", "black", ""),
    ("row focus", "black", "light gray", "standout"),
    ("selected", "light green", "black", "bold"),
    ("selected focus", "black", "light gray", "standout"),
    ("blocked", "dark gray", "black", ""),
    ("blocked focus", "black", "light gray", "standout"),
    ("refused", "light red", "black", "bold"),
    ("refused focus", "black", "light gray", "standout"),
    ("hostgpu", "yellow", "black", ""),
    ("hostgpu focus", "black", "light gray", "standout"),
    ("edit", "white", "dark blue", "underline"),
    ("edit focus", "white,bold", "dark blue", "standout"),
    ("details", "light gray", "black", ""),
    ("error", "white,bold", "dark red", "bold"),
    ("info", "light cyan", "black", ""),
    ("footer", "black", "light gray", "standout"),
    ("head", "white,bold", "black", "bold"),
    ("code", "light cyan", "black", ""),
]

FOCUS = {name: f"{name} focus" for name in ("row", "selected", "blocked", "refused", "hostgpu", "switch", "edit")}
