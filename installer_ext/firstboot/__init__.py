"""First boot on the installed node: the cluster side of the plan.

`command` is the face (`installer-ext firstboot`), `runner` orders the steps and keeps
their records in the state dir; the steps live one per module (`apiwait`, `settings`,
`addons`, `claims`, `plugins`, `node`), with the node-side inputs in `inputs` (plan,
node name, what the binder bound) and `gpu` (which device plugin the host can run).
"""
