"""On the installed node, every boot: bind the planned devices to vfio-pci (`bind`) and
give them back (`unbind`).

Modules, in the order a run uses them: `planfile` (read and strictly validate the plan),
`node` (read the live sysfs tree), `check` (re-validate the machine against the plan),
`sriov` (VF counts), `driver` (the driverctl write sequence and the bounded wait),
`record` (previous drivers, persistent; the per-boot status file), `binder` and
`unbinder` (the two runs), `command` (the argparse face).
"""
