"""On the installed node, every boot: bind the planned devices to vfio-pci (`bind`) and
give them back (`unbind`). docs/node.md describes the whole.

Modules, in the order a run uses them: the plan (read and checked against its schema by
installer_ext.plan.planfile), `givenback` (the mark `unbind` leaves and `bind --again`
removes), `node` (read the live sysfs tree), `targets` (the plan's devices as found on
this boot, VFs through their PF), `check` (re-validate the machine against the plan, and
refuse what the running host needs: installer_ext.host.inuse), `sriov` (VF counts),
`driver` (the driverctl write sequence and the bounded wait), `record` (previous
drivers, persistent; the per-boot status file), `lock`, `binder` and `unbinder` (the two
runs), `options` and `command` (the argparse face).
"""
