"""On the installed node, every boot: bind the planned devices to vfio-pci (`bind`) and
give them back (`unbind`).

Modules, in the order a run uses them: the plan (read and strictly validated by installer_ext.plan.planfile),
`node` (read the live sysfs tree), `check` (re-validate the machine against the plan),
`sriov` (VF counts), `driver` (the driverctl write sequence and the bounded wait),
`record` (previous drivers, persistent; the per-boot status file), `binder` and
`unbinder` (the two runs), `command` (the argparse face).
"""
