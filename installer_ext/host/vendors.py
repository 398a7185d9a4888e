"""PCI vendor ids the program treats specially (one home for them)."""

from __future__ import annotations

NVIDIA = "10de"
AMD = "1002"
INTEL = "8086"

# GPU vendors that have a container device plugin, and that plugin's name.
GPU_PLUGIN_VENDORS = {NVIDIA: "nvidia", AMD: "amd"}
# Vendors whose processing accelerators (class 12) are compute-only GPUs.
ACCELERATOR_GPU_VENDORS = (NVIDIA, AMD, INTEL)
