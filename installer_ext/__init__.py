"""installer-ext: GPU drivers and PCI passthrough for the Harvester installer.

Layers (imports only go downwards): host (facts) and config (choices) -> plan (pure
policy) -> render (files) / boot (sysfs writes) / firstboot (Kubernetes API); cli and
tui are faces that call into them.
"""

__version__ = "0.1.0"
