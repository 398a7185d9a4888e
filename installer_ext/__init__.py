"""installer-ext: GPU drivers and PCI passthrough for the Harvester installer.

Layers (imports go downwards): host (facts) and config (choices) -> plan (pure
policy) -> render (files) / boot (sysfs writes) / firstboot with kube (Kubernetes API);
install (the ISO side) orchestrates config, plan and render; cli.py, commands/ and tui/ are the
faces that call into them. docs/design.md describes the whole and links to each area's document.
"""

__version__ = "0.1.0"
